//! Value checks of a request: the device's hard limits, the patient's bounds, the daily
//! insulin total and the size of a basal change.

use medtunnel_command::body::{
    BasalProfile, CgmCommand, InsulinRate, PacemakerCommand, PumpCommand, TempBasalRate,
    MINUTES_PER_DAY,
};
use medtunnel_command::{CommandBody, DeviceLimits};

use crate::decision::{Reason, ReasonCode};
use crate::policy::{PatientPolicy, PolicyContext, PumpSettings, Range};

/// Checks the body against the device's hard limits with the device's own functions,
/// including the checks the pump makes against its basal profile.
pub(crate) fn check_device_limits(body: &CommandBody, ctx: &PolicyContext) -> Result<(), Reason> {
    let violation = match (body, &ctx.device_limits) {
        (CommandBody::Pump(command), DeviceLimits::Pump(limits)) => {
            let pump = pump_settings(ctx)?;
            limits
                .check(command, &pump.max)
                .err()
                .or_else(|| pump_state_violation(command, pump, limits.max_basal))
        }
        (CommandBody::Pacemaker(command), DeviceLimits::Pacemaker(limits)) => {
            let Some(current) = &ctx.current.pacemaker else {
                return Err(not_configured("pacemaker settings"));
            };
            limits.check(command, current).err()
        }
        (CommandBody::Cgm(command), DeviceLimits::Cgm(limits)) => limits.check(command).err(),
        _ => return Err(not_configured("a device of this model")),
    };
    match violation {
        None => Ok(()),
        Some(v) => Err(Reason::new(
            ReasonCode::DeviceLimit,
            format!("The value breaks a hard limit of the device ({v:?})."),
        )),
    }
}

fn pump_state_violation(
    command: &PumpCommand,
    pump: &PumpSettings,
    hard_max_basal: InsulinRate,
) -> Option<medtunnel_command::limits::LimitViolation> {
    use medtunnel_command::limits::LimitViolation;
    let max_basal = hard_max_basal.min(pump.max.max_basal);
    match command {
        PumpCommand::TempBasal { rate, .. } => {
            let highest = temp_rate(*rate, pump.basal_profile.max_rate().0);
            (highest > u32::from(max_basal.0)).then_some(LimitViolation::BasalRateAboveMax)
        }
        PumpCommand::SetMaxBasal(rate) => {
            (pump.basal_profile.max_rate() > *rate).then_some(LimitViolation::MaxBasalBelowProfile)
        }
        _ => None,
    }
}

/// Checks the body against the patient's bounds.
pub(crate) fn check_patient_bounds(
    body: &CommandBody,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Result<(), Reason> {
    let outcome = match body {
        CommandBody::Pump(command) => {
            let Some(bounds) = &policy.pump else {
                return Err(not_configured("pump bounds in the patient's policy"));
            };
            let pump = pump_settings(ctx)?;
            check_pump_bounds(command, bounds, pump)
        }
        CommandBody::Pacemaker(command) => {
            let Some(bounds) = &policy.pacemaker else {
                return Err(not_configured("pacemaker bounds in the patient's policy"));
            };
            check_pacemaker_bounds(command, bounds)
        }
        CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        }) => {
            let Some(bounds) = &policy.cgm else {
                return Err(not_configured("CGM bounds in the patient's policy"));
            };
            in_range("low alert threshold", *low_mg_dl, &bounds.low_mg_dl)
                .and_then(|()| in_range("high alert threshold", *high_mg_dl, &bounds.high_mg_dl))
        }
    };
    outcome.map_err(|message| Reason::new(ReasonCode::OutsidePatientBounds, message))
}

fn check_pump_bounds(
    command: &PumpCommand,
    bounds: &crate::policy::PumpBounds,
    pump: &PumpSettings,
) -> Result<(), String> {
    let basal = &bounds.basal_rate;
    match command {
        PumpCommand::SetBasalProfile(profile) => {
            for segment in profile.segments() {
                in_range("basal rate", segment.rate.0, basal)?;
            }
            let total = daily_basal_total(profile);
            if total > bounds.max_daily_insulin {
                return Err(format!(
                    "The profile delivers {total} × 0.01 U a day, above the daily limit of {}.",
                    bounds.max_daily_insulin
                ));
            }
            Ok(())
        }
        PumpCommand::TempBasal {
            rate,
            duration_minutes,
        } => {
            if let TempBasalRate::Percent(p) = rate {
                in_range("temporary basal percentage", *p, &bounds.temp_basal_percent)?;
            }
            let highest = temp_rate(*rate, pump.basal_profile.max_rate().0);
            at_most("temporary basal rate", highest, u32::from(basal.max))?;
            if let TempBasalRate::Absolute(r) = rate {
                in_range("temporary basal rate", r.0, basal)?;
            }
            at_most(
                "temporary basal duration",
                *duration_minutes,
                bounds.temp_basal_max_minutes,
            )
        }
        PumpCommand::Bolus(amount) => at_most("bolus", amount.0, bounds.max_bolus),
        PumpCommand::Suspend | PumpCommand::Resume => Ok(()),
        PumpCommand::SetMaxBolus(v) => at_most("maximum bolus", v.0, bounds.max_bolus),
        PumpCommand::SetMaxBasal(v) => at_most("maximum basal rate", v.0, basal.max),
        PumpCommand::SetMaxInsulinOnBoard(v) => {
            at_most("maximum insulin on board", v.0, bounds.max_insulin_on_board)
        }
    }
}

