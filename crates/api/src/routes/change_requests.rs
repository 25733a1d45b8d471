//! Therapy settings-change requests: submission, reading, review and co-signature.
//!
//! The therapy service decides each request with the patient's policy and keeps its own
//! audit log. These handlers decide who may call it. The therapy service names patients
//! and people by the decimal form of their account id.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use medtunnel_therapy::{RequestView, Requester};
use serde::Deserialize;

use super::change_body::Change;
use super::Field;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ClientAddress, JsonBody, PathParams};
use crate::model::{Account, AccountId, DataType, Role};
use crate::policy;
use crate::state::ApiState;

pub(super) const SUBMIT_FIELDS: &[Field] = &[
    Field {
        name: "device_id",
        kind: "string",
        required: true,
        description: "Id of the patient's enrolled insulin pump or pacemaker.",
    },
    Field {
        name: "change",
        kind: "object",
        required: true,
        description: "The change, tagged by kind: bolus {units}, temp_basal {percent or units_per_hour, duration_minutes}, basal_profile {segments: [{start_minute, units_per_hour}]}, suspend, resume, max_bolus {units}, max_basal {units_per_hour}, max_insulin_on_board {units}, pacing_mode {mode}, lower_rate_limit {ppm}, upper_tracking_rate {ppm}, av_delay {delay_ms}, output_amplitude {volts}. Insulin in U and U/h with at most two decimals.",
    },
];

