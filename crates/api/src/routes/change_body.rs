//! The JSON form of a therapy change and its conversion into a device command body.
//!
//! Insulin amounts are in units (U) and rates in U/h, each a multiple of 0.01, because
//! the pump stores hundredths. Pacemaker rates are in pulses per minute, delays in
//! milliseconds and amplitudes in volts, a multiple of 0.1. Conversion checks only that
//! a value fits the device's encoding; the patient's policy decides whether it is safe.

use medtunnel_command::body::{
    BasalProfile, BasalSegment, PacemakerCommand, PacingMode, ProfileError, PumpCommand,
    TempBasalRate,
};
use medtunnel_command::{CommandBody, Insulin, InsulinRate};
use serde::Deserialize;

use crate::error::ApiError;
use crate::model::DataType;

/// A requested therapy change, tagged by `kind`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Change {
    /// Pump: deliver a bolus now.
    Bolus { units: f64 },
    /// Pump: override the basal program, by `percent` of it or by `units_per_hour`.
    TempBasal {
        percent: Option<u16>,
        units_per_hour: Option<f64>,
        duration_minutes: u16,
    },
    /// Pump: replace the daily basal program.
    BasalProfile { segments: Vec<Segment> },
    /// Pump: stop all insulin delivery.
    Suspend,
    /// Pump: resume the basal program.
    Resume,
    /// Pump: set the maximum bolus.
    MaxBolus { units: f64 },
    /// Pump: set the maximum basal rate.
    MaxBasal { units_per_hour: f64 },
    /// Pump: set the maximum insulin on board.
    MaxInsulinOnBoard { units: f64 },
    /// Pacemaker: set the pacing mode, by its NBG code such as `DDD`.
    PacingMode { mode: String },
    /// Pacemaker: set the lower rate limit.
    LowerRateLimit { ppm: u8 },
    /// Pacemaker: set the upper tracking rate.
    UpperTrackingRate { ppm: u8 },
    /// Pacemaker: set the atrioventricular delay.
    AvDelay { delay_ms: u16 },
    /// Pacemaker: set the output amplitude.
    OutputAmplitude { volts: f64 },
}

/// One segment of a basal profile in the JSON form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Segment {
    start_minute: u16,
    units_per_hour: f64,
}

impl Change {
    /// Returns the data type a grant must cover to change it: insulin for pump changes,
    /// cardiac for pacemaker changes.
    pub(crate) fn data_type(&self) -> DataType {
        match self {
            Change::PacingMode { .. }
            | Change::LowerRateLimit { .. }
            | Change::UpperTrackingRate { .. }
            | Change::AvDelay { .. }
            | Change::OutputAmplitude { .. } => DataType::Cardiac,
            _ => DataType::Insulin,
        }
    }

    /// Converts the change into the command body the device receives.
    pub(crate) fn into_body(self) -> Result<CommandBody, ApiError> {
        let body = match self {
            Change::Bolus { units } => {
                pump(PumpCommand::Bolus(Insulin(hundredths(units, "units")?)))
            }
            Change::TempBasal {
                percent,
                units_per_hour,
                duration_minutes,
            } => pump(PumpCommand::TempBasal {
                rate: temp_basal_rate(percent, units_per_hour)?,
                duration_minutes,
            }),
            Change::BasalProfile { segments } => {
                pump(PumpCommand::SetBasalProfile(profile(&segments)?))
            }
            Change::Suspend => pump(PumpCommand::Suspend),
            Change::Resume => pump(PumpCommand::Resume),
            Change::MaxBolus { units } => pump(PumpCommand::SetMaxBolus(Insulin(hundredths(
                units, "units",
            )?))),
            Change::MaxBasal { units_per_hour } => pump(PumpCommand::SetMaxBasal(InsulinRate(
                hundredths(units_per_hour, "units_per_hour")?,
            ))),
            Change::MaxInsulinOnBoard { units } => pump(PumpCommand::SetMaxInsulinOnBoard(
                Insulin(hundredths(units, "units")?),
            )),
            Change::PacingMode { mode } => {
                pacemaker(PacemakerCommand::SetPacingMode(pacing_mode(&mode)?))
            }
            Change::LowerRateLimit { ppm } => pacemaker(PacemakerCommand::SetLowerRateLimit(ppm)),
            Change::UpperTrackingRate { ppm } => {
                pacemaker(PacemakerCommand::SetUpperTrackingRate(ppm))
            }
            Change::AvDelay { delay_ms } => pacemaker(PacemakerCommand::SetAvDelay(delay_ms)),
            Change::OutputAmplitude { volts } => {
                let tenths = scaled(volts, 10, "volts")?;
                let tenths = u8::try_from(tenths).map_err(|_| out_of_range("volts", 10))?;
                pacemaker(PacemakerCommand::SetOutputAmplitude(tenths))
            }
        };
        Ok(body)
    }
}

