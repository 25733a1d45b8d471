//! Fixtures of the policy tests: one patient with a pump and a pacemaker.
#![allow(dead_code)]

use medtunnel_command::body::{BasalProfile, BasalSegment, PacingMode};
use medtunnel_command::cgm::CgmThresholds;
use medtunnel_command::limits::{PacemakerLimits, PumpLimits, PumpMaxSettings};
use medtunnel_command::pacemaker::PacemakerSettings;
use medtunnel_command::{CommandBody, DeviceLimits, Insulin, InsulinRate};
use medtunnel_policy::{
    CgmBounds, ChangeRequest, CurrentSettings, PacemakerBounds, PatientPolicy, Person,
    PolicyContext, PumpBounds, PumpSettings, Range, Role,
};

pub const PATIENT: &str = "patient-1";
pub const NOW_MS: u64 = 1_700_000_000_000;

pub fn policy() -> PatientPolicy {
    PatientPolicy {
        patient_id: PATIENT.into(),
        pump: Some(PumpBounds {
            basal_rate: Range { min: 20, max: 300 },
            max_bolus: 1200,
            max_insulin_on_board: 2500,
            max_daily_insulin: 6000,
            temp_basal_percent: Range { min: 0, max: 200 },
            temp_basal_max_minutes: 720,
        }),
        pacemaker: Some(PacemakerBounds {
            lower_rate_ppm: Range { min: 50, max: 90 },
            upper_tracking_ppm: Range { min: 100, max: 150 },
            av_delay_ms: Range { min: 100, max: 250 },
            amplitude_decivolts: Range { min: 20, max: 50 },
        }),
        cgm: Some(CgmBounds {
            low_mg_dl: Range { min: 60, max: 90 },
            high_mg_dl: Range { min: 160, max: 300 },
        }),
        basal_change_review_percent: 20,
        max_changes_per_hour: 4,
    }
}

pub fn profile() -> BasalProfile {
    BasalProfile::new(&[
        BasalSegment {
            start_minute: 0,
            rate: InsulinRate(80),
        },
        BasalSegment {
            start_minute: 360,
            rate: InsulinRate(100),
        },
    ])
    .expect("fixture profile is ordered")
}

pub fn pump_settings() -> PumpSettings {
    PumpSettings {
        basal_profile: profile(),
        max: PumpMaxSettings {
            max_bolus: Insulin(1000),
            max_basal: InsulinRate(250),
            max_insulin_on_board: Insulin(2000),
        },
    }
}

pub fn pump_context() -> PolicyContext {
    PolicyContext {
        delivered_today: 1000,
        recent_changes: Vec::new(),
        current: CurrentSettings {
            pump: Some(pump_settings()),
            pacemaker: None,
            cgm: Some(CgmThresholds {
                low_mg_dl: 70,
                high_mg_dl: 250,
            }),
        },
        device_limits: DeviceLimits::Pump(PumpLimits::EXAMPLE),
    }
}

pub fn pacemaker_context() -> PolicyContext {
    PolicyContext {
        delivered_today: 0,
        recent_changes: Vec::new(),
        current: CurrentSettings {
            pump: None,
            pacemaker: Some(PacemakerSettings {
                mode: PacingMode::Ddd,
                lower_rate_ppm: 60,
                upper_tracking_ppm: 130,
                av_delay_ms: 180,
                amplitude_decivolts: 35,
            }),
            cgm: None,
        },
        device_limits: DeviceLimits::Pacemaker(PacemakerLimits::EXAMPLE),
    }
}

pub fn request(role: Role, body: CommandBody) -> ChangeRequest {
    ChangeRequest {
        requester_id: format!("{role:?}-1").to_lowercase(),
        requester_role: role,
        patient_id: PATIENT.into(),
        body,
        requested_at_ms: NOW_MS,
    }
}

pub fn clinician(id: &str) -> Person {
    Person {
        id: id.into(),
        role: Role::Clinician,
    }
}