pub(super) const REVIEW_FIELDS: &[Field] = &[Field {
    name: "approve",
    kind: "boolean",
    required: true,
    description: "true approves the request, which the policy then checks again; false rejects it.",
}];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitRequest {
    device_id: String,
    change: Change,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewRequest {
    approve: bool,
}

/// Submits a change request. The response's state is already the policy's decision.
///
/// Steps: authorize the caller for the change's data type, check that the device is
/// the patient's and of the change's model, convert the change, then submit it.
pub(super) async fn submit(
    caller: Caller,
    ClientAddress(client): ClientAddress,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
    JsonBody(request): JsonBody<SubmitRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    let patient = AccountId(patient_id);
    let data_type = request.change.data_type();
    let view = state
        .blocking(move |state| {
            policy::authorize_change_request(state, &caller.account, patient, data_type)?;
            require_patient_device(state, patient, &request.device_id, data_type)?;
            let body = request.change.into_body()?;
            let requester = requester_of(&caller.account, client);
            let view = state.therapy()?.submit(
                &requester,
                &patient.to_string(),
                &request.device_id,
                body,
                state.now_ms(),
            )?;
            tracing::info!(
                request_id = view.id,
                account_id = caller.account.id.0,
                state = view.state.as_str(),
                "change request submitted"
            );
            Ok(view)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Returns one change request of a patient, under the read rules of the device's data
/// type, and records the read as a disclosure when the caller is not the patient.
pub(super) async fn show(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams((patient_id, request_id)): PathParams<(i64, i64)>,
) -> Result<Json<RequestView>, ApiError> {
    let patient = AccountId(patient_id);
    let view = state
        .blocking(move |state| {
            let found = state.therapy()?.request(request_id);
            let view = match found {
                Ok(view) if view.patient_id == patient.to_string() => view,
                Ok(_) | Err(medtunnel_therapy::TherapyError::RequestNotFound(_)) => {
                    return Err(not_found_for(state, &caller.account, patient, request_id));
                }
                Err(other) => return Err(other.into()),
            };
            let data_type = device_data_type(state, &view.device_id)?;
            let access = policy::authorize_read(state, &caller.account, patient, data_type)?;
            policy::record_read(state, &caller.account, patient, data_type, access, 1)?;
            Ok(view)
        })
        .await?;
    Ok(Json(view))
}

/// Records a clinician's review of a request that waits for one.
pub(super) async fn review(
    caller: Caller,
    ClientAddress(client): ClientAddress,
    State(state): State<ApiState>,
    PathParams(request_id): PathParams<i64>,
    JsonBody(request): JsonBody<ReviewRequest>,
) -> Result<Json<RequestView>, ApiError> {
    let view = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Clinician)?;
            let mut therapy = state.therapy()?;
            authorize_review_of(state, &caller.account, &therapy.request(request_id)?)?;
            let requester = requester_of(&caller.account, client);
            let view = therapy.review(&requester, request_id, request.approve, state.now_ms())?;
            tracing::info!(
                request_id,
                account_id = caller.account.id.0,
                approve = request.approve,
                state = view.state.as_str(),
                "change request reviewed"
            );
            Ok(view)
        })
        .await?;
    Ok(Json(view))
}

/// Records a second clinician's co-signature of a high-risk request.
pub(super) async fn cosign(
    caller: Caller,
    ClientAddress(client): ClientAddress,
    State(state): State<ApiState>,
    PathParams(request_id): PathParams<i64>,
) -> Result<Json<RequestView>, ApiError> {
    let view = state
        .blocking(move |state| {
            policy::require_role(state, &caller.account, Role::Clinician)?;
            let mut therapy = state.therapy()?;
            authorize_review_of(state, &caller.account, &therapy.request(request_id)?)?;
            let requester = requester_of(&caller.account, client);
            let view = therapy.cosign(&requester, request_id, state.now_ms())?;
            tracing::info!(
                request_id,
                account_id = caller.account.id.0,
                state = view.state.as_str(),
                "change request co-signed"
            );
            Ok(view)
        })
        .await?;
    Ok(Json(view))
}

/// Checks that a clinician may review or co-sign `view`: the request's patient must
/// have granted them `request_changes` on the device's data type.
fn authorize_review_of(
    state: &ApiState,
    caller: &Account,
    view: &RequestView,
) -> Result<(), ApiError> {
    let Ok(patient) = view.patient_id.parse::<i64>() else {
        return Err(ApiError::Forbidden(format!(
            "change request {} belongs to a patient without an account in this API, so no grant can cover it",
            view.id
        )));
    };
    let data_type = device_data_type(state, &view.device_id)?;
    policy::authorize_review(state, caller, AccountId(patient), data_type)
}

/// Checks that `device_id` is linked to `patient` and is of the model that `data_type`
/// changes.
fn require_patient_device(
    state: &ApiState,
    patient: AccountId,
    device_id: &str,
    data_type: DataType,
) -> Result<(), ApiError> {
    let linked = state.access().patient_devices(patient)?;
    if !linked.iter().any(|linked_id| linked_id == device_id) {
        return Err(ApiError::NotFound(format!(
            "patient {patient} has no device {device_id}; GET /v1/patients/{patient}/devices lists them"
        )));
    }
    let device_type = device_data_type(state, device_id)?;
    if device_type != data_type {
        return Err(ApiError::InvalidRequest(format!(
            "device {device_id} takes {} changes, and this change is a {} change; send a change kind of the device's model",
            device_type.as_str(),
            data_type.as_str()
        )));
    }
    Ok(())
}

/// Returns the data type whose grants cover changes to a device: insulin for pumps,
/// cardiac for pacemakers.
fn device_data_type(state: &ApiState, device_id: &str) -> Result<DataType, ApiError> {
    let devices = state
        .health()
        .devices(&[device_id.to_owned()])
        .map_err(|error| ApiError::internal("loading a device for a change request", error))?;
    let Some(device) = devices.first() else {
        return Err(ApiError::NotFound(format!("no device has id {device_id}")));
    };
    match device.model {
        "insulin_pump" => Ok(DataType::Insulin),
        "pacemaker" => Ok(DataType::Cardiac),
        model => Err(ApiError::InvalidRequest(format!(
            "device {device_id} is a {model}, which takes no therapy changes"
        ))),
    }
}

/// Builds the 404 for a request id that the patient does not have. Callers who may not
/// read the patient's insulin or cardiac data get the 403 instead, so that they cannot
/// probe which request ids exist.
fn not_found_for(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    request_id: i64,
) -> ApiError {
    let not_found = || {
        ApiError::NotFound(format!(
            "patient {patient} has no change request {request_id}"
        ))
    };
    match policy::authorize_read(state, caller, patient, DataType::Insulin) {
        Ok(_) => not_found(),
        Err(denied) => match policy::authorize_read(state, caller, patient, DataType::Cardiac) {
            Ok(_) => not_found(),
            Err(_) => denied,
        },
    }
}

/// Builds the therapy service's view of the caller, with the client's address as the
/// source of its audit records.
fn requester_of(account: &Account, client: Option<String>) -> Requester {
    let requester = Requester::new(account.id.to_string(), therapy_role(account.role));
    match client {
        Some(address) => requester.with_source(address),
        None => requester,
    }
}

fn therapy_role(role: Role) -> medtunnel_therapy::Role {
    match role {
        Role::Patient => medtunnel_therapy::Role::Patient,
        Role::Caregiver => medtunnel_therapy::Role::Caregiver,
        Role::Clinician => medtunnel_therapy::Role::Clinician,
        Role::Researcher => medtunnel_therapy::Role::Researcher,
        Role::Operator => medtunnel_therapy::Role::Operator,
        Role::Auditor => medtunnel_therapy::Role::Auditor,
    }
}
