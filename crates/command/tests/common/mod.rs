//! Fixtures shared by the command tests: keys, example devices and envelope builders.
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use medtunnel_command::body::{BasalProfile, BasalSegment, CommandBody, PacingMode};
use medtunnel_command::cgm::{CgmMonitor, CgmThresholds};
use medtunnel_command::envelope::MAX_SIGNED_COMMAND_LEN;
use medtunnel_command::executor::DEFAULT_CHALLENGE_LIFETIME_MS;
use medtunnel_command::limits::{CgmLimits, PacemakerLimits, PumpLimits, PumpMaxSettings};
use medtunnel_command::pacemaker::{PacemakerSettings, PacemakerUnit};
use medtunnel_command::pump::{PumpState, PumpTherapy};
use medtunnel_command::{
    CommandEnvelope, CommandExecutor, DeviceContext, ExecutionRecord, ExecutorConfig, Insulin,
    InsulinRate, Therapy,
};

pub const DEVICE_ID: [u8; 16] = [0xD0; 16];
pub const EPOCH: u32 = 7;
pub const NOW_MS: u64 = 1_000_000;

pub fn command_key() -> SigningKey {
    SigningKey::from_bytes(&[0x42; 32])
}

pub fn config() -> ExecutorConfig {
    ExecutorConfig {
        device_id: DEVICE_ID,
        epoch: EPOCH,
        command_key: command_key().verifying_key(),
        challenge_lifetime_ms: DEFAULT_CHALLENGE_LIFETIME_MS,
    }
}

pub fn healthy(now_ms: u64) -> DeviceContext {
    DeviceContext {
        now_ms,
        channel_healthy: true,
    }
}

pub fn pump_state() -> PumpState {
    let profile = BasalProfile::new(&[
        BasalSegment {
            start_minute: 0,
            rate: InsulinRate(80),
        },
        BasalSegment {
            start_minute: 360,
            rate: InsulinRate(120),
        },
        BasalSegment {
            start_minute: 1320,
            rate: InsulinRate(90),
        },
    ])
    .expect("fixture profile is ordered");
    PumpState {
        basal_profile: profile,
        temp_basal: None,
        suspended: false,
        reservoir: Insulin(20_000),
        insulin_on_board: Insulin(0),
        insulin_on_board_at_ms: 0,
        delivered_today: 0,
        max: PumpMaxSettings {
            max_bolus: Insulin(1500),
            max_basal: InsulinRate(500),
            max_insulin_on_board: Insulin(3000),
        },
    }
}

pub fn pump() -> PumpTherapy {
    PumpTherapy::new(PumpLimits::EXAMPLE, pump_state())
}

pub fn pacemaker_settings() -> PacemakerSettings {
    PacemakerSettings {
        mode: PacingMode::Ddd,
        lower_rate_ppm: 60,
        upper_tracking_ppm: 130,
        av_delay_ms: 180,
        amplitude_decivolts: 35,
    }
}

pub fn pacemaker() -> PacemakerUnit {
    PacemakerUnit::new(PacemakerLimits::EXAMPLE, pacemaker_settings())
}

pub fn cgm() -> CgmMonitor {
    CgmMonitor::new(
        CgmLimits::EXAMPLE,
        CgmThresholds {
            low_mg_dl: 70,
            high_mg_dl: 250,
        },
    )
}

pub fn executor<T: Therapy>(therapy: T) -> CommandExecutor<T> {
    CommandExecutor::new(config(), ExecutionRecord::default(), therapy)
}

pub fn envelope(sequence: u64, body: CommandBody) -> CommandEnvelope {
    let mut command_id = [0u8; 16];
    command_id[..8].copy_from_slice(&sequence.to_be_bytes());
    CommandEnvelope {
        device_id: DEVICE_ID,
        command_id,
        sequence,
        epoch: EPOCH,
        expires_at_ms: NOW_MS + 30_000,
        challenge: None,
        body,
    }
}

/// Signs and encodes an envelope with the provisioned command key.
pub fn signed_bytes(envelope: &CommandEnvelope) -> Vec<u8> {
    let mut out = [0u8; MAX_SIGNED_COMMAND_LEN];
    let len = envelope
        .sign(&command_key())
        .encode(&mut out)
        .expect("buffer has the maximum length");
    out[..len].to_vec()
}
