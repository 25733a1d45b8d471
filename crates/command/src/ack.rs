//! Acknowledgements: what the device sends back for every command it receives.
//!
//! The acknowledgement travels inside the authenticated tunnel, which protects it from
//! the relay; it carries no signature of its own.
//!
//! # Encoding (version 1, big-endian)
//!
//! | offset | size | field                                                          |
//! |--------|------|----------------------------------------------------------------|
//! | 0      | 1    | version, `1`                                                   |
//! | 1      | 16   | command id (zeros when the command did not decode)             |
//! | 17     | 8    | sequence (zero when the command did not decode)                |
//! | 25     | 1    | outcome: `0` executed, `1..=14` a [`RejectReason`], `0x40 + n` limit violation `n` |
//! | 26     | 1    | executed only: summary tag, `1` pump, `2` pacemaker, `3` CGM   |
//! | 27     | …    | executed only: the summary fields below                        |
//!
//! Pump summary, 15 bytes: `flags: u8` (bit 0 suspended, bit 1 temporary basal active,
//! other bits zero), `reservoir: u16` (0.01 U), `insulin_on_board: u16` (0.01 U),
//! `delivered_today: u32` (0.01 U), `max_bolus: u16` (0.01 U), `max_basal: u16`
//! (0.01 U/h), `max_insulin_on_board: u16` (0.01 U).
//! Pacemaker summary, 6 bytes: `mode: u8`, `lower_rate: u8` (ppm), `upper_tracking: u8`
//! (ppm), `av_delay: u16` (ms), `amplitude: u8` (0.1 V).
//! CGM summary, 4 bytes: `low: u16`, `high: u16` (mg/dL).

use crate::body::{Insulin, InsulinRate, PacingMode};
use crate::cgm::CgmThresholds;
use crate::envelope::CommandId;
use crate::limits::{LimitViolation, PumpMaxSettings};
use crate::pacemaker::PacemakerSettings;
use crate::wire::{BufferTooSmall, DecodeError, Reader, Writer};

/// Version byte of the acknowledgement encoding.
pub const ACK_VERSION: u8 = 1;
/// Largest encoded acknowledgement: an executed pump command.
pub const MAX_ACK_LEN: usize = 27 + 15;

/// Reason the device rejected a command, with a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The command bytes do not decode.
    Malformed,
    /// The signature does not verify under the provisioned command-signing key.
    SignatureInvalid,
    /// The command is addressed to another device.
    WrongDevice,
    /// The command was issued for an earlier boot epoch of the device.
    WrongEpoch,
    /// The sequence is not above the last executed one: a replayed or stale command.
    Replayed,
    /// The command is the last one executed, sent again: it ran once and stays done.
    AlreadyExecuted,
    /// The session clock has passed the command's expiry.
    Expired,
    /// A high-risk command carries no challenge.
    ChallengeMissing,
    /// The challenge is not the one outstanding: never issued, replaced or already used.
    ChallengeUnknown,
    /// The challenge matches but its lifetime has passed.
    ChallengeExpired,
    /// The command is for another device model.
    WrongDeviceModel,
    /// Insulin delivery is suspended, so the pump delivers no bolus or temporary basal.
    DeliverySuspended,
    /// The channel has been silent too long, so the pump takes no remote bolus.
    RemoteBolusBlocked,
    /// The execution record could not be persisted, so the command did not run.
    PersistFailed,
    /// The command breaks a limit of the device.
    OutOfLimits(LimitViolation),
}

const LIMIT_CODE_BASE: u8 = 0x40;

const SIMPLE_REASONS: [(u8, RejectReason); 14] = [
    (1, RejectReason::Malformed),
    (2, RejectReason::SignatureInvalid),
    (3, RejectReason::WrongDevice),
    (4, RejectReason::WrongEpoch),
    (5, RejectReason::Replayed),
    (6, RejectReason::AlreadyExecuted),
    (7, RejectReason::Expired),
    (8, RejectReason::ChallengeMissing),
    (9, RejectReason::ChallengeUnknown),
    (10, RejectReason::ChallengeExpired),
    (11, RejectReason::WrongDeviceModel),
    (12, RejectReason::DeliverySuspended),
    (13, RejectReason::RemoteBolusBlocked),
    (14, RejectReason::PersistFailed),
];

impl RejectReason {
    /// Stable code of the reason, as sent in acknowledgements.
    pub fn code(self) -> u8 {
        if let Self::OutOfLimits(v) = self {
            return LIMIT_CODE_BASE + v.code();
        }
        SIMPLE_REASONS
            .iter()
            .find(|(_, r)| *r == self)
            .map_or(0, |(code, _)| *code)
    }

    /// Looks up a reason by its code.
    pub fn from_code(code: u8) -> Option<Self> {
        if code > LIMIT_CODE_BASE {
            return LimitViolation::from_code(code - LIMIT_CODE_BASE).map(Self::OutOfLimits);
        }
        SIMPLE_REASONS
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, r)| *r)
    }
}

