//! Records of therapy devices (insulin pump, pacemaker): the device's status, telemetry,
//! signed commands from the cloud and the device's acknowledgements of them.
//!
//! # Layouts
//!
//! Multi-byte fields of these records are little-endian, like the CGM measurement. The
//! command and acknowledgement records carry the big-endian encodings of
//! `medtunnel-command` unchanged inside a length-prefixed field.
//!
//! Device status (`0x02`), device to cloud, after every handshake and on request:
//!
//! | offset | size | field |
//! |-------:|-----:|-------|
//! | 0 | 1 | record type `0x02` |
//! | 1 | 1 | model: `1` insulin pump, `2` pacemaker, `3` CGM |
//! | 2 | 4 | boot epoch, u32 |
//! | 6 | 8 | session clock in milliseconds since this boot, u64 |
//! | 14 | 8 | sequence of the last executed command, u64 (0 before the first) |
//! | 22 | 16 | command id of the last executed command (zeros before the first) |
//! | 38 | 1 | challenge flag: `0` absent, `1` present |
//! | 39 | 16 | fresh challenge, only when the flag is `1` |
//! | c | .. | settings of the model, below |
//!
//! Pump settings: `flags: u8` (bit 0 suspended, other bits zero), `max_bolus: u16`
//! (0.01 U), `max_basal: u16` (0.01 U/h), `max_insulin_on_board: u16` (0.01 U),
//! `delivered_today: u32` (0.01 U), `segments: u8` (1 to 24), then per segment
//! `start_minute: u16` and `rate: u16` (0.01 U/h). Pacemaker settings: `mode: u8`,
//! `lower_rate: u8` (ppm), `upper_tracking: u8` (ppm), `av_delay: u16` (ms),
//! `amplitude: u8` (0.1 V). CGM settings: `low: u16`, `high: u16` (mg/dL).
//!
//! Signed command (`0x03`), cloud to device: type, `length: u8` (1 to
//! [`MAX_SIGNED_COMMAND_LEN`]), then the encoded `SignedCommand`. The record does not
//! decode the command, so the device's executor sees malformed command bytes and
//! acknowledges them as malformed.
//!
//! Command acknowledgement (`0x04`), device to cloud: type, `length: u8`, then the
//! encoded `Acknowledgement`, which must decode exactly.
//!
//! Pump telemetry (`0x05`), 16 bytes: type, `session_clock_ms: u64`, `reservoir: u16`
//! (0.01 U), `insulin_on_board: u16` (0.01 U), `basal_rate: u16` (0.01 U/h, the rate
//! delivered now), `flags: u8` (bit 0 suspended, bit 1 temporary basal running).
//!
//! Pacemaker telemetry (`0x06`), 14 bytes: type, `session_clock_ms: u64`,
//! `heart_rate: u8` (bpm), `battery: u16` (mV), `lead_impedance: u16` (ohms).
//!
//! Status request (`0x07`), cloud to device, 2 bytes: type, `flags: u8` (bit 0: issue a
//! fresh challenge with the status).

use medtunnel_command::ack::{Acknowledgement, MAX_ACK_LEN};
use medtunnel_command::body::{BasalProfile, BasalSegment, PacingMode, MAX_BASAL_SEGMENTS};
use medtunnel_command::cgm::CgmThresholds;
use medtunnel_command::envelope::{Challenge, CommandId, DeviceId, MAX_SIGNED_COMMAND_LEN};
use medtunnel_command::limits::PumpMaxSettings;
use medtunnel_command::pacemaker::{PacemakerSettings, PacemakerTelemetry};
use medtunnel_command::{Insulin, InsulinRate};
use sha2::{Digest, Sha256};

use crate::{RecordError, RecordType};

/// Domain label of [`command_device_id`].
const DEVICE_ID_LABEL: &[u8] = b"medtunnel command device id v1";

/// Derives the 16-byte device id that signed commands carry from the registry's device
/// id: the first 16 bytes of SHA-256 over a domain label and the id's UTF-8 bytes. The
/// cloud and the device derive it the same way, so neither stores a second id.
pub fn command_device_id(device_id: &str) -> DeviceId {
    let digest = Sha256::new()
        .chain_update(DEVICE_ID_LABEL)
        .chain_update(device_id.as_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// Device model as carried in the status record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusModel {
    /// Insulin pump.
    Pump = 1,
    /// Pacemaker remote-monitoring unit.
    Pacemaker = 2,
    /// Continuous glucose monitor.
    Cgm = 3,
}

/// Pump settings in a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpStatus {
    /// Whether delivery is suspended.
    pub suspended: bool,
    /// Programmed maxima.
    pub max: PumpMaxSettings,
    /// Insulin delivered since the last daily reset, in 0.01 U.
    pub delivered_today: u32,
    /// Programmed basal profile.
    pub basal_profile: BasalProfile,
}

