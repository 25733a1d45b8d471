//! Decisions of the policy engine and the co-signature step.

use serde::{Deserialize, Serialize};

use crate::policy::{Person, Role};

/// Machine-readable reason of a decision, stable for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Every rule passed.
    WithinPolicy,
    /// A second clinician co-signed a high-risk change.
    Cosigned,
    /// The request names another patient than the policy.
    PatientMismatch,
    /// The requester's role may not request this change.
    RoleNotPermitted,
    /// The policy or the cloud's records have nothing for this device model.
    DeviceNotConfigured,
    /// The value breaks a hard limit of the device.
    DeviceLimit,
    /// The value is outside the patient's bounds.
    OutsidePatientBounds,
    /// The change would take the day's insulin above the patient's daily limit.
    DailyInsulinLimit,
    /// The basal rate would change by more than the review percentage.
    BasalChangeNeedsReview,
    /// Too many changes in the last hour.
    RateLimited,
    /// The change is high risk and needs a second clinician.
    HighRiskNeedsCosign,
}

/// A reason: a code for machines and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// Plain sentence with the values involved.
    pub message: String,
}

impl Reason {
    pub(crate) fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Outcome of evaluating a change request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The cloud may sign the command.
    Approved {
        /// Reason of the decision.
        reason: Reason,
        /// Clinician who reviewed the request, if one had to.
        reviewed_by: Option<String>,
        /// Clinician who co-signed, for a high-risk change.
        cosigned_by: Option<String>,
    },
    /// A clinician must review the request (see [`crate::evaluate_reviewed`]).
    NeedsReview {
        /// Reason of the decision.
        reason: Reason,
    },
    /// A second clinician must co-sign (see [`cosign`]).
    NeedsCosign {
        /// Reason of the decision.
        reason: Reason,
        /// Requester, who cannot co-sign.
        requester_id: String,
        /// Reviewing clinician, who cannot co-sign either.
        reviewed_by: Option<String>,
    },
    /// The change must not be made.
    Rejected {
        /// Reason of the decision.
        reason: Reason,
    },
}

impl Decision {
    /// Reason of the decision.
    pub fn reason(&self) -> &Reason {
        match self {
            Self::Approved { reason, .. }
            | Self::NeedsReview { reason }
            | Self::NeedsCosign { reason, .. }
            | Self::Rejected { reason } => reason,
        }
    }

    /// Whether the cloud may sign the command.
    pub fn is_approved(&self) -> bool {
        matches!(self, Self::Approved { .. })
    }
}

/// Reason a co-signature was rejected. The decision stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignError {
    /// The decision does not wait for a co-signature.
    #[error("the decision does not need a co-signature")]
    NotAwaitingCosign,
    /// The co-signer is not a clinician.
    #[error("co-signer {id} is not a clinician")]
    NotClinician {
        /// Co-signer's account id.
        id: String,
    },
    /// The co-signer requested or reviewed the change; a second clinician must co-sign.
    #[error("co-signer {id} already requested or reviewed this change")]
    SamePerson {
        /// Co-signer's account id.
        id: String,
    },
}

/// Adds a second clinician's co-signature to a decision that needs one. The co-signer
/// must be a clinician other than the requester and the reviewer.
///
/// NOTE: the co-signature does not re-run the rules. If time passed since the
/// evaluation, the cloud evaluates the request again with a fresh context before
/// signing, so a day's insulin total that grew meanwhile is counted.
pub fn cosign(decision: &Decision, cosigner: &Person) -> Result<Decision, CosignError> {
    let Decision::NeedsCosign {
        requester_id,
        reviewed_by,
        ..
    } = decision
    else {
        return Err(CosignError::NotAwaitingCosign);
    };
    if cosigner.role != Role::Clinician {
        return Err(CosignError::NotClinician {
            id: cosigner.id.clone(),
        });
    }
    if cosigner.id == *requester_id || reviewed_by.as_ref() == Some(&cosigner.id) {
        return Err(CosignError::SamePerson {
            id: cosigner.id.clone(),
        });
    }
    Ok(Decision::Approved {
        reason: Reason::new(
            ReasonCode::Cosigned,
            format!("High-risk change co-signed by clinician {}.", cosigner.id),
        ),
        reviewed_by: reviewed_by.clone(),
        cosigned_by: Some(cosigner.id.clone()),
    })
}
