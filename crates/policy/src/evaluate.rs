//! The rules, applied in a fixed order; the first rule that does not pass decides.
//!
//! 1. The request is for the policy's patient.
//! 2. The requester's role may request the change: patients and caregivers a bolus, a
//!    temporary basal, suspend, resume and CGM thresholds; clinicians anything; other
//!    roles nothing.
//! 3. The value is within the device's hard limits.
//! 4. The value is within the patient's bounds.
//! 5. The day's insulin, delivered plus what the change adds, stays within the daily
//!    limit.
//! 6. Unless a clinician reviewed the request: a patient's or caregiver's basal change
//!    above the review percentage, or a change beyond the hourly rate limit, needs review.
//! 7. A high-risk change (as `medtunnel-command` classifies it) needs a second
//!    clinician's co-signature.

use medtunnel_command::body::PumpCommand;
use medtunnel_command::{CommandBody, Risk};

use crate::bounds::{
    added_insulin, basal_change_percent, check_device_limits, check_patient_bounds,
};
use crate::decision::{Decision, Reason, ReasonCode};
use crate::policy::{ChangeRequest, PatientPolicy, Person, PolicyContext, Role};

const HOUR_MS: u64 = 60 * 60 * 1000;

/// Reason a review was rejected. The decision stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The reviewer is not a clinician.
    #[error("reviewer {id} is not a clinician")]
    NotClinician {
        /// Reviewer's account id.
        id: String,
    },
    /// The reviewer made the request; another clinician must review it.
    #[error("reviewer {id} made the request")]
    SamePerson {
        /// Reviewer's account id.
        id: String,
    },
}

/// Evaluates a change request against the patient's policy.
pub fn evaluate(request: &ChangeRequest, policy: &PatientPolicy, ctx: &PolicyContext) -> Decision {
    evaluate_with_review(request, None, policy, ctx)
}

/// Evaluates a request again after a clinician other than the requester reviewed it:
/// the review-only rules pass, and every other rule still applies.
pub fn evaluate_reviewed(
    request: &ChangeRequest,
    reviewer: &Person,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Result<Decision, ReviewError> {
    if reviewer.role != Role::Clinician {
        return Err(ReviewError::NotClinician {
            id: reviewer.id.clone(),
        });
    }
    if reviewer.id == request.requester_id {
        return Err(ReviewError::SamePerson {
            id: reviewer.id.clone(),
        });
    }
    Ok(evaluate_with_review(
        request,
        Some(&reviewer.id),
        policy,
        ctx,
    ))
}

fn evaluate_with_review(
    request: &ChangeRequest,
    reviewed_by: Option<&String>,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Decision {
    if let Err(reason) = check_values(request, policy, ctx) {
        return Decision::Rejected { reason };
    }
    if reviewed_by.is_none() {
        if let Some(reason) = review_reason(request, policy, ctx) {
            return Decision::NeedsReview { reason };
        }
    }
    let current_max = ctx.current.pump.as_ref().map(|p| &p.max);
    if request.body.risk(current_max) == Risk::High {
        return Decision::NeedsCosign {
            reason: Reason::new(
                ReasonCode::HighRiskNeedsCosign,
                "The change is high risk, so a second clinician must co-sign it.",
            ),
            requester_id: request.requester_id.clone(),
            reviewed_by: reviewed_by.cloned(),
        };
    }
    Decision::Approved {
        reason: Reason::new(
            ReasonCode::WithinPolicy,
            "The change is within the patient's policy.",
        ),
        reviewed_by: reviewed_by.cloned(),
        cosigned_by: None,
    }
}

/// Rules 1 to 5: the ones no review or co-signature can override.
fn check_values(
    request: &ChangeRequest,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Result<(), Reason> {
    if request.patient_id != policy.patient_id {
        return Err(Reason::new(
            ReasonCode::PatientMismatch,
            format!(
                "The request is for patient {} but the policy is for patient {}.",
                request.patient_id, policy.patient_id
            ),
        ));
    }
    if !role_may_request(request.requester_role, &request.body) {
        return Err(Reason::new(
            ReasonCode::RoleNotPermitted,
            format!(
                "The role {:?} may not request this change.",
                request.requester_role
            ),
        ));
    }
    check_device_limits(&request.body, ctx)?;
    check_patient_bounds(&request.body, policy, ctx)?;
    check_daily_insulin(request, policy, ctx)
}

fn role_may_request(role: Role, body: &CommandBody) -> bool {
    match role {
        Role::Clinician => true,
        Role::Patient | Role::Caregiver => matches!(
            body,
            CommandBody::Pump(
                PumpCommand::Bolus(_)
                    | PumpCommand::TempBasal { .. }
                    | PumpCommand::Suspend
                    | PumpCommand::Resume
            ) | CommandBody::Cgm(_)
        ),
        Role::Researcher | Role::Operator | Role::Auditor => false,
    }
}

fn check_daily_insulin(
    request: &ChangeRequest,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Result<(), Reason> {
    let Some(bounds) = &policy.pump else {
        return Ok(());
    };
    let added = added_insulin(&request.body, ctx.current.pump.as_ref());
    let total = u64::from(ctx.delivered_today) + u64::from(added);
    if added > 0 && total > u64::from(bounds.max_daily_insulin) {
        return Err(Reason::new(
            ReasonCode::DailyInsulinLimit,
            format!(
                "Delivered today {} plus this change {} (in 0.01 U) exceeds the daily limit of {}.",
                ctx.delivered_today, added, bounds.max_daily_insulin
            ),
        ));
    }
    Ok(())
}

/// Rule 6: returns why the request needs a clinician's review, if it does.
fn review_reason(
    request: &ChangeRequest,
    policy: &PatientPolicy,
    ctx: &PolicyContext,
) -> Option<Reason> {
    if request.requester_role != Role::Clinician {
        let change = ctx
            .current
            .pump
            .as_ref()
            .and_then(|pump| basal_change_percent(&request.body, pump));
        if let Some(percent) = change.filter(|p| *p > u64::from(policy.basal_change_review_percent))
        {
            let change_text = if percent == u64::MAX {
                "from a zero rate".to_string()
            } else {
                format!("by {percent} %")
            };
            return Some(Reason::new(
                ReasonCode::BasalChangeNeedsReview,
                format!(
                    "The basal rate would change {change_text}, more than the {} % a clinician must review.",
                    policy.basal_change_review_percent
                ),
            ));
        }
    }
    let since = request.requested_at_ms.saturating_sub(HOUR_MS);
    let last_hour = ctx
        .recent_changes
        .iter()
        .filter(|c| c.requested_at_ms > since && c.requested_at_ms <= request.requested_at_ms)
        .count();
    if last_hour >= policy.max_changes_per_hour {
        return Some(Reason::new(
            ReasonCode::RateLimited,
            format!(
                "{last_hour} changes in the last hour reach the limit of {}, so a clinician must review this one.",
                policy.max_changes_per_hour
            ),
        ));
    }
    None
}
