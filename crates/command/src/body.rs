//! Command bodies of the three device models, with exact units, and their encoding.
//!
//! # Encoding
//!
//! A body is one tag byte followed by fixed-size big-endian fields. Decoding is strict:
//! an unknown tag, a short or long input, or a field outside its encoding's domain is
//! rejected. Range checks against a device's limits are not part of decoding; they live
//! in [`crate::limits`].
//!
//! | tag    | command                     | fields after the tag                                  |
//! |--------|-----------------------------|-------------------------------------------------------|
//! | `0x10` | pump: set basal profile     | `n: u8` (1..=24), then `n` × (`start_minute: u16`, `rate: u16` in 0.01 U/h) |
//! | `0x11` | pump: temporary basal       | `kind: u8` (0 percent, 1 absolute), `value: u16` (% or 0.01 U/h), `duration_minutes: u16` |
//! | `0x12` | pump: bolus                 | `amount: u16` in 0.01 U                               |
//! | `0x13` | pump: suspend delivery      | none                                                  |
//! | `0x14` | pump: resume delivery       | none                                                  |
//! | `0x15` | pump: set max bolus         | `amount: u16` in 0.01 U                               |
//! | `0x16` | pump: set max basal rate    | `rate: u16` in 0.01 U/h                               |
//! | `0x17` | pump: set max insulin on board | `amount: u16` in 0.01 U                            |
//! | `0x20` | pacemaker: pacing mode      | `mode: u8` (see [`PacingMode`])                       |
//! | `0x21` | pacemaker: lower rate limit | `rate: u8` in pulses per minute                       |
//! | `0x22` | pacemaker: upper tracking rate | `rate: u8` in pulses per minute                    |
//! | `0x23` | pacemaker: AV delay         | `delay: u16` in milliseconds                          |
//! | `0x24` | pacemaker: output amplitude | `amplitude: u8` in 0.1 V                              |
//! | `0x30` | CGM: alert thresholds       | `low: u16`, `high: u16` in mg/dL                      |
//!
//! Basal segments must start at minute 0, have strictly increasing start minutes and
//! start before minute 1440; each segment runs until the next one starts or the day ends.

use crate::wire::{BufferTooSmall, DecodeError, Reader, Writer};

/// Maximum number of segments in a basal profile.
pub const MAX_BASAL_SEGMENTS: usize = 24;
/// Minutes in a day; basal segment start minutes are below this.
pub const MINUTES_PER_DAY: u16 = 1440;
/// Largest encoded body: a basal profile with [`MAX_BASAL_SEGMENTS`] segments.
pub const MAX_BODY_LEN: usize = 2 + 4 * MAX_BASAL_SEGMENTS;

/// An amount of insulin in steps of 0.01 U (`Insulin(150)` is 1.50 U).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Insulin(pub u16);

/// An insulin delivery rate in steps of 0.01 U/h (`InsulinRate(85)` is 0.85 U/h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct InsulinRate(pub u16);

/// One segment of a basal profile: the rate that applies from `start_minute` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BasalSegment {
    /// Minute of the day (0..1440) at which the segment starts.
    pub start_minute: u16,
    /// Basal rate during the segment.
    pub rate: InsulinRate,
}

/// A daily basal program of 1 to 24 segments. Holding one guarantees the segment order
/// described in the module docs, not that the rates are within any limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BasalProfile {
    segments: [BasalSegment; MAX_BASAL_SEGMENTS],
    len: u8,
}

/// Error of a segment list that is not a valid basal profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileError {
    /// No segment, or more than [`MAX_BASAL_SEGMENTS`].
    SegmentCount,
    /// The first segment does not start at minute 0.
    FirstSegmentNotAtMidnight,
    /// Start minutes are not strictly increasing or reach minute 1440.
    SegmentOrder,
}

impl BasalProfile {
    /// Builds a profile from segments in the order described in the module docs.
    pub fn new(segments: &[BasalSegment]) -> Result<Self, ProfileError> {
        if segments.is_empty() || segments.len() > MAX_BASAL_SEGMENTS {
            return Err(ProfileError::SegmentCount);
        }
        if segments[0].start_minute != 0 {
            return Err(ProfileError::FirstSegmentNotAtMidnight);
        }
        let ordered = segments
            .windows(2)
            .all(|w| w[0].start_minute < w[1].start_minute);
        let in_day = segments.iter().all(|s| s.start_minute < MINUTES_PER_DAY);
        if !ordered || !in_day {
            return Err(ProfileError::SegmentOrder);
        }
        let mut profile = Self {
            segments: [BasalSegment::default(); MAX_BASAL_SEGMENTS],
            len: segments.len() as u8,
        };
        profile.segments[..segments.len()].copy_from_slice(segments);
        Ok(profile)
    }

