//! Fault injection on whole frames, for tests and demos of the tunnel's defences.
//!
//! A [`FaultInjector`] sits in one direction of the relay and, for each frame, draws from
//! a seeded random number generator whether to drop, duplicate, reorder, delay,
//! truncate, bit-flip or replay it. With the same seed, configuration and frame sequence
//! it makes the same decisions. A shared [`FaultHandle`] switches injection off and on at
//! run time and reads the per-kind counters.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::trace;

/// Maximum number of bits that one flip-bits fault inverts.
const MAX_FLIPPED_BITS: usize = 3;

/// Kind of injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The frame is not forwarded.
    Drop,
    /// The frame is forwarded twice.
    Duplicate,
    /// The frame is held back and forwarded after the next one.
    Reorder,
    /// The frame is forwarded after [`FaultConfig::delay`].
    Delay,
    /// The frame is cut to a random shorter, non-empty length.
    Truncate,
    /// One to three random bits of the frame are inverted.
    FlipBits,
    /// A frame forwarded earlier is forwarded again after this one.
    Replay,
}

impl FaultKind {
    /// Every kind, in the order that [`FaultInjector`] draws them.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Drop,
        FaultKind::Duplicate,
        FaultKind::Reorder,
        FaultKind::Delay,
        FaultKind::Truncate,
        FaultKind::FlipBits,
        FaultKind::Replay,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Returns the lowercase name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Drop => "drop",
            FaultKind::Duplicate => "duplicate",
            FaultKind::Reorder => "reorder",
            FaultKind::Delay => "delay",
            FaultKind::Truncate => "truncate",
            FaultKind::FlipBits => "flip_bits",
            FaultKind::Replay => "replay",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Relay direction that faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Device to cloud.
    Upstream,
    /// Cloud to device.
    Downstream,
    /// Both directions, each with its own injector and random stream.
    Both,
}

impl Direction {
    /// Returns whether faults configured for `self` apply to frames going `direction`,
    /// which is [`Direction::Upstream`] or [`Direction::Downstream`].
    pub fn includes(self, direction: Direction) -> bool {
        self == Direction::Both || self == direction
    }
}

/// Probabilities and parameters of fault injection.
///
/// Each probability is in `0.0..=1.0` and is drawn independently for each frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Seed of the random number generator.
    pub seed: u64,
    /// Directions the faults apply to.
    pub direction: Direction,
    /// Probability that a frame is dropped.
    pub drop: f64,
    /// Probability that a frame is forwarded twice.
    pub duplicate: f64,
    /// Probability that a frame is held back until after the next one.
    pub reorder: f64,
    /// Probability that a frame is delayed by [`delay`](Self::delay).
    pub delay_probability: f64,
    /// Delay of a delayed frame.
    pub delay: Duration,
    /// Probability that a frame is truncated.
    pub truncate: f64,
    /// Probability that one to three bits of a frame are inverted.
    pub flip_bits: f64,
    /// Probability that an earlier frame is replayed after this one.
    pub replay: f64,
    /// Number of earlier frames kept for replay, at least 1.
    pub replay_history: usize,
}

impl FaultConfig {
    /// Creates a configuration that injects no fault, in both directions.
    pub fn none(seed: u64) -> Self {
        FaultConfig {
            seed,
            direction: Direction::Both,
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay_probability: 0.0,
            delay: Duration::from_millis(100),
            truncate: 0.0,
            flip_bits: 0.0,
            replay: 0.0,
            replay_history: 16,
        }
    }

    /// Returns the configuration with probability `probability` for `kind`.
    pub fn with(mut self, kind: FaultKind, probability: f64) -> Self {
        *self.probability_mut(kind) = probability;
        self
    }

    /// Returns the probability configured for `kind`.
    pub fn probability(&self, kind: FaultKind) -> f64 {
        match kind {
            FaultKind::Drop => self.drop,
            FaultKind::Duplicate => self.duplicate,
            FaultKind::Reorder => self.reorder,
            FaultKind::Delay => self.delay_probability,
            FaultKind::Truncate => self.truncate,
            FaultKind::FlipBits => self.flip_bits,
            FaultKind::Replay => self.replay,
        }
    }

    fn probability_mut(&mut self, kind: FaultKind) -> &mut f64 {
        match kind {
            FaultKind::Drop => &mut self.drop,
            FaultKind::Duplicate => &mut self.duplicate,
            FaultKind::Reorder => &mut self.reorder,
            FaultKind::Delay => &mut self.delay_probability,
            FaultKind::Truncate => &mut self.truncate,
            FaultKind::FlipBits => &mut self.flip_bits,
            FaultKind::Replay => &mut self.replay,
        }
    }

    /// Checks every probability and the replay history length.
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        for kind in FaultKind::ALL {
            let probability = self.probability(kind);
            if !(0.0..=1.0).contains(&probability) {
                return Err(FaultConfigError::InvalidProbability { kind, probability });
            }
        }
        if self.replay_history == 0 {
            return Err(FaultConfigError::EmptyReplayHistory);
        }
        Ok(())
    }
}

/// Invalid [`FaultConfig`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    /// A probability is outside `0.0..=1.0` or is NaN.
    #[error("invalid probability {probability} for fault {kind}: expected 0.0..=1.0")]
    InvalidProbability {
        /// Fault kind.
        kind: FaultKind,
        /// Configured probability.
        probability: f64,
    },
    /// The replay history length is 0.
    #[error("invalid replay history length 0: expected at least 1 frame")]
    EmptyReplayHistory,
}

/// Per-kind counters of injected faults, shared between injectors and readers.
#[derive(Debug, Default)]
pub struct FaultCounters {
    counts: [AtomicU64; FaultKind::ALL.len()],
}

