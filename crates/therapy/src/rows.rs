//! Reading and writing rows of the therapy tables.

use medtunnel_command::CommandBody;
use medtunnel_policy::{Decision, PatientPolicy, Reason, Role};
use medtunnel_records::DeviceStatus;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::error::{TherapyError, TherapyResult};
use crate::model::{RequestState, RequestView};

/// Enrolled therapy device with its last status.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRow {
    pub(crate) device_id: String,
    pub(crate) patient_id: String,
    pub(crate) model: String,
    pub(crate) next_sequence: u64,
    pub(crate) status: Option<DeviceStatus>,
    pub(crate) status_at_ms: Option<i64>,
    pub(crate) challenge_used: bool,
    pub(crate) status_wanted: u8,
}

pub(crate) fn load_device(conn: &Connection, device_id: &str) -> TherapyResult<Option<DeviceRow>> {
    let row = conn
        .query_row(
            "SELECT device_id, patient_id, model, next_sequence, last_status, status_at_ms,
                    challenge_used, status_wanted
             FROM therapy_devices WHERE device_id = ?1",
            [device_id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                    row.get::<_, Option<i64>>(5)?,
                    row.get::<_, bool>(6)?,
                    row.get::<_, u8>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((device_id, patient_id, model, next, status, status_at_ms, used, wanted)) = row else {
        return Ok(None);
    };
    let status = status
        .map(|bytes| {
            DeviceStatus::decode(&bytes).map_err(|error| TherapyError::Corrupt {
                column: "therapy_devices.last_status",
                problem: error.to_string(),
            })
        })
        .transpose()?;
    Ok(Some(DeviceRow {
        device_id,
        patient_id,
        model,
        next_sequence: to_u64("therapy_devices.next_sequence", next)?,
        status,
        status_at_ms,
        challenge_used: used,
        status_wanted: wanted,
    }))
}

/// Raises the device's wish for a status report to at least `level` (1 status, 2 status
/// with a fresh challenge).
pub(crate) fn want_status(conn: &Connection, device_id: &str, level: u8) -> TherapyResult<()> {
    conn.execute(
        "UPDATE therapy_devices SET status_wanted = max(status_wanted, ?2) WHERE device_id = ?1",
        params![device_id, level],
    )?;
    Ok(())
}

/// A change request as stored.
#[derive(Debug, Clone)]
pub(crate) struct RequestRow {
    pub(crate) id: i64,
    pub(crate) device_id: String,
    pub(crate) patient_id: String,
    pub(crate) requester_id: String,
    pub(crate) requester_role: Role,
    pub(crate) body: CommandBody,
    pub(crate) summary: String,
    pub(crate) state: RequestState,
    pub(crate) reason: Option<String>,
    pub(crate) decision: Decision,
    pub(crate) reasons: Vec<Reason>,
    pub(crate) reviewed_by: Option<String>,
    pub(crate) cosigned_by: Option<String>,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
    pub(crate) approved_at_ms: Option<i64>,
}

impl RequestRow {
    pub(crate) fn view(&self) -> RequestView {
        RequestView {
            id: self.id,
            state: self.state,
            reason: self.reason.clone(),
            device_id: self.device_id.clone(),
            patient_id: self.patient_id.clone(),
            requester_id: self.requester_id.clone(),
            body_summary: self.summary.clone(),
            created_at: self.created_at_ms,
            updated_at: self.updated_at_ms,
            decision_reasons: self.reasons.clone(),
            reviewed_by: self.reviewed_by.clone(),
            cosigned_by: self.cosigned_by.clone(),
        }
    }
}

const REQUEST_COLUMNS: &str = "id, device_id, patient_id, requester_id, requester_role, body, \
     summary, state, reason, decision, reasons, reviewed_by, cosigned_by, created_at_ms, \
     updated_at_ms, approved_at_ms";

pub(crate) fn load_request(conn: &Connection, id: i64) -> TherapyResult<Option<RequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM change_requests WHERE id = ?1");
    let raw = conn.query_row(&sql, [id], RawRequest::read).optional()?;
    raw.map(RawRequest::parse).transpose()
}

pub(crate) fn list_requests(
    conn: &Connection,
    filter: &str,
    value: &dyn rusqlite::ToSql,
) -> TherapyResult<Vec<RequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM change_requests WHERE {filter} ORDER BY id");
    let mut statement = conn.prepare(&sql)?;
    let raws = statement
        .query_map([value], RawRequest::read)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawRequest::parse).collect()
}

struct RawRequest {
    id: i64,
    device_id: String,
    patient_id: String,
    requester_id: String,
    requester_role: String,
    body: Vec<u8>,
    summary: String,
    state: String,
    reason: Option<String>,
    decision: String,
    reasons: String,
    reviewed_by: Option<String>,
    cosigned_by: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    approved_at_ms: Option<i64>,
}

