//! Hard limits of each device model and the checks of command bodies against them.
//!
//! The device runs these checks before it executes a validly signed command, and the
//! cloud's policy engine runs the same functions before it signs one, so both sides
//! reject the same out-of-range values. The `EXAMPLE` constants are example device
//! limits for the simulator and the tests, not the specification of a real product.

use crate::body::{CgmCommand, Insulin, InsulinRate, PacemakerCommand, PumpCommand, TempBasalRate};
use crate::cgm::CgmThresholds;
use crate::pacemaker::PacemakerSettings;

/// Inclusive range `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds<T> {
    /// Smallest allowed value.
    pub min: T,
    /// Largest allowed value.
    pub max: T,
}

impl<T: PartialOrd> Bounds<T> {
    /// Whether `value` lies in `min..=max`.
    pub fn contains(&self, value: &T) -> bool {
        self.min <= *value && *value <= self.max
    }
}

/// Programmed maxima of a pump: settings below the pump's hard limits that clinicians
/// change with commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpMaxSettings {
    /// Largest bolus the pump delivers.
    pub max_bolus: Insulin,
    /// Largest basal rate, programmed or temporary.
    pub max_basal: InsulinRate,
    /// Largest insulin on board after a bolus.
    pub max_insulin_on_board: Insulin,
}

/// Hard limits of an insulin pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpLimits {
    /// Largest bolus the hardware allows, and the ceiling of the programmed maximum.
    pub max_bolus: Insulin,
    /// Largest basal rate the hardware allows.
    pub max_basal: InsulinRate,
    /// Ceiling of the programmed maximum insulin on board.
    pub max_insulin_on_board: Insulin,
    /// Largest temporary basal in percent of the programmed rate.
    pub temp_basal_max_percent: u16,
    /// Allowed temporary basal durations in minutes.
    pub temp_basal_minutes: Bounds<u16>,
}

impl PumpLimits {
    /// Example pump: bolus up to 25 U, basal up to 35 U/h, insulin on board up to 50 U,
    /// temporary basal up to 250 % for 15 minutes to 24 hours.
    pub const EXAMPLE: Self = Self {
        max_bolus: Insulin(2500),
        max_basal: InsulinRate(3500),
        max_insulin_on_board: Insulin(5000),
        temp_basal_max_percent: 250,
        temp_basal_minutes: Bounds { min: 15, max: 1440 },
    };

    /// Checks a pump command against these hard limits and the programmed maxima. The
    /// pump itself also checks what depends on its state (reservoir, insulin on board,
    /// the basal profile).
    pub fn check(
        &self,
        command: &PumpCommand,
        settings: &PumpMaxSettings,
    ) -> Result<(), LimitViolation> {
        let max_basal = self.max_basal.min(settings.max_basal);
        match command {
            PumpCommand::SetBasalProfile(profile) => ensure(
                profile.max_rate() <= max_basal,
                LimitViolation::BasalRateAboveMax,
            ),
            PumpCommand::TempBasal {
                rate,
                duration_minutes,
            } => {
                match rate {
                    TempBasalRate::Percent(p) => ensure(
                        *p <= self.temp_basal_max_percent,
                        LimitViolation::TempBasalPercentAboveMax,
                    )?,
                    TempBasalRate::Absolute(r) => {
                        ensure(*r <= max_basal, LimitViolation::BasalRateAboveMax)?
                    }
                }
                ensure(
                    self.temp_basal_minutes.contains(duration_minutes),
                    LimitViolation::TempBasalDurationOutOfRange,
                )
            }
            PumpCommand::Bolus(amount) => {
                ensure(amount.0 > 0, LimitViolation::BolusZero)?;
                let max = self.max_bolus.min(settings.max_bolus);
                ensure(*amount <= max, LimitViolation::BolusAboveMax)
            }
            PumpCommand::Suspend | PumpCommand::Resume => Ok(()),
            PumpCommand::SetMaxBolus(v) => {
                ensure(*v <= self.max_bolus, LimitViolation::MaxBolusAboveHardLimit)
            }
            PumpCommand::SetMaxBasal(v) => {
                ensure(*v <= self.max_basal, LimitViolation::MaxBasalAboveHardLimit)
            }
            PumpCommand::SetMaxInsulinOnBoard(v) => ensure(
                *v <= self.max_insulin_on_board,
                LimitViolation::MaxInsulinOnBoardAboveHardLimit,
            ),
        }
    }
}