impl FaultCounters {
    /// Returns the number of faults of `kind` injected so far.
    pub fn get(&self, kind: FaultKind) -> u64 {
        self.counts[kind.index()].load(Ordering::Relaxed)
    }

    /// Returns the number of faults of all kinds injected so far.
    pub fn total(&self) -> u64 {
        FaultKind::ALL.iter().map(|&kind| self.get(kind)).sum()
    }

    fn increment(&self, kind: FaultKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Shared switch and counters of the fault injectors of one relay.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    enabled: Arc<AtomicBool>,
    counters: Arc<FaultCounters>,
}

impl FaultHandle {
    /// Creates a handle with injection enabled and all counters at 0.
    pub fn new() -> Self {
        FaultHandle {
            enabled: Arc::new(AtomicBool::new(true)),
            counters: Arc::new(FaultCounters::default()),
        }
    }

    /// Switches injection on or off. The change applies from the next frame on.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Returns whether injection is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Returns the per-kind counters.
    pub fn counters(&self) -> &FaultCounters {
        &self.counters
    }
}

impl Default for FaultHandle {
    fn default() -> Self {
        Self::new()
    }
}

/// Frame that leaves the injector, to be forwarded after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// Frame bytes, possibly changed by a fault.
    pub frame: Vec<u8>,
    /// Time to wait before forwarding, zero for no delay.
    pub delay: Duration,
}

/// Fault injector for one direction of the relay.
pub struct FaultInjector {
    config: FaultConfig,
    rng: StdRng,
    handle: FaultHandle,
    /// Frame held back by a reorder fault.
    reordered_frame: Option<Vec<u8>>,
    /// Recent frames as received, oldest first, for replay.
    history: VecDeque<Vec<u8>>,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("config", &self.config)
            .field("holding_frame", &self.reordered_frame.is_some())
            .field("history_len", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl FaultInjector {
    /// Creates an injector that draws from `config.seed` and reports to `handle`.
    pub fn new(config: FaultConfig, handle: FaultHandle) -> Result<Self, FaultConfigError> {
        config.validate()?;
        Ok(FaultInjector {
            rng: StdRng::seed_from_u64(config.seed),
            history: VecDeque::with_capacity(config.replay_history),
            config,
            handle,
            reordered_frame: None,
        })
    }

    /// Returns the shared switch and counters.
    pub fn handle(&self) -> &FaultHandle {
        &self.handle
    }

    /// Passes one frame through the injector and appends the frames to forward, in
    /// order, to `out`.
    ///
    /// With injection switched off, a frame held back by an earlier reorder fault is
    /// released first, then `frame` unchanged, so later frames keep their order.
    pub fn apply(&mut self, frame: Vec<u8>, out: &mut Vec<Released>) {
        if !self.handle.is_enabled() {
            if let Some(held) = self.reordered_frame.take() {
                out.push(immediate(held));
            }
            out.push(immediate(frame));
            return;
        }

        if self.draw(FaultKind::Drop) {
            return;
        }
        let replayed = self.pick_replay();
        self.remember(&frame);

        let mut frame = frame;
        if frame.len() > 1 && self.draw(FaultKind::Truncate) {
            let len = self.rng.gen_range(1..frame.len());
            frame.truncate(len);
        }
        if self.draw(FaultKind::FlipBits) {
            self.flip_bits(&mut frame);
        }
        let copies = if self.draw(FaultKind::Duplicate) {
            2
        } else {
            1
        };
        let delay = if self.draw(FaultKind::Delay) {
            self.config.delay
        } else {
            Duration::ZERO
        };

        if self.reordered_frame.is_none() && self.draw(FaultKind::Reorder) {
            self.reordered_frame = Some(frame);
            return;
        }
        for _ in 0..copies {
            out.push(Released {
                frame: frame.clone(),
                delay,
            });
        }
        if let Some(held) = self.reordered_frame.take() {
            out.push(immediate(held));
        }
        if let Some(replayed) = replayed {
            out.push(immediate(replayed));
        }
    }

    /// Draws whether to inject a fault of `kind`, and counts it if so.
    fn draw(&mut self, kind: FaultKind) -> bool {
        let probability = self.config.probability(kind);
        if probability <= 0.0 {
            return false;
        }
        if !self.rng.gen_bool(probability) {
            return false;
        }
        self.handle.counters.increment(kind);
        trace!(fault = %kind, "injected fault");
        true
    }

    /// Draws whether to replay an earlier frame and returns a copy of it. Nothing is
    /// drawn or counted while the history is empty.
    fn pick_replay(&mut self) -> Option<Vec<u8>> {
        if self.history.is_empty() || !self.draw(FaultKind::Replay) {
            return None;
        }
        let index = self.rng.gen_range(0..self.history.len());
        self.history.get(index).cloned()
    }

    fn remember(&mut self, frame: &[u8]) {
        if self.config.probability(FaultKind::Replay) <= 0.0 {
            return;
        }
        if self.history.len() == self.config.replay_history {
            self.history.pop_front();
        }
        self.history.push_back(frame.to_vec());
    }

    /// Inverts 1..=3 distinct random bits of `frame`, fewer if it is shorter.
    fn flip_bits(&mut self, frame: &mut [u8]) {
        let bit_count = frame.len() * 8;
        let flips = self.rng.gen_range(1..=MAX_FLIPPED_BITS).min(bit_count);
        for bit in rand::seq::index::sample(&mut self.rng, bit_count, flips) {
            frame[bit / 8] ^= 1 << (bit % 8);
        }
    }
}

fn immediate(frame: Vec<u8>) -> Released {
    Released {
        frame,
        delay: Duration::ZERO,
    }
}