impl RawRequest {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            device_id: row.get(1)?,
            patient_id: row.get(2)?,
            requester_id: row.get(3)?,
            requester_role: row.get(4)?,
            body: row.get(5)?,
            summary: row.get(6)?,
            state: row.get(7)?,
            reason: row.get(8)?,
            decision: row.get(9)?,
            reasons: row.get(10)?,
            reviewed_by: row.get(11)?,
            cosigned_by: row.get(12)?,
            created_at_ms: row.get(13)?,
            updated_at_ms: row.get(14)?,
            approved_at_ms: row.get(15)?,
        })
    }

    fn parse(self) -> TherapyResult<RequestRow> {
        let corrupt =
            |column: &'static str, problem: String| TherapyError::Corrupt { column, problem };
        Ok(RequestRow {
            id: self.id,
            device_id: self.device_id,
            patient_id: self.patient_id,
            requester_id: self.requester_id,
            requester_role: role_from_name(&self.requester_role)
                .ok_or_else(|| corrupt("change_requests.requester_role", self.requester_role))?,
            body: CommandBody::decode(&self.body)
                .map_err(|e| corrupt("change_requests.body", e.to_string()))?,
            summary: self.summary,
            state: RequestState::from_name(&self.state)
                .ok_or_else(|| corrupt("change_requests.state", self.state))?,
            reason: self.reason,
            decision: serde_json::from_str(&self.decision)
                .map_err(|e| corrupt("change_requests.decision", e.to_string()))?,
            reasons: serde_json::from_str(&self.reasons)
                .map_err(|e| corrupt("change_requests.reasons", e.to_string()))?,
            reviewed_by: self.reviewed_by,
            cosigned_by: self.cosigned_by,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            approved_at_ms: self.approved_at_ms,
        })
    }
}

/// Moves a request to `state` with `reason`, and returns whether it changed. A request
/// already in a final state is left as it is.
pub(crate) fn set_state(
    conn: &Connection,
    id: i64,
    state: RequestState,
    reason: Option<&str>,
    now_ms: i64,
) -> TherapyResult<bool> {
    let changed = conn.execute(
        "UPDATE change_requests SET state = ?2, reason = coalesce(?3, reason), updated_at_ms = ?4,
             approved_at_ms = CASE WHEN ?2 = 'approved' THEN coalesce(approved_at_ms, ?4)
                                   ELSE approved_at_ms END
         WHERE id = ?1
           AND state NOT IN ('rejected', 'acknowledged', 'failed', 'expired')",
        params![id, state.as_str(), reason, now_ms],
    )?;
    Ok(changed > 0)
}

pub(crate) fn load_policy(
    conn: &Connection,
    patient_id: &str,
) -> TherapyResult<Option<PatientPolicy>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT policy FROM therapy_policies WHERE patient_id = ?1",
            [patient_id],
            |row| row.get(0),
        )
        .optional()?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|e| TherapyError::Corrupt {
            column: "therapy_policies.policy",
            problem: e.to_string(),
        })
    })
    .transpose()
}

pub(crate) fn store_policy(
    conn: &Connection,
    policy: &PatientPolicy,
    by: &str,
    now_ms: i64,
) -> TherapyResult<()> {
    let text =
        serde_json::to_string(policy).map_err(|e| TherapyError::InvalidPolicy(e.to_string()))?;
    conn.execute(
        "INSERT INTO therapy_policies (patient_id, policy, updated_at_ms, updated_by)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (patient_id) DO UPDATE SET policy = ?2, updated_at_ms = ?3, updated_by = ?4",
        params![policy.patient_id, text, now_ms, by],
    )?;
    Ok(())
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Patient => "patient",
        Role::Caregiver => "caregiver",
        Role::Clinician => "clinician",
        Role::Researcher => "researcher",
        Role::Operator => "operator",
        Role::Auditor => "auditor",
    }
}

pub(crate) fn role_from_name(name: &str) -> Option<Role> {
    [
        Role::Patient,
        Role::Caregiver,
        Role::Clinician,
        Role::Researcher,
        Role::Operator,
        Role::Auditor,
    ]
    .into_iter()
    .find(|role| role_name(*role) == name)
}

pub(crate) fn to_u64(column: &'static str, value: i64) -> TherapyResult<u64> {
    u64::try_from(value).map_err(|_| TherapyError::Corrupt {
        column,
        problem: value.to_string(),
    })
}

pub(crate) fn to_i64(value: u64) -> i64 {
    // Sequences and clocks stay far below i64::MAX; saturate instead of wrapping.
    i64::try_from(value).unwrap_or(i64::MAX)
}
