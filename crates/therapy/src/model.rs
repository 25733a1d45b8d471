//! Values of the service API: who acts, request states and the view of a request.

use medtunnel_command::body::{CgmCommand, PacemakerCommand, PumpCommand, TempBasalRate};
use medtunnel_command::CommandBody;
use medtunnel_policy::{Reason, Role};
use serde::{Deserialize, Serialize};

/// An authenticated person acting through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// Account id.
    pub account_id: String,
    /// Role of the account.
    pub role: Role,
    /// Origin of the request, such as the client's IP address, for the audit log.
    pub source: Option<String>,
}

impl Requester {
    /// Creates a requester without a source.
    pub fn new(account_id: impl Into<String>, role: Role) -> Self {
        Self {
            account_id: account_id.into(),
            role,
            source: None,
        }
    }

    /// Sets the origin of the request.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn actor(&self) -> String {
        format!("user:{}", self.account_id)
    }
}

/// State of a change request.
///
/// `pending_review` and `needs_cosign` wait for a clinician; `approved` waits for
/// signing (a device status or a fresh challenge may be missing) and then for delivery;
/// `sent` waits for the device's acknowledgement. `rejected`, `acknowledged`, `failed`
/// and `expired` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// A clinician must review the request.
    PendingReview,
    /// A second clinician must co-sign the request.
    NeedsCosign,
    /// Policy or a reviewer rejected the request.
    Rejected,
    /// Policy approved the request; the command is being signed or waits for delivery.
    Approved,
    /// The command went through the tunnel; the device has not acknowledged it yet.
    Sent,
    /// The device executed the command.
    Acknowledged,
    /// The device rejected the command, or it can no longer run.
    Failed,
    /// The command expired before the device received it.
    Expired,
}

impl RequestState {
    /// Every state, in the order above.
    pub const ALL: [RequestState; 8] = [
        Self::PendingReview,
        Self::NeedsCosign,
        Self::Rejected,
        Self::Approved,
        Self::Sent,
        Self::Acknowledged,
        Self::Failed,
        Self::Expired,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingReview => "pending_review",
            Self::NeedsCosign => "needs_cosign",
            Self::Rejected => "rejected",
            Self::Approved => "approved",
            Self::Sent => "sent",
            Self::Acknowledged => "acknowledged",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|state| state.as_str() == name)
    }

    /// Whether the request can change no more.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Rejected | Self::Acknowledged | Self::Failed | Self::Expired
        )
    }
}

/// What the API shows of a change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    /// Request id.
    pub id: i64,
    /// Current state.
    pub state: RequestState,
    /// Why the request is rejected, failed or expired: a policy reason code, a
    /// reviewer's rejection or the device's reject reason.
    pub reason: Option<String>,
    /// Device the change is for.
    pub device_id: String,
    /// Patient the device belongs to.
    pub patient_id: String,
    /// Account that requested the change.
    pub requester_id: String,
    /// The change in words, with units.
    pub body_summary: String,
    /// Creation time, Unix milliseconds.
    pub created_at: i64,
    /// Time of the last state change, Unix milliseconds.
    pub updated_at: i64,
    /// Every policy decision taken on the request, oldest first.
    pub decision_reasons: Vec<Reason>,
    /// Clinician who reviewed the request.
    pub reviewed_by: Option<String>,
    /// Clinician who co-signed the request.
    pub cosigned_by: Option<String>,
}

/// Describes a command body in words with units, for people.
pub fn summarize(body: &CommandBody) -> String {
    match body {
        CommandBody::Pump(command) => summarize_pump(command),
        CommandBody::Pacemaker(command) => match command {
            PacemakerCommand::SetPacingMode(mode) => format!("pacemaker: pacing mode {mode:?}"),
            PacemakerCommand::SetLowerRateLimit(ppm) => {
                format!("pacemaker: lower rate limit {ppm} ppm")
            }
            PacemakerCommand::SetUpperTrackingRate(ppm) => {
                format!("pacemaker: upper tracking rate {ppm} ppm")
            }
            PacemakerCommand::SetAvDelay(ms) => format!("pacemaker: AV delay {ms} ms"),
            PacemakerCommand::SetOutputAmplitude(dv) => {
                format!(
                    "pacemaker: output amplitude {} V",
                    units(u32::from(*dv), 10)
                )
            }
        },
        CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        }) => format!("CGM: alert thresholds {low_mg_dl} to {high_mg_dl} mg/dL"),
    }
}