/// Hard limits of a pacemaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacemakerLimits {
    /// Lower rate limit in pulses per minute.
    pub lower_rate_ppm: Bounds<u8>,
    /// Upper tracking rate in pulses per minute.
    pub upper_tracking_ppm: Bounds<u8>,
    /// Atrioventricular delay in milliseconds.
    pub av_delay_ms: Bounds<u16>,
    /// Output amplitude in steps of 0.1 V.
    pub amplitude_decivolts: Bounds<u8>,
}

impl PacemakerLimits {
    /// Example pacemaker: lower rate 30..=175 ppm, upper tracking rate 80..=185 ppm,
    /// AV delay 30..=350 ms, amplitude 0.1..=7.5 V.
    pub const EXAMPLE: Self = Self {
        lower_rate_ppm: Bounds { min: 30, max: 175 },
        upper_tracking_ppm: Bounds { min: 80, max: 185 },
        av_delay_ms: Bounds { min: 30, max: 350 },
        amplitude_decivolts: Bounds { min: 1, max: 75 },
    };

    /// Checks a pacemaker command against these limits. The lower rate limit must stay
    /// below the upper tracking rate, so `current` supplies the parameter not changed.
    pub fn check(
        &self,
        command: &PacemakerCommand,
        current: &PacemakerSettings,
    ) -> Result<(), LimitViolation> {
        match command {
            PacemakerCommand::SetPacingMode(_) => Ok(()),
            PacemakerCommand::SetLowerRateLimit(ppm) => {
                ensure(
                    self.lower_rate_ppm.contains(ppm),
                    LimitViolation::LowerRateOutOfRange,
                )?;
                ensure(
                    *ppm < current.upper_tracking_ppm,
                    LimitViolation::LowerRateNotBelowUpperTracking,
                )
            }
            PacemakerCommand::SetUpperTrackingRate(ppm) => {
                ensure(
                    self.upper_tracking_ppm.contains(ppm),
                    LimitViolation::UpperTrackingRateOutOfRange,
                )?;
                ensure(
                    current.lower_rate_ppm < *ppm,
                    LimitViolation::LowerRateNotBelowUpperTracking,
                )
            }
            PacemakerCommand::SetAvDelay(ms) => ensure(
                self.av_delay_ms.contains(ms),
                LimitViolation::AvDelayOutOfRange,
            ),
            PacemakerCommand::SetOutputAmplitude(dv) => ensure(
                self.amplitude_decivolts.contains(dv),
                LimitViolation::AmplitudeOutOfRange,
            ),
        }
    }
}

/// Hard limits of a CGM's alert thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmLimits {
    /// Allowed low alert thresholds in mg/dL.
    pub low_mg_dl: Bounds<u16>,
    /// Allowed high alert thresholds in mg/dL.
    pub high_mg_dl: Bounds<u16>,
}

impl CgmLimits {
    /// Example CGM: low alert 55..=100 mg/dL, high alert 120..=400 mg/dL.
    pub const EXAMPLE: Self = Self {
        low_mg_dl: Bounds { min: 55, max: 100 },
        high_mg_dl: Bounds { min: 120, max: 400 },
    };