    /// A profile with one rate for the whole day.
    pub fn flat(rate: InsulinRate) -> Self {
        let mut segments = [BasalSegment::default(); MAX_BASAL_SEGMENTS];
        segments[0].rate = rate;
        Self { segments, len: 1 }
    }

    /// The segments in order of start minute.
    pub fn segments(&self) -> &[BasalSegment] {
        &self.segments[..usize::from(self.len)]
    }

    /// Rate that applies at a minute of the day (taken modulo 1440).
    pub fn rate_at(&self, minute_of_day: u16) -> InsulinRate {
        let minute = minute_of_day % MINUTES_PER_DAY;
        self.segments()
            .iter()
            .rev()
            .find(|s| s.start_minute <= minute)
            .map_or(InsulinRate(0), |s| s.rate)
    }

    /// Highest rate of any segment.
    pub fn max_rate(&self) -> InsulinRate {
        self.segments()
            .iter()
            .map(|s| s.rate)
            .max()
            .unwrap_or_default()
    }
}

/// Rate of a temporary basal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempBasalRate {
    /// Percent of the programmed basal rate (100 keeps it, 0 stops basal delivery).
    Percent(u16),
    /// Absolute rate that replaces the programmed one.
    Absolute(InsulinRate),
}

/// Commands to an insulin pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PumpCommand {
    /// Replaces the daily basal program.
    SetBasalProfile(BasalProfile),
    /// Overrides the basal program for a time.
    TempBasal {
        /// Rate during the override.
        rate: TempBasalRate,
        /// Length of the override in minutes.
        duration_minutes: u16,
    },
    /// Delivers a bolus now.
    Bolus(Insulin),
    /// Stops all insulin delivery until resumed.
    Suspend,
    /// Resumes the basal program after a suspend.
    Resume,
    /// Sets the programmed maximum bolus.
    SetMaxBolus(Insulin),
    /// Sets the programmed maximum basal rate.
    SetMaxBasal(InsulinRate),
    /// Sets the programmed maximum insulin on board.
    SetMaxInsulinOnBoard(Insulin),
}

/// Pacing modes in the NBG code (paced chamber, sensed chamber, response, rate
/// modulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacingMode {
    /// Atrial pacing, atrial sensing, inhibited.
    Aai = 1,
    /// Ventricular pacing, ventricular sensing, inhibited.
    Vvi = 2,
    /// Dual-chamber pacing and sensing, inhibited and triggered.
    Ddd = 3,
    /// Dual-chamber pacing and sensing, inhibited only.
    Ddi = 4,
    /// VVI with rate modulation.
    Vvir = 5,
    /// DDD with rate modulation.
    Dddr = 6,
}

impl PacingMode {
    /// All modes, in tag order.
    pub const ALL: [PacingMode; 6] = [
        Self::Aai,
        Self::Vvi,
        Self::Ddd,
        Self::Ddi,
        Self::Vvir,
        Self::Dddr,
    ];

    /// Decodes a mode tag.
    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| *m as u8 == tag)
            .ok_or(DecodeError::UnknownTag(tag))
    }
}

/// Commands to a pacemaker's remote-monitoring unit, each changing one programmed
/// parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacemakerCommand {
    /// Sets the pacing mode.
    SetPacingMode(PacingMode),
    /// Sets the lower rate limit in pulses per minute.
    SetLowerRateLimit(u8),
    /// Sets the upper tracking rate in pulses per minute.
    SetUpperTrackingRate(u8),
    /// Sets the atrioventricular delay in milliseconds.
    SetAvDelay(u16),
    /// Sets the output amplitude in steps of 0.1 V.
    SetOutputAmplitude(u8),
}

/// Commands to a continuous glucose monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgmCommand {
    /// Sets the low and high glucose alert thresholds in mg/dL.
    SetAlertThresholds {
        /// Low alert threshold in mg/dL.
        low_mg_dl: u16,
        /// High alert threshold in mg/dL.
        high_mg_dl: u16,
    },
}

