//! Command-line options for the relay's fault injection, shared by `relay` and `demo`.

use std::time::Duration;

use clap::Args;
use medtunnel_relay::{Direction, FaultConfig, FaultKind};

use crate::args::probability;

#[derive(Args, Clone, Debug, Default)]
pub struct FaultArgs {
    /// Probability (0..=1) that the relay drops a frame.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_drop: f64,
    /// Probability that the relay sends a frame twice.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_duplicate: f64,
    /// Probability that the relay holds a frame back and sends it after the next one.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_reorder: f64,
    /// Probability that the relay delays a frame by --fault-delay-ms.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_delay: f64,
    /// Delay of a delayed frame, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub fault_delay_ms: u64,
    /// Probability that the relay cuts a frame short.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_truncate: f64,
    /// Probability that the relay flips 1 to 3 bits of a frame.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_flip_bits: f64,
    /// Probability that the relay sends an old frame again.
    #[arg(long, value_parser = probability, default_value_t = 0.0)]
    pub fault_replay: f64,
    /// Seed of the fault injector's random numbers.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
}

impl FaultArgs {
    /// Builds the relay's fault configuration, or `None` when every probability is 0.
    pub fn config(&self, seed_offset: u64) -> Option<FaultConfig> {
        let kinds = [
            (FaultKind::Drop, self.fault_drop),
            (FaultKind::Duplicate, self.fault_duplicate),
            (FaultKind::Reorder, self.fault_reorder),
            (FaultKind::Delay, self.fault_delay),
            (FaultKind::Truncate, self.fault_truncate),
            (FaultKind::FlipBits, self.fault_flip_bits),
            (FaultKind::Replay, self.fault_replay),
        ];
        if kinds.iter().all(|(_, probability)| *probability == 0.0) {
            return None;
        }
        let mut config = FaultConfig::none(self.fault_seed.wrapping_add(seed_offset));
        config.direction = Direction::Both;
        config.delay = Duration::from_millis(self.fault_delay_ms);
        for (kind, probability) in kinds {
            config = config.with(kind, probability);
        }
        Some(config)
    }
}
