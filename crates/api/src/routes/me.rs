//! The signed-in account and its notifications.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::PathParams;
use crate::state::ApiState;

pub(super) async fn account(caller: Caller) -> Json<Value> {
    Json(json!({ "account": caller.account }))
}

pub(super) async fn notifications(
    caller: Caller,
    State(state): State<ApiState>,
) -> Result<Json<Value>, ApiError> {
    let notifications = state
        .blocking(move |state| Ok(state.access().notifications(caller.account.id)?))
        .await?;
    Ok(Json(json!({ "notifications": notifications })))
}

pub(super) async fn mark_read(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(notification_id): PathParams<i64>,
) -> Result<StatusCode, ApiError> {
    let found = state
        .blocking(move |state| {
            Ok(state
                .access()
                .mark_notification_read(caller.account.id, notification_id)?)
        })
        .await?;
    if !found {
        return Err(ApiError::NotFound(format!(
            "you have no notification with id {notification_id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