/// Device model a command is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceModel {
    /// Insulin pump.
    Pump,
    /// Pacemaker remote-monitoring unit.
    Pacemaker,
    /// Continuous glucose monitor.
    Cgm,
}

/// A command body for one of the device models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandBody {
    /// Insulin pump command.
    Pump(PumpCommand),
    /// Pacemaker remote-monitoring unit command.
    Pacemaker(PacemakerCommand),
    /// CGM command.
    Cgm(CgmCommand),
}

mod tag {
    pub const BASAL_PROFILE: u8 = 0x10;
    pub const TEMP_BASAL: u8 = 0x11;
    pub const BOLUS: u8 = 0x12;
    pub const SUSPEND: u8 = 0x13;
    pub const RESUME: u8 = 0x14;
    pub const MAX_BOLUS: u8 = 0x15;
    pub const MAX_BASAL: u8 = 0x16;
    pub const MAX_IOB: u8 = 0x17;
    pub const PACING_MODE: u8 = 0x20;
    pub const LOWER_RATE: u8 = 0x21;
    pub const UPPER_TRACKING: u8 = 0x22;
    pub const AV_DELAY: u8 = 0x23;
    pub const AMPLITUDE: u8 = 0x24;
    pub const CGM_THRESHOLDS: u8 = 0x30;
    pub const TEMP_PERCENT: u8 = 0;
    pub const TEMP_ABSOLUTE: u8 = 1;
}

impl CommandBody {
    /// Device model the body is meant for.
    pub fn model(&self) -> DeviceModel {
        match self {
            Self::Pump(_) => DeviceModel::Pump,
            Self::Pacemaker(_) => DeviceModel::Pacemaker,
            Self::Cgm(_) => DeviceModel::Cgm,
        }
    }

    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Pump(PumpCommand::SetBasalProfile(p)) => 2 + 4 * p.segments().len(),
            Self::Pump(PumpCommand::TempBasal { .. }) => 6,
            Self::Pump(PumpCommand::Suspend | PumpCommand::Resume) => 1,
            Self::Pump(_) => 3,
            Self::Pacemaker(PacemakerCommand::SetAvDelay(_)) => 3,
            Self::Pacemaker(_) => 2,
            Self::Cgm(_) => 5,
        }
    }

    /// Encodes the body into `out` and returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.encoded_len())?;
        self.write(&mut w);
        Ok(w.position())
    }

    /// Decodes exactly one body that fills `input`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input);
        let body = Self::read(&mut r)?;
        r.finish()?;
        Ok(body)
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) {
        match self {
            Self::Pump(c) => write_pump(c, w),
            Self::Pacemaker(c) => write_pacemaker(c, w),
            Self::Cgm(CgmCommand::SetAlertThresholds {
                low_mg_dl,
                high_mg_dl,
            }) => {
                w.u8(tag::CGM_THRESHOLDS);
                w.u16(*low_mg_dl);
                w.u16(*high_mg_dl);
            }
        }
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let t = r.u8()?;
        let body = match t {
            tag::BASAL_PROFILE..=tag::MAX_IOB => Self::Pump(read_pump(t, r)?),
            tag::PACING_MODE..=tag::AMPLITUDE => Self::Pacemaker(read_pacemaker(t, r)?),
            tag::CGM_THRESHOLDS => Self::Cgm(CgmCommand::SetAlertThresholds {
                low_mg_dl: r.u16()?,
                high_mg_dl: r.u16()?,
            }),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        Ok(body)
    }
}

fn write_pump(command: &PumpCommand, w: &mut Writer<'_>) {
    match command {
        PumpCommand::SetBasalProfile(profile) => {
            w.u8(tag::BASAL_PROFILE);
            w.u8(profile.len);
            for segment in profile.segments() {
                w.u16(segment.start_minute);
                w.u16(segment.rate.0);
            }
        }
        PumpCommand::TempBasal {
            rate,
            duration_minutes,
        } => {
            w.u8(tag::TEMP_BASAL);
            match rate {
                TempBasalRate::Percent(p) => {
                    w.u8(tag::TEMP_PERCENT);
                    w.u16(*p);
                }
                TempBasalRate::Absolute(r) => {
                    w.u8(tag::TEMP_ABSOLUTE);
                    w.u16(r.0);
                }
            }
            w.u16(*duration_minutes);
        }
        PumpCommand::Bolus(amount) => {
            w.u8(tag::BOLUS);
            w.u16(amount.0);
        }
        PumpCommand::Suspend => w.u8(tag::SUSPEND),
        PumpCommand::Resume => w.u8(tag::RESUME),
        PumpCommand::SetMaxBolus(amount) => {
            w.u8(tag::MAX_BOLUS);
            w.u16(amount.0);
        }
        PumpCommand::SetMaxBasal(rate) => {
            w.u8(tag::MAX_BASAL);
            w.u16(rate.0);
        }
        PumpCommand::SetMaxInsulinOnBoard(amount) => {
            w.u8(tag::MAX_IOB);
            w.u16(amount.0);
        }
    }
}

