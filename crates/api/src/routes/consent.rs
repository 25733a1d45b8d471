//! A patient's consent (grants), break-glass access, and the disclosure listing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use medtunnel_records::trace::format_time;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Field;
use crate::access::{NewBreakGlass, NewGrant};
use crate::audit;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::model::{Account, AccountId, Action, DataType, Role};
use crate::policy;
use crate::state::ApiState;

/// Maximum length of a break-glass reason, in characters.
const MAX_REASON_CHARS: usize = 500;

pub(super) const GRANT_FIELDS: &[Field] = &[
    Field {
        name: "grantee",
        kind: "string",
        required: true,
        description: "User name of a caregiver or clinician.",
    },
    Field {
        name: "data_types",
        kind: "array",
        required: true,
        description: "Any of glucose, insulin, cardiac, device_status.",
    },
    Field {
        name: "actions",
        kind: "array",
        required: true,
        description: "Any of read, request_changes.",
    },
    Field {
        name: "valid_from_s",
        kind: "integer",
        required: false,
        description: "Start, inclusive, in Unix seconds; default now.",
    },
    Field {
        name: "valid_until_s",
        kind: "integer",
        required: false,
        description: "End, exclusive, in Unix seconds; omit for \"until revoked\".",
    },
];

pub(super) const BREAK_GLASS_FIELDS: &[Field] = &[
    Field {
        name: "reason",
        kind: "string",
        required: true,
        description: "Why emergency access is needed; 1 to 500 characters, shown to the patient.",
    },
    Field {
        name: "duration_minutes",
        kind: "integer",
        required: false,
        description: "Length of the access in minutes, 1 to 60; default 60.",
    },
];

pub(super) async fn list_grants(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    let patient = AccountId(patient_id);
    let grants = state
        .blocking(move |state| {
            policy::require_owner_or_auditor(state, &caller.account, patient)?;
            policy::require_patient_account(state, patient)?;
            Ok(state.access().grants(patient)?)
        })
        .await?;
    Ok(Json(json!({ "patient_id": patient, "grants": grants })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GrantBody {
    grantee: String,
    data_types: Vec<DataType>,
    actions: Vec<Action>,
    valid_from_s: Option<i64>,
    valid_until_s: Option<i64>,
}

pub(super) async fn create_grant(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
    JsonBody(body): JsonBody<GrantBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = AccountId(patient_id);
    let grant = state
        .blocking(move |state| {
            policy::require_owner(state, &caller.account, patient)?;
            let now_s = state.now_s();
            let grantee = find_grantee(state, &body.grantee)?;
            let new = checked_grant(patient, grantee.id, body, now_s)?;
            let grant = state.access().create_grant(&new)?;
            audit::grant_created(&grant, now_s);
            Ok(grant)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "grant": grant }))))
}

fn find_grantee(state: &ApiState, username: &str) -> Result<Account, ApiError> {
    let grantee = state
        .access()
        .account_by_username(username)?
        .filter(|account| account.disabled_at_s.is_none())
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "no active account has the user name {username:?}; check the grantee"
            ))
        })?;
    if !grantee.role.may_receive_grants() {
        return Err(ApiError::InvalidRequest(format!(
            "{username:?} is a {}; grants can go only to caregivers and clinicians",
            grantee.role
        )));
    }
    Ok(grantee)
}

fn checked_grant(
    patient: AccountId,
    grantee: AccountId,
    body: GrantBody,
    now_s: i64,
) -> Result<NewGrant, ApiError> {
    if body.data_types.is_empty() {
        return Err(ApiError::InvalidRequest(
            "data_types is empty; list at least one of glucose, insulin, cardiac, device_status"
                .to_owned(),
        ));
    }
    if body.actions.is_empty() {
        return Err(ApiError::InvalidRequest(
            "actions is empty; list at least one of read, request_changes".to_owned(),
        ));
    }
    let valid_from_s = body.valid_from_s.unwrap_or(now_s);
    if let Some(until) = body.valid_until_s {
        if until <= valid_from_s.max(now_s) {
            return Err(ApiError::InvalidRequest(format!(
                "valid_until_s={until} is not after both valid_from_s={valid_from_s} and now ({now_s}); give a later end"
            )));
        }
    }
    Ok(NewGrant {
        patient_id: patient,
        grantee_id: grantee,
        data_types: body.data_types,
        actions: body.actions,
        valid_from_s,
        valid_until_s: body.valid_until_s,
        created_at_s: now_s,
    })
}

pub(super) async fn revoke_grant(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((patient_id, grant_id)): PathParams<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    let patient = AccountId(patient_id);
    let grant = state
        .blocking(move |state| {
            policy::require_owner(state, &caller.account, patient)?;
            let not_found =
                || ApiError::NotFound(format!("patient {patient} has no grant with id {grant_id}"));
            let grant = state
                .access()
                .grant(grant_id)?
                .filter(|grant| grant.patient_id == patient)
                .ok_or_else(not_found)?;
            if let Some(revoked_at_s) = grant.revoked_at_s {
                return Err(ApiError::Conflict(format!(
                    "grant {grant_id} was already revoked at {} UTC",
                    format_time(revoked_at_s)
                )));
            }
            let now_s = state.now_s();
            state.access().revoke_grant(grant_id, now_s)?;
            let revoked = state.access().grant(grant_id)?.ok_or_else(not_found)?;
            audit::grant_revoked(&revoked, now_s);
            Ok(revoked)
        })
        .await?;
    Ok(Json(json!({ "grant": grant })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BreakGlassBody {
    reason: String,
    duration_minutes: Option<i64>,
}

pub(super) async fn open_break_glass(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
    JsonBody(body): JsonBody<BreakGlassBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let patient = AccountId(patient_id);
    let session = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Clinician)?;
            policy::require_patient_account(state, patient)?;
            let max_minutes = state.config().break_glass_max_minutes;
            let minutes = body.duration_minutes.unwrap_or(max_minutes);
            if !(1..=max_minutes).contains(&minutes) {
                return Err(ApiError::InvalidRequest(format!(
                    "duration_minutes={minutes} is outside 1 to {max_minutes}; open a new session when it ends"
                )));
            }
            let reason = body.reason.trim();
            let reason_chars = reason.chars().count();
            if reason_chars == 0 || reason_chars > MAX_REASON_CHARS {
                return Err(ApiError::InvalidRequest(format!(
                    "the reason has {reason_chars} characters; give 1 to {MAX_REASON_CHARS} characters saying why emergency access is needed"
                )));
            }
            let now_s = state.now_s();
            let new = NewBreakGlass {
                clinician_id: caller.account.id,
                patient_id: patient,
                reason: reason.to_owned(),
                opened_at_s: now_s,
                expires_at_s: now_s + minutes * 60,
            };
            let notice = format!(
                "Clinician {} opened emergency access to your data at {} UTC for {minutes} minutes. Reason: {}",
                caller.account.username,
                format_time(now_s),
                new.reason
            );
            let session = state.access().open_break_glass(&new, &notice)?;
            audit::break_glass_opened(&session);
            Ok(session)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "break_glass": session }))))
}

pub(super) async fn list_disclosures(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    let patient = AccountId(patient_id);
    let disclosures = state
        .blocking(move |state| {
            policy::require_owner_or_auditor(state, &caller.account, patient)?;
            policy::require_patient_account(state, patient)?;
            Ok(state.access().disclosures(Some(patient))?)
        })
        .await?;
    Ok(Json(
        json!({ "patient_id": patient, "disclosures": disclosures }),
    ))
}
