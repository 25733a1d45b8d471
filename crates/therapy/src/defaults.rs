//! Example policies and device limits for newly enrolled devices.
//!
//! NOTE: these are example values for the simulators and tests, not clinical
//! recommendations. A clinician replaces them with `TherapyService::set_policy`, and the
//! registry does not store per-device hard limits yet, so every device of a model is
//! assumed to have the example limits of `medtunnel-command`.

use medtunnel_command::limits::{CgmLimits, PacemakerLimits, PumpLimits};
use medtunnel_command::DeviceLimits;
use medtunnel_policy::{PacemakerBounds, PatientPolicy, PumpBounds, Range};

/// A policy without bounds: it lets no change through.
pub(crate) fn empty_policy(patient_id: &str) -> PatientPolicy {
    PatientPolicy {
        patient_id: patient_id.to_owned(),
        pump: None,
        pacemaker: None,
        cgm: None,
        basal_change_review_percent: 20,
        max_changes_per_hour: 6,
    }
}

/// Adds the example bounds of `model` to a policy that has none for it.
pub(crate) fn add_example_bounds(policy: &mut PatientPolicy, model: &str) {
    match model {
        "insulin_pump" if policy.pump.is_none() => policy.pump = Some(example_pump_bounds()),
        "pacemaker" if policy.pacemaker.is_none() => {
            policy.pacemaker = Some(example_pacemaker_bounds())
        }
        _ => {}
    }
}

/// Example pump bounds: basal 0.20 to 3.00 U/h, bolus up to 10.00 U, insulin on board up
/// to 25 U, 60 U a day, temporary basal 0 to 200 % for up to 12 hours.
pub fn example_pump_bounds() -> PumpBounds {
    PumpBounds {
        basal_rate: Range { min: 20, max: 300 },
        max_bolus: 1000,
        max_insulin_on_board: 2500,
        max_daily_insulin: 6000,
        temp_basal_percent: Range { min: 0, max: 200 },
        temp_basal_max_minutes: 720,
    }
}

/// Example pacemaker bounds: lower rate 50 to 90 ppm, upper tracking 100 to 150 ppm, AV
/// delay 100 to 250 ms, amplitude 2.0 to 5.0 V.
pub fn example_pacemaker_bounds() -> PacemakerBounds {
    PacemakerBounds {
        lower_rate_ppm: Range { min: 50, max: 90 },
        upper_tracking_ppm: Range { min: 100, max: 150 },
        av_delay_ms: Range { min: 100, max: 250 },
        amplitude_decivolts: Range { min: 20, max: 50 },
    }
}

/// Hard limits of a model, as stored in `therapy_devices.model`.
pub(crate) fn device_limits(model: &str) -> DeviceLimits {
    match model {
        "insulin_pump" => DeviceLimits::Pump(PumpLimits::EXAMPLE),
        "pacemaker" => DeviceLimits::Pacemaker(PacemakerLimits::EXAMPLE),
        _ => DeviceLimits::Cgm(CgmLimits::EXAMPLE),
    }
}