fn pump(command: PumpCommand) -> CommandBody {
    CommandBody::Pump(command)
}

fn pacemaker(command: PacemakerCommand) -> CommandBody {
    CommandBody::Pacemaker(command)
}

fn temp_basal_rate(
    percent: Option<u16>,
    units_per_hour: Option<f64>,
) -> Result<TempBasalRate, ApiError> {
    match (percent, units_per_hour) {
        (Some(percent), None) => Ok(TempBasalRate::Percent(percent)),
        (None, Some(rate)) => Ok(TempBasalRate::Absolute(InsulinRate(hundredths(
            rate,
            "units_per_hour",
        )?))),
        _ => Err(ApiError::InvalidRequest(
            "a temp_basal change needs exactly one of percent and units_per_hour".to_owned(),
        )),
    }
}

fn profile(segments: &[Segment]) -> Result<BasalProfile, ApiError> {
    let mut converted = Vec::with_capacity(segments.len());
    for segment in segments {
        converted.push(BasalSegment {
            start_minute: segment.start_minute,
            rate: InsulinRate(hundredths(segment.units_per_hour, "units_per_hour")?),
        });
    }
    BasalProfile::new(&converted).map_err(|error| {
        let problem = match error {
            ProfileError::SegmentCount => "it must have 1 to 24 segments",
            ProfileError::FirstSegmentNotAtMidnight => "its first segment must start at minute 0",
            ProfileError::SegmentOrder => "its start minutes must increase and stay below 1440",
        };
        ApiError::InvalidRequest(format!("the basal profile is invalid: {problem}"))
    })
}

fn pacing_mode(name: &str) -> Result<PacingMode, ApiError> {
    PacingMode::ALL
        .into_iter()
        .find(|mode| format!("{mode:?}").eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "mode is not a supported pacing mode; give one of AAI, VVI, DDD, DDI, VVIR, DDDR"
                    .to_owned(),
            )
        })
}

fn hundredths(value: f64, field: &'static str) -> Result<u16, ApiError> {
    scaled(value, 100, field)
}

/// Converts `value` to a whole number of `1 / scale` steps. The message names the field
/// and the range but not the value, because error messages carry no health values.
fn scaled(value: f64, scale: u16, field: &'static str) -> Result<u16, ApiError> {
    let steps = value * f64::from(scale);
    let rounded = steps.round();
    // A tolerance of 1e-6 steps accepts decimal inputs such as 0.29 whose binary form
    // is slightly off the step, and rejects a third decimal place.
    let on_step = (steps - rounded).abs() < 1e-6;
    if !value.is_finite() || !on_step || !(0.0..=f64::from(u16::MAX)).contains(&rounded) {
        return Err(out_of_range(field, scale));
    }
    // The range check above makes the conversion exact.
    Ok(rounded as u16)
}

fn out_of_range(field: &'static str, scale: u16) -> ApiError {
    let step = 1.0 / f64::from(scale);
    ApiError::InvalidRequest(format!(
        "{field} must be a non-negative multiple of {step} that the device can store; check the unit and the number of decimals"
    ))
}