/// Settings of the reporting device, by model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusSettings {
    /// Insulin pump settings.
    Pump(PumpStatus),
    /// Pacemaker settings.
    Pacemaker(PacemakerSettings),
    /// CGM alert thresholds.
    Cgm(CgmThresholds),
}

impl StatusSettings {
    /// Model whose settings these are.
    pub fn model(&self) -> StatusModel {
        match self {
            Self::Pump(_) => StatusModel::Pump,
            Self::Pacemaker(_) => StatusModel::Pacemaker,
            Self::Cgm(_) => StatusModel::Cgm,
        }
    }
}

/// A therapy device's report of its boot epoch, session clock, last executed command,
/// an optional fresh challenge and its settings.
///
/// The values are what the device claims; the tunnel authenticates that the device sent
/// them, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceStatus {
    /// Boot counter of the device.
    pub epoch: u32,
    /// Milliseconds since this boot when the report was made.
    pub session_clock_ms: u64,
    /// Sequence of the last executed command, 0 before the first.
    pub last_executed_sequence: u64,
    /// Id of the last executed command, zeros before the first.
    pub last_executed_command_id: CommandId,
    /// A challenge the device issued for the next high-risk command.
    pub challenge: Option<Challenge>,
    /// Current settings.
    pub settings: StatusSettings,
}

/// Pump measurements reported periodically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpTelemetry {
    /// Session clock of the measurement in milliseconds.
    pub session_clock_ms: u64,
    /// Insulin left in the reservoir.
    pub reservoir: Insulin,
    /// Estimated insulin on board.
    pub insulin_on_board: Insulin,
    /// Basal rate delivered now.
    pub basal_rate: InsulinRate,
    /// Whether delivery is suspended.
    pub suspended: bool,
    /// Whether a temporary basal runs.
    pub temp_basal_active: bool,
}

/// Pacemaker measurements reported periodically, with the session clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacemakerReport {
    /// Session clock of the measurement in milliseconds.
    pub session_clock_ms: u64,
    /// Heart rate, battery and lead impedance.
    pub telemetry: PacemakerTelemetry,
}

/// Encoded signed command bytes, held without decoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandBytes {
    bytes: [u8; MAX_SIGNED_COMMAND_LEN],
    len: u8,
}

impl core::fmt::Debug for CommandBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CommandBytes")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

const _: () = assert!(MAX_SIGNED_COMMAND_LEN <= u8::MAX as usize);
const _: () = assert!(MAX_ACK_LEN <= u8::MAX as usize);

impl CommandBytes {
    /// Wraps 1 to [`MAX_SIGNED_COMMAND_LEN`] bytes, or returns `None` for another length.
    pub fn new(command: &[u8]) -> Option<Self> {
        if command.is_empty() || command.len() > MAX_SIGNED_COMMAND_LEN {
            return None;
        }
        let mut bytes = [0u8; MAX_SIGNED_COMMAND_LEN];
        bytes[..command.len()].copy_from_slice(command);
        // The length was checked against MAX_SIGNED_COMMAND_LEN, which fits in a u8.
        Some(Self {
            bytes,
            len: command.len() as u8,
        })
    }

    /// The command bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A request from the cloud for a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRequest {
    /// Whether the device is to issue a fresh challenge with the status.
    pub challenge_wanted: bool,
}

pub(crate) const PUMP_TELEMETRY_LEN: usize = 16;
pub(crate) const PACEMAKER_TELEMETRY_LEN: usize = 14;
const STATUS_REQUEST_LEN: usize = 2;
const STATUS_FIXED_LEN: usize = 39;

impl DeviceStatus {
    /// Appends the record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RecordType::DeviceStatus.as_byte());
        out.push(self.settings.model() as u8);
        out.extend_from_slice(&self.epoch.to_le_bytes());
        out.extend_from_slice(&self.session_clock_ms.to_le_bytes());
        out.extend_from_slice(&self.last_executed_sequence.to_le_bytes());
        out.extend_from_slice(&self.last_executed_command_id);
        match &self.challenge {
            None => out.push(0),
            Some(challenge) => {
                out.push(1);
                out.extend_from_slice(challenge);
            }
        }
        encode_settings(&self.settings, out);
    }

    /// Number of bytes [`Self::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        let challenge = if self.challenge.is_some() { 16 } else { 0 };
        let settings = match &self.settings {
            StatusSettings::Pump(p) => 12 + 4 * p.basal_profile.segments().len(),
            StatusSettings::Pacemaker(_) => 6,
            StatusSettings::Cgm(_) => 4,
        };
        STATUS_FIXED_LEN + challenge + settings
    }

    /// Decodes exactly one status record.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, RecordType::DeviceStatus)?;
        let model = r.u8()?;
        let epoch = r.u32()?;
        let session_clock_ms = r.u64()?;
        let last_executed_sequence = r.u64()?;
        let last_executed_command_id = r.array()?;
        let challenge = match r.u8()? {
            0 => None,
            1 => Some(r.array()?),
            _ => return Err(RecordError::InvalidField("challenge flag")),
        };
        let settings = match model {
            1 => StatusSettings::Pump(decode_pump_status(&mut r)?),
            2 => StatusSettings::Pacemaker(decode_pacemaker_settings(&mut r)?),
            3 => StatusSettings::Cgm(CgmThresholds {
                low_mg_dl: r.u16()?,
                high_mg_dl: r.u16()?,
            }),
            _ => return Err(RecordError::InvalidField("device model")),
        };
        r.finish()?;
        Ok(Self {
            epoch,
            session_clock_ms,
            last_executed_sequence,
            last_executed_command_id,
            challenge,
            settings,
        })
    }
}

