//! A patient's health data: devices and glucose readings. Every read by someone other
//! than the patient is recorded as a disclosure before the data is returned.

use axum::extract::State;
use axum::Json;
use medtunnel_records::trace::format_time;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Field;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::health_data::{GlucoseReading, ReadingPosition};
use crate::model::{AccountId, DataType};
use crate::policy;
use crate::state::ApiState;

/// Readings per page when the request gives no limit.
const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest accepted page limit.
pub const MAX_PAGE_LIMIT: u32 = 1000;

pub(super) const READINGS_QUERY: &[Field] = &[
    Field {
        name: "from",
        kind: "integer",
        required: false,
        description: "Start of the device-time range, inclusive, in Unix seconds.",
    },
    Field {
        name: "to",
        kind: "integer",
        required: false,
        description: "End of the device-time range, exclusive, in Unix seconds.",
    },
    Field {
        name: "limit",
        kind: "integer",
        required: false,
        description: "Readings per page, 1 to 1000; default 100.",
    },
    Field {
        name: "cursor",
        kind: "string",
        required: false,
        description: "The next_cursor of the previous page, unchanged.",
    },
];

pub(super) async fn devices(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
) -> Result<Json<Value>, ApiError> {
    let patient = AccountId(patient_id);
    let devices = state
        .blocking(move |state| {
            let access =
                policy::authorize_read(state, &caller.account, patient, DataType::DeviceStatus)?;
            let device_ids = state.access().patient_devices(patient)?;
            let devices = state
                .health()
                .devices(&device_ids)
                .map_err(|error| ApiError::internal("loading a patient's devices", error))?;
            policy::record_read(
                state,
                &caller.account,
                patient,
                DataType::DeviceStatus,
                access,
                devices.len(),
            )?;
            Ok(devices)
        })
        .await?;
    Ok(Json(json!({ "patient_id": patient, "devices": devices })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadingsQuery {
    from: Option<i64>,
    to: Option<i64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

pub(super) async fn readings(
    caller: Caller,
    State(state): State<ApiState>,
    PathParams(patient_id): PathParams<i64>,
    QueryParams(query): QueryParams<ReadingsQuery>,
) -> Result<Json<Value>, ApiError> {
    let patient = AccountId(patient_id);
    let limit = page_limit(query.limit)?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from >= to {
            return Err(ApiError::InvalidRequest(format!(
                "from={from} is not before to={to}; give a range whose start is before its end"
            )));
        }
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;

    let (mut readings, has_more) = state
        .blocking(move |state| {
            let access =
                policy::authorize_read(state, &caller.account, patient, DataType::Glucose)?;
            let device_ids = state.access().patient_devices(patient)?;
            let mut readings = state
                .health()
                .glucose_readings(&device_ids, query.from, query.to, after.as_ref(), limit + 1)
                .map_err(|error| ApiError::internal("loading glucose readings", error))?;
            let has_more = readings.len() > limit;
            readings.truncate(limit);
            policy::record_read(
                state,
                &caller.account,
                patient,
                DataType::Glucose,
                access,
                readings.len(),
            )?;
            Ok((readings, has_more))
        })
        .await?;

    let next_cursor = if has_more {
        readings.last().map(|last| encode_cursor(&last.position()))
    } else {
        None
    };
    let items: Vec<Value> = readings.drain(..).map(reading_json).collect();
    Ok(Json(json!({
        "patient_id": patient,
        "readings": items,
        "next_cursor": next_cursor,
    })))
}

fn page_limit(requested: Option<u32>) -> Result<usize, ApiError> {
    let limit = requested.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit={limit} is outside 1 to {MAX_PAGE_LIMIT}; request at most {MAX_PAGE_LIMIT} readings per page and follow next_cursor"
        )));
    }
    Ok(limit as usize)
}

fn reading_json(reading: GlucoseReading) -> Value {
    json!({
        "device_id": reading.device_id,
        "seq": reading.seq,
        "device_time": format_time(reading.device_time_s),
        "device_time_s": reading.device_time_s,
        "glucose_mg_dl": reading.glucose_mg_dl,
    })
}

/// Encodes a position as hex of `time:seq:device_id`. Clients treat it as opaque. It
/// contains no secret, and a forged one only moves the page start.
fn encode_cursor(position: &ReadingPosition) -> String {
    hex::encode(format!(
        "{}:{}:{}",
        position.device_time_s, position.seq, position.device_id
    ))
}

fn decode_cursor(cursor: &str) -> Result<ReadingPosition, ApiError> {
    let invalid = || {
        ApiError::InvalidRequest(
            "the cursor is invalid; pass the next_cursor of the previous page unchanged".to_owned(),
        )
    };
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, ':');
    let (Some(time), Some(seq), Some(device_id)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    Ok(ReadingPosition {
        device_time_s: time.parse().map_err(|_| invalid())?,
        seq: seq.parse().map_err(|_| invalid())?,
        device_id: device_id.to_owned(),
    })
}