/// Pump state after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpSummary {
    /// Whether insulin delivery is suspended.
    pub suspended: bool,
    /// Whether a temporary basal is running.
    pub temp_basal_active: bool,
    /// Insulin left in the reservoir.
    pub reservoir: Insulin,
    /// Estimated insulin on board.
    pub insulin_on_board: Insulin,
    /// Insulin delivered since the last daily reset, in 0.01 U.
    pub delivered_today: u32,
    /// Programmed maxima.
    pub max: PumpMaxSettings,
}

/// Device state after an executed command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateSummary {
    /// Insulin pump.
    Pump(PumpSummary),
    /// Pacemaker settings.
    Pacemaker(PacemakerSettings),
    /// CGM alert thresholds.
    Cgm(CgmThresholds),
}

/// Result of one command on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The command ran; the summary is the state after it.
    Executed(StateSummary),
    /// The command did not run and changed nothing.
    Rejected(RejectReason),
}

/// The device's acknowledgement of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acknowledgement {
    /// Id of the acknowledged command, zeros when it did not decode.
    pub command_id: CommandId,
    /// Sequence of the acknowledged command, zero when it did not decode.
    pub sequence: u64,
    /// Result of the command on the device.
    pub outcome: Outcome,
}

mod summary_tag {
    pub const PUMP: u8 = 1;
    pub const PACEMAKER: u8 = 2;
    pub const CGM: u8 = 3;
}

impl Acknowledgement {
    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        match self.outcome {
            Outcome::Rejected(_) => 26,
            Outcome::Executed(StateSummary::Pump(_)) => 27 + 15,
            Outcome::Executed(StateSummary::Pacemaker(_)) => 27 + 6,
            Outcome::Executed(StateSummary::Cgm(_)) => 27 + 4,
        }
    }

    /// Encodes the acknowledgement into `out` and returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.encoded_len())?;
        w.u8(ACK_VERSION);
        w.bytes(&self.command_id);
        w.u64(self.sequence);
        match &self.outcome {
            Outcome::Rejected(reason) => w.u8(reason.code()),
            Outcome::Executed(summary) => {
                w.u8(0);
                write_summary(summary, &mut w);
            }
        }
        Ok(w.position())
    }

    /// Decodes exactly one acknowledgement that fills `input`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input);
        let version = r.u8()?;
        if version != ACK_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let command_id = r.array()?;
        let sequence = r.u64()?;
        let outcome = match r.u8()? {
            0 => Outcome::Executed(read_summary(&mut r)?),
            code => Outcome::Rejected(
                RejectReason::from_code(code).ok_or(DecodeError::UnknownTag(code))?,
            ),
        };
        r.finish()?;
        Ok(Self {
            command_id,
            sequence,
            outcome,
        })
    }
}

fn write_summary(summary: &StateSummary, w: &mut Writer<'_>) {
    match summary {
        StateSummary::Pump(p) => {
            w.u8(summary_tag::PUMP);
            w.u8(u8::from(p.suspended) | (u8::from(p.temp_basal_active) << 1));
            w.u16(p.reservoir.0);
            w.u16(p.insulin_on_board.0);
            w.u32(p.delivered_today);
            w.u16(p.max.max_bolus.0);
            w.u16(p.max.max_basal.0);
            w.u16(p.max.max_insulin_on_board.0);
        }
        StateSummary::Pacemaker(s) => {
            w.u8(summary_tag::PACEMAKER);
            w.u8(s.mode as u8);
            w.u8(s.lower_rate_ppm);
            w.u8(s.upper_tracking_ppm);
            w.u16(s.av_delay_ms);
            w.u8(s.amplitude_decivolts);
        }
        StateSummary::Cgm(t) => {
            w.u8(summary_tag::CGM);
            w.u16(t.low_mg_dl);
            w.u16(t.high_mg_dl);
        }
    }
}

fn read_summary(r: &mut Reader<'_>) -> Result<StateSummary, DecodeError> {
    let summary = match r.u8()? {
        summary_tag::PUMP => {
            let flags = r.u8()?;
            if flags & !0b11 != 0 {
                return Err(DecodeError::InvalidField("pump summary flags"));
            }
            StateSummary::Pump(PumpSummary {
                suspended: flags & 1 != 0,
                temp_basal_active: flags & 2 != 0,
                reservoir: Insulin(r.u16()?),
                insulin_on_board: Insulin(r.u16()?),
                delivered_today: r.u32()?,
                max: PumpMaxSettings {
                    max_bolus: Insulin(r.u16()?),
                    max_basal: InsulinRate(r.u16()?),
                    max_insulin_on_board: Insulin(r.u16()?),
                },
            })
        }
        summary_tag::PACEMAKER => StateSummary::Pacemaker(PacemakerSettings {
            mode: PacingMode::from_tag(r.u8()?)?,
            lower_rate_ppm: r.u8()?,
            upper_tracking_ppm: r.u8()?,
            av_delay_ms: r.u16()?,
            amplitude_decivolts: r.u8()?,
        }),
        summary_tag::CGM => StateSummary::Cgm(CgmThresholds {
            low_mg_dl: r.u16()?,
            high_mg_dl: r.u16()?,
        }),
        other => return Err(DecodeError::UnknownTag(other)),
    };
    Ok(summary)
}