fn encode_settings(settings: &StatusSettings, out: &mut Vec<u8>) {
    match settings {
        StatusSettings::Pump(p) => {
            out.push(u8::from(p.suspended));
            out.extend_from_slice(&p.max.max_bolus.0.to_le_bytes());
            out.extend_from_slice(&p.max.max_basal.0.to_le_bytes());
            out.extend_from_slice(&p.max.max_insulin_on_board.0.to_le_bytes());
            out.extend_from_slice(&p.delivered_today.to_le_bytes());
            let segments = p.basal_profile.segments();
            // A profile holds at most 24 segments.
            out.push(segments.len() as u8);
            for segment in segments {
                out.extend_from_slice(&segment.start_minute.to_le_bytes());
                out.extend_from_slice(&segment.rate.0.to_le_bytes());
            }
        }
        StatusSettings::Pacemaker(s) => {
            out.push(s.mode as u8);
            out.push(s.lower_rate_ppm);
            out.push(s.upper_tracking_ppm);
            out.extend_from_slice(&s.av_delay_ms.to_le_bytes());
            out.push(s.amplitude_decivolts);
        }
        StatusSettings::Cgm(t) => {
            out.extend_from_slice(&t.low_mg_dl.to_le_bytes());
            out.extend_from_slice(&t.high_mg_dl.to_le_bytes());
        }
    }
}

fn decode_pump_status(r: &mut Reader<'_>) -> Result<PumpStatus, RecordError> {
    let flags = r.u8()?;
    if flags & !1 != 0 {
        return Err(RecordError::UnknownFlags { flags });
    }
    let max = PumpMaxSettings {
        max_bolus: Insulin(r.u16()?),
        max_basal: InsulinRate(r.u16()?),
        max_insulin_on_board: Insulin(r.u16()?),
    };
    let delivered_today = r.u32()?;
    let count = usize::from(r.u8()?);
    if count == 0 || count > MAX_BASAL_SEGMENTS {
        return Err(RecordError::InvalidField("basal segment count"));
    }
    let mut segments = [BasalSegment::default(); MAX_BASAL_SEGMENTS];
    for segment in segments.iter_mut().take(count) {
        segment.start_minute = r.u16()?;
        segment.rate = InsulinRate(r.u16()?);
    }
    let basal_profile = BasalProfile::new(&segments[..count])
        .map_err(|_| RecordError::InvalidField("basal segment order"))?;
    Ok(PumpStatus {
        suspended: flags & 1 != 0,
        max,
        delivered_today,
        basal_profile,
    })
}

fn decode_pacemaker_settings(r: &mut Reader<'_>) -> Result<PacemakerSettings, RecordError> {
    let mode =
        PacingMode::from_tag(r.u8()?).map_err(|_| RecordError::InvalidField("pacing mode"))?;
    Ok(PacemakerSettings {
        mode,
        lower_rate_ppm: r.u8()?,
        upper_tracking_ppm: r.u8()?,
        av_delay_ms: r.u16()?,
        amplitude_decivolts: r.u8()?,
    })
}

impl CommandBytes {
    /// Appends the signed command record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RecordType::SignedCommand.as_byte());
        out.push(self.len);
        out.extend_from_slice(self.as_bytes());
    }

    /// Number of bytes [`Self::encode_into`] appends.
    pub fn encoded_len(&self) -> usize {
        2 + usize::from(self.len)
    }

    /// Decodes exactly one signed command record, without decoding the command.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, RecordType::SignedCommand)?;
        let len = usize::from(r.u8()?);
        let command = r.bytes(len)?;
        r.finish()?;
        Self::new(command).ok_or(RecordError::InvalidField("signed command length"))
    }
}