fn summarize_pump(command: &PumpCommand) -> String {
    let hundredths = |v: u16| units(u32::from(v), 100);
    match command {
        PumpCommand::SetBasalProfile(profile) => format!(
            "pump: basal profile of {} segments, highest {} U/h",
            profile.segments().len(),
            hundredths(profile.max_rate().0)
        ),
        PumpCommand::TempBasal {
            rate,
            duration_minutes,
        } => match rate {
            TempBasalRate::Percent(p) => {
                format!("pump: temporary basal {p} % for {duration_minutes} min")
            }
            TempBasalRate::Absolute(r) => format!(
                "pump: temporary basal {} U/h for {duration_minutes} min",
                hundredths(r.0)
            ),
        },
        PumpCommand::Bolus(amount) => format!("pump: bolus {} U", hundredths(amount.0)),
        PumpCommand::Suspend => "pump: suspend delivery".to_owned(),
        PumpCommand::Resume => "pump: resume delivery".to_owned(),
        PumpCommand::SetMaxBolus(v) => format!("pump: maximum bolus {} U", hundredths(v.0)),
        PumpCommand::SetMaxBasal(v) => format!("pump: maximum basal {} U/h", hundredths(v.0)),
        PumpCommand::SetMaxInsulinOnBoard(v) => {
            format!("pump: maximum insulin on board {} U", hundredths(v.0))
        }
    }
}

/// Command kind without values, for the audit log, which holds no therapy values.
pub(crate) fn kind(body: &CommandBody) -> &'static str {
    match body {
        CommandBody::Pump(PumpCommand::SetBasalProfile(_)) => "pump.basal_profile",
        CommandBody::Pump(PumpCommand::TempBasal { .. }) => "pump.temp_basal",
        CommandBody::Pump(PumpCommand::Bolus(_)) => "pump.bolus",
        CommandBody::Pump(PumpCommand::Suspend) => "pump.suspend",
        CommandBody::Pump(PumpCommand::Resume) => "pump.resume",
        CommandBody::Pump(PumpCommand::SetMaxBolus(_)) => "pump.max_bolus",
        CommandBody::Pump(PumpCommand::SetMaxBasal(_)) => "pump.max_basal",
        CommandBody::Pump(PumpCommand::SetMaxInsulinOnBoard(_)) => "pump.max_insulin_on_board",
        CommandBody::Pacemaker(PacemakerCommand::SetPacingMode(_)) => "pacemaker.pacing_mode",
        CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(_)) => "pacemaker.lower_rate",
        CommandBody::Pacemaker(PacemakerCommand::SetUpperTrackingRate(_)) => {
            "pacemaker.upper_tracking_rate"
        }
        CommandBody::Pacemaker(PacemakerCommand::SetAvDelay(_)) => "pacemaker.av_delay",
        CommandBody::Pacemaker(PacemakerCommand::SetOutputAmplitude(_)) => "pacemaker.amplitude",
        CommandBody::Cgm(_) => "cgm.alert_thresholds",
    }
}

/// Formats `value / divisor` with the divisor's decimal places.
fn units(value: u32, divisor: u32) -> String {
    let places = if divisor == 10 { 1 } else { 2 };
    format!(
        "{}.{:0places$}",
        value / divisor,
        value % divisor,
        places = places
    )
}

/// Name of a device reject reason, stable for the API and the audit log.
pub fn reject_reason_name(reason: medtunnel_command::RejectReason) -> String {
    use medtunnel_command::RejectReason as R;
    let name = match reason {
        R::Malformed => "malformed",
        R::SignatureInvalid => "signature_invalid",
        R::WrongDevice => "wrong_device",
        R::WrongEpoch => "wrong_epoch",
        R::Replayed => "replayed",
        R::AlreadyExecuted => "already_executed",
        R::Expired => "expired",
        R::ChallengeMissing => "challenge_missing",
        R::ChallengeUnknown => "challenge_unknown",
        R::ChallengeExpired => "challenge_expired",
        R::WrongDeviceModel => "wrong_device_model",
        R::DeliverySuspended => "delivery_suspended",
        R::RemoteBolusBlocked => "remote_bolus_blocked",
        R::PersistFailed => "persist_failed",
        R::OutOfLimits(violation) => return format!("out_of_limits:{violation:?}"),
    };
    name.to_owned()
}
