//! Inputs of the policy engine: the clinician's per-patient policy, the request, and
//! what the cloud knows about the patient's device.

use medtunnel_command::body::BasalProfile;
use medtunnel_command::cgm::CgmThresholds;
use medtunnel_command::limits::PumpMaxSettings;
use medtunnel_command::pacemaker::PacemakerSettings;
use medtunnel_command::{CommandBody, DeviceLimits};
use serde::{Deserialize, Serialize};

/// Role of a person who requests, reviews or co-signs a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The patient.
    Patient,
    /// A caregiver the patient named.
    Caregiver,
    /// A clinician of the patient.
    Clinician,
    /// A researcher: sees aggregates only and changes nothing.
    Researcher,
    /// A fleet operator: changes no therapy.
    Operator,
    /// An auditor: reads the audit log only.
    Auditor,
}

/// An authenticated person acting on a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Person {
    /// Account id.
    pub id: String,
    /// Role of the account.
    pub role: Role,
}

/// Inclusive range `min..=max` of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Range<T> {
    /// Smallest allowed value.
    pub min: T,
    /// Largest allowed value.
    pub max: T,
}

impl<T: PartialOrd> Range<T> {
    /// Whether `value` lies in `min..=max`.
    pub fn contains(&self, value: &T) -> bool {
        self.min <= *value && *value <= self.max
    }
}

/// Per-patient pump bounds. Insulin amounts are in 0.01 U, rates in 0.01 U/h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PumpBounds {
    /// Allowed basal rates, programmed or temporary.
    pub basal_rate: Range<u16>,
    /// Largest bolus, and the ceiling of the pump's programmed maximum bolus.
    pub max_bolus: u16,
    /// Ceiling of the pump's programmed maximum insulin on board.
    pub max_insulin_on_board: u16,
    /// Largest insulin total per day, counting what was delivered and what the change
    /// would deliver.
    pub max_daily_insulin: u32,
    /// Allowed temporary basal percentages.
    pub temp_basal_percent: Range<u16>,
    /// Longest temporary basal in minutes.
    pub temp_basal_max_minutes: u16,
}

/// Per-patient pacemaker parameter ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacemakerBounds {
    /// Lower rate limit in pulses per minute.
    pub lower_rate_ppm: Range<u8>,
    /// Upper tracking rate in pulses per minute.
    pub upper_tracking_ppm: Range<u8>,
    /// AV delay in milliseconds.
    pub av_delay_ms: Range<u16>,
    /// Output amplitude in steps of 0.1 V.
    pub amplitude_decivolts: Range<u8>,
}

/// Per-patient CGM alert threshold ranges in mg/dL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgmBounds {
    /// Allowed low alert thresholds.
    pub low_mg_dl: Range<u16>,
    /// Allowed high alert thresholds.
    pub high_mg_dl: Range<u16>,
}

/// The clinician's safety policy for one patient. A device model without bounds here
/// accepts no change at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientPolicy {
    /// Patient the policy belongs to.
    pub patient_id: String,
    /// Insulin pump bounds.
    pub pump: Option<PumpBounds>,
    /// Pacemaker bounds.
    pub pacemaker: Option<PacemakerBounds>,
    /// CGM bounds.
    pub cgm: Option<CgmBounds>,
    /// A basal change by more than this percentage, up or down at any time of day,
    /// needs a clinician's review when a patient or caregiver requests it.
    pub basal_change_review_percent: u16,
    /// Changes allowed per rolling hour before further ones need a clinician's review.
    pub max_changes_per_hour: usize,
}

/// A change request from the API, made by an authenticated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    /// Account id of the requester.
    pub requester_id: String,
    /// Role of the requester.
    pub requester_role: Role,
    /// Patient whose device the change is for.
    pub patient_id: String,
    /// Requested command.
    pub body: CommandBody,
    /// Time of the request in milliseconds since the Unix epoch (cloud clock).
    pub requested_at_ms: u64,
}

/// A change made for the patient before, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentChange {
    /// Time of the change in milliseconds since the Unix epoch.
    pub requested_at_ms: u64,
    /// Account that requested it.
    pub requester_id: String,
}

/// Pump settings as last acknowledged by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpSettings {
    /// Programmed basal profile.
    pub basal_profile: BasalProfile,
    /// Programmed maxima.
    pub max: PumpMaxSettings,
}

/// Device settings as last acknowledged by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CurrentSettings {
    /// Insulin pump settings.
    pub pump: Option<PumpSettings>,
    /// Pacemaker settings.
    pub pacemaker: Option<PacemakerSettings>,
    /// CGM thresholds.
    pub cgm: Option<CgmThresholds>,
}

/// State the cloud has recorded about the patient at the time of the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyContext {
    /// Insulin delivered today in 0.01 U, as reported by the pump.
    pub delivered_today: u32,
    /// Changes made for the patient in the last day.
    pub recent_changes: Vec<RecentChange>,
    /// Device settings.
    pub current: CurrentSettings,
    /// Hard limits of the patient's device, from the device registry.
    pub device_limits: DeviceLimits,
}