fn read_pump(t: u8, r: &mut Reader<'_>) -> Result<PumpCommand, DecodeError> {
    let command = match t {
        tag::BASAL_PROFILE => PumpCommand::SetBasalProfile(read_profile(r)?),
        tag::TEMP_BASAL => {
            let rate = match r.u8()? {
                tag::TEMP_PERCENT => TempBasalRate::Percent(r.u16()?),
                tag::TEMP_ABSOLUTE => TempBasalRate::Absolute(InsulinRate(r.u16()?)),
                other => return Err(DecodeError::UnknownTag(other)),
            };
            PumpCommand::TempBasal {
                rate,
                duration_minutes: r.u16()?,
            }
        }
        tag::BOLUS => PumpCommand::Bolus(Insulin(r.u16()?)),
        tag::SUSPEND => PumpCommand::Suspend,
        tag::RESUME => PumpCommand::Resume,
        tag::MAX_BOLUS => PumpCommand::SetMaxBolus(Insulin(r.u16()?)),
        tag::MAX_BASAL => PumpCommand::SetMaxBasal(InsulinRate(r.u16()?)),
        tag::MAX_IOB => PumpCommand::SetMaxInsulinOnBoard(Insulin(r.u16()?)),
        other => return Err(DecodeError::UnknownTag(other)),
    };
    Ok(command)
}

fn read_profile(r: &mut Reader<'_>) -> Result<BasalProfile, DecodeError> {
    let count = usize::from(r.u8()?);
    if count == 0 || count > MAX_BASAL_SEGMENTS {
        return Err(DecodeError::InvalidField("basal segment count"));
    }
    let mut segments = [BasalSegment::default(); MAX_BASAL_SEGMENTS];
    for segment in segments.iter_mut().take(count) {
        segment.start_minute = r.u16()?;
        segment.rate = InsulinRate(r.u16()?);
    }
    BasalProfile::new(&segments[..count])
        .map_err(|_| DecodeError::InvalidField("basal segment start minute"))
}

fn write_pacemaker(command: &PacemakerCommand, w: &mut Writer<'_>) {
    match command {
        PacemakerCommand::SetPacingMode(mode) => {
            w.u8(tag::PACING_MODE);
            w.u8(*mode as u8);
        }
        PacemakerCommand::SetLowerRateLimit(ppm) => {
            w.u8(tag::LOWER_RATE);
            w.u8(*ppm);
        }
        PacemakerCommand::SetUpperTrackingRate(ppm) => {
            w.u8(tag::UPPER_TRACKING);
            w.u8(*ppm);
        }
        PacemakerCommand::SetAvDelay(ms) => {
            w.u8(tag::AV_DELAY);
            w.u16(*ms);
        }
        PacemakerCommand::SetOutputAmplitude(decivolts) => {
            w.u8(tag::AMPLITUDE);
            w.u8(*decivolts);
        }
    }
}

fn read_pacemaker(t: u8, r: &mut Reader<'_>) -> Result<PacemakerCommand, DecodeError> {
    let command = match t {
        tag::PACING_MODE => PacemakerCommand::SetPacingMode(PacingMode::from_tag(r.u8()?)?),
        tag::LOWER_RATE => PacemakerCommand::SetLowerRateLimit(r.u8()?),
        tag::UPPER_TRACKING => PacemakerCommand::SetUpperTrackingRate(r.u8()?),
        tag::AV_DELAY => PacemakerCommand::SetAvDelay(r.u16()?),
        tag::AMPLITUDE => PacemakerCommand::SetOutputAmplitude(r.u8()?),
        other => return Err(DecodeError::UnknownTag(other)),
    };
    Ok(command)
}