    /// Checks a CGM command against these limits.
    pub fn check(&self, command: &CgmCommand) -> Result<(), LimitViolation> {
        let CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        } = command;
        ensure(
            self.low_mg_dl.contains(low_mg_dl),
            LimitViolation::LowThresholdOutOfRange,
        )?;
        ensure(
            self.high_mg_dl.contains(high_mg_dl),
            LimitViolation::HighThresholdOutOfRange,
        )?;
        ensure(
            low_mg_dl < high_mg_dl,
            LimitViolation::LowThresholdNotBelowHigh,
        )
    }

    /// Checks thresholds in the shape the device stores them.
    pub fn check_thresholds(&self, thresholds: &CgmThresholds) -> Result<(), LimitViolation> {
        self.check(&CgmCommand::SetAlertThresholds {
            low_mg_dl: thresholds.low_mg_dl,
            high_mg_dl: thresholds.high_mg_dl,
        })
    }
}

/// Hard limits of one device, by model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceLimits {
    /// Insulin pump limits.
    Pump(PumpLimits),
    /// Pacemaker limits.
    Pacemaker(PacemakerLimits),
    /// CGM limits.
    Cgm(CgmLimits),
}

/// The limit a command would break. Each has a stable code for acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LimitViolation {
    /// A bolus of zero units.
    BolusZero = 1,
    /// A bolus above the programmed or the hard maximum.
    BolusAboveMax = 2,
    /// A basal or temporary basal rate above the programmed or the hard maximum.
    BasalRateAboveMax = 3,
    /// A temporary basal percentage above the hard maximum.
    TempBasalPercentAboveMax = 4,
    /// A temporary basal duration outside the allowed range.
    TempBasalDurationOutOfRange = 5,
    /// A programmed maximum bolus above the hard limit.
    MaxBolusAboveHardLimit = 6,
    /// A programmed maximum basal rate above the hard limit.
    MaxBasalAboveHardLimit = 7,
    /// A programmed maximum insulin on board above the hard limit.
    MaxInsulinOnBoardAboveHardLimit = 8,
    /// A programmed maximum basal rate below a rate of the current basal profile.
    MaxBasalBelowProfile = 9,
    /// A bolus that would raise insulin on board above the programmed maximum.
    InsulinOnBoardAboveMax = 10,
    /// A bolus larger than the insulin left in the reservoir.
    ReservoirInsufficient = 11,
    /// A lower rate limit outside the allowed range.
    LowerRateOutOfRange = 12,
    /// An upper tracking rate outside the allowed range.
    UpperTrackingRateOutOfRange = 13,
    /// A lower rate limit not below the upper tracking rate.
    LowerRateNotBelowUpperTracking = 14,
    /// An AV delay outside the allowed range.
    AvDelayOutOfRange = 15,
    /// An output amplitude outside the allowed range.
    AmplitudeOutOfRange = 16,
    /// A low glucose alert threshold outside the allowed range.
    LowThresholdOutOfRange = 17,
    /// A high glucose alert threshold outside the allowed range.
    HighThresholdOutOfRange = 18,
    /// A low glucose alert threshold not below the high one.
    LowThresholdNotBelowHigh = 19,
}

impl LimitViolation {
    /// All violations, in code order.
    pub const ALL: [LimitViolation; 19] = [
        Self::BolusZero,
        Self::BolusAboveMax,
        Self::BasalRateAboveMax,
        Self::TempBasalPercentAboveMax,
        Self::TempBasalDurationOutOfRange,
        Self::MaxBolusAboveHardLimit,
        Self::MaxBasalAboveHardLimit,
        Self::MaxInsulinOnBoardAboveHardLimit,
        Self::MaxBasalBelowProfile,
        Self::InsulinOnBoardAboveMax,
        Self::ReservoirInsufficient,
        Self::LowerRateOutOfRange,
        Self::UpperTrackingRateOutOfRange,
        Self::LowerRateNotBelowUpperTracking,
        Self::AvDelayOutOfRange,
        Self::AmplitudeOutOfRange,
        Self::LowThresholdOutOfRange,
        Self::HighThresholdOutOfRange,
        Self::LowThresholdNotBelowHigh,
    ];

    /// Stable code of the violation.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Looks up a violation by its code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.code() == code)
    }
}

pub(crate) fn ensure(condition: bool, violation: LimitViolation) -> Result<(), LimitViolation> {
    if condition {
        Ok(())
    } else {
        Err(violation)
    }
}