fn check_pacemaker_bounds(
    command: &PacemakerCommand,
    bounds: &crate::policy::PacemakerBounds,
) -> Result<(), String> {
    match command {
        PacemakerCommand::SetPacingMode(_) => Ok(()),
        PacemakerCommand::SetLowerRateLimit(v) => {
            in_range("lower rate limit", *v, &bounds.lower_rate_ppm)
        }
        PacemakerCommand::SetUpperTrackingRate(v) => {
            in_range("upper tracking rate", *v, &bounds.upper_tracking_ppm)
        }
        PacemakerCommand::SetAvDelay(v) => in_range("AV delay", *v, &bounds.av_delay_ms),
        PacemakerCommand::SetOutputAmplitude(v) => {
            in_range("output amplitude", *v, &bounds.amplitude_decivolts)
        }
    }
}

/// Insulin in 0.01 U that the change adds to today's total: a bolus, or a temporary
/// basal over its whole duration at its highest rate.
pub(crate) fn added_insulin(body: &CommandBody, pump: Option<&PumpSettings>) -> u32 {
    let highest_programmed = pump.map_or(0, |p| p.basal_profile.max_rate().0);
    match body {
        CommandBody::Pump(PumpCommand::Bolus(amount)) => u32::from(amount.0),
        CommandBody::Pump(PumpCommand::TempBasal {
            rate,
            duration_minutes,
        }) => {
            let per_hour = u64::from(temp_rate(*rate, highest_programmed));
            let total = per_hour * u64::from(*duration_minutes) / 60;
            u32::try_from(total).unwrap_or(u32::MAX)
        }
        _ => 0,
    }
}

/// Largest relative change of the basal rate at any minute of the day, in percent, or
/// `None` when the body changes no basal rate.
pub(crate) fn basal_change_percent(body: &CommandBody, pump: &PumpSettings) -> Option<u64> {
    let current = &pump.basal_profile;
    let largest = match body {
        CommandBody::Pump(PumpCommand::TempBasal { rate, .. }) => match rate {
            TempBasalRate::Percent(p) => u64::from(p.abs_diff(100)),
            TempBasalRate::Absolute(r) => current
                .segments()
                .iter()
                .map(|s| change_percent(s.rate.0, r.0))
                .max()
                .unwrap_or(0),
        },
        CommandBody::Pump(PumpCommand::SetBasalProfile(new)) => {
            let starts = current
                .segments()
                .iter()
                .chain(new.segments())
                .map(|s| s.start_minute);
            starts
                .map(|minute| change_percent(current.rate_at(minute).0, new.rate_at(minute).0))
                .max()
                .unwrap_or(0)
        }
        _ => return None,
    };
    Some(largest)
}

fn change_percent(from: u16, to: u16) -> u64 {
    if from == 0 {
        return if to == 0 { 0 } else { u64::MAX };
    }
    u64::from(from.abs_diff(to)) * 100 / u64::from(from)
}

fn daily_basal_total(profile: &BasalProfile) -> u32 {
    let segments = profile.segments();
    let mut total: u64 = 0;
    for (index, segment) in segments.iter().enumerate() {
        let end = segments
            .get(index + 1)
            .map_or(MINUTES_PER_DAY, |s| s.start_minute);
        let minutes = u64::from(end - segment.start_minute);
        total += u64::from(segment.rate.0) * minutes / 60;
    }
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// Highest rate of a temporary basal in 0.01 U/h over a programmed rate, unclamped.
fn temp_rate(rate: TempBasalRate, programmed: u16) -> u32 {
    match rate {
        TempBasalRate::Absolute(r) => u32::from(r.0),
        TempBasalRate::Percent(p) => u32::from(programmed) * u32::from(p) / 100,
    }
}

fn pump_settings(ctx: &PolicyContext) -> Result<&PumpSettings, Reason> {
    ctx.current
        .pump
        .as_ref()
        .ok_or_else(|| not_configured("pump settings"))
}

fn not_configured(missing: &str) -> Reason {
    Reason::new(
        ReasonCode::DeviceNotConfigured,
        format!("The cloud has no {missing} for this patient, so no change is allowed."),
    )
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    range: &Range<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "The {name} {value} is outside the patient's range {}..={}.",
            range.min, range.max
        ))
    }
}

fn at_most<T: PartialOrd + std::fmt::Display>(name: &str, value: T, max: T) -> Result<(), String> {
    if value <= max {
        Ok(())
    } else {
        Err(format!(
            "The {name} {value} is above the patient's maximum of {max}."
        ))
    }
}
