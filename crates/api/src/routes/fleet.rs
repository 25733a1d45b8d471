//! Routes across all patients: the device fleet for operators, and the audit listings
//! for auditors.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::Role;
use crate::policy;
use crate::state::ApiState;

pub(super) async fn devices(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let devices = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Operator)?;
            state
                .health()
                .all_devices()
                .map_err(|error| ApiError::internal("listing devices", error))
        })
        .await?;
    Ok(Json(json!({ "devices": devices })))
}

pub(super) async fn disclosures(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let disclosures = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Auditor)?;
            Ok(state.access().disclosures(None)?)
        })
        .await?;
    Ok(Json(json!({ "disclosures": disclosures })))
}

pub(super) async fn break_glass(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let sessions = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Auditor)?;
            Ok(state.access().break_glass_sessions()?)
        })
        .await?;
    Ok(Json(json!({ "break_glass": sessions })))
}