/// Appends a command acknowledgement record to `out`.
pub fn encode_ack(ack: &Acknowledgement, out: &mut Vec<u8>) {
    let mut encoded = [0u8; MAX_ACK_LEN];
    // MAX_ACK_LEN is the longest acknowledgement encoding, so this cannot fail.
    let len = ack.encode(&mut encoded).unwrap_or(0);
    out.push(RecordType::CommandAck.as_byte());
    // At most MAX_ACK_LEN, checked to fit in a u8 above.
    out.push(len as u8);
    out.extend_from_slice(&encoded[..len]);
}

/// Decodes exactly one command acknowledgement record.
pub fn decode_ack(bytes: &[u8]) -> Result<Acknowledgement, RecordError> {
    let mut r = Reader::new(bytes, RecordType::CommandAck)?;
    let len = usize::from(r.u8()?);
    let encoded = r.bytes(len)?;
    r.finish()?;
    Acknowledgement::decode(encoded).map_err(|_| RecordError::InvalidField("acknowledgement"))
}

impl PumpTelemetry {
    /// Appends the record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RecordType::PumpTelemetry.as_byte());
        out.extend_from_slice(&self.session_clock_ms.to_le_bytes());
        out.extend_from_slice(&self.reservoir.0.to_le_bytes());
        out.extend_from_slice(&self.insulin_on_board.0.to_le_bytes());
        out.extend_from_slice(&self.basal_rate.0.to_le_bytes());
        out.push(u8::from(self.suspended) | (u8::from(self.temp_basal_active) << 1));
    }

    /// Decodes exactly one pump telemetry record.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, RecordType::PumpTelemetry)?;
        let telemetry = Self {
            session_clock_ms: r.u64()?,
            reservoir: Insulin(r.u16()?),
            insulin_on_board: Insulin(r.u16()?),
            basal_rate: InsulinRate(r.u16()?),
            suspended: false,
            temp_basal_active: false,
        };
        let flags = r.u8()?;
        if flags & !0b11 != 0 {
            return Err(RecordError::UnknownFlags { flags });
        }
        r.finish()?;
        Ok(Self {
            suspended: flags & 1 != 0,
            temp_basal_active: flags & 2 != 0,
            ..telemetry
        })
    }
}

impl PacemakerReport {
    /// Appends the record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RecordType::PacemakerTelemetry.as_byte());
        out.extend_from_slice(&self.session_clock_ms.to_le_bytes());
        out.push(self.telemetry.heart_rate_bpm);
        out.extend_from_slice(&self.telemetry.battery_millivolts.to_le_bytes());
        out.extend_from_slice(&self.telemetry.lead_impedance_ohms.to_le_bytes());
    }

    /// Decodes exactly one pacemaker telemetry record.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, RecordType::PacemakerTelemetry)?;
        let report = Self {
            session_clock_ms: r.u64()?,
            telemetry: PacemakerTelemetry {
                heart_rate_bpm: r.u8()?,
                battery_millivolts: r.u16()?,
                lead_impedance_ohms: r.u16()?,
            },
        };
        r.finish()?;
        Ok(report)
    }
}

impl StatusRequest {
    /// Appends the record to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(RecordType::StatusRequest.as_byte());
        out.push(u8::from(self.challenge_wanted));
    }

    /// Decodes exactly one status request record.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes, RecordType::StatusRequest)?;
        let flags = r.u8()?;
        if flags & !1 != 0 {
            return Err(RecordError::UnknownFlags { flags });
        }
        r.finish()?;
        Ok(Self {
            challenge_wanted: flags & 1 != 0,
        })
    }
}

/// Lengths of the fixed-size records, for [`crate::Record::encoded_len`].
pub(crate) const fn fixed_len(record_type: RecordType) -> usize {
    match record_type {
        RecordType::PumpTelemetry => PUMP_TELEMETRY_LEN,
        RecordType::PacemakerTelemetry => PACEMAKER_TELEMETRY_LEN,
        RecordType::StatusRequest => STATUS_REQUEST_LEN,
        _ => 0,
    }
}

/// Bounds-checked little-endian reader over one record, after its type byte.
struct Reader<'a> {
    input: &'a [u8],
    total: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], expected: RecordType) -> Result<Self, RecordError> {
        let (&found, rest) = bytes.split_first().ok_or(RecordError::Truncated)?;
        if found != expected.as_byte() {
            return Err(RecordError::UnexpectedType { expected, found });
        }
        Ok(Self {
            input: rest,
            total: bytes.len(),
        })
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        if self.input.len() < len {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn finish(self) -> Result<(), RecordError> {
        if self.input.is_empty() {
            return Ok(());
        }
        Err(RecordError::Length {
            expected: self.total - self.input.len(),
            found: self.total,
        })
    }
}
