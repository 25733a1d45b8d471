//! Errors of the therapy service, sorted by who is to blame: the caller (an unknown id,
//! an action the request's state or the person's role does not allow) or the cloud
//! itself (storage, key files, a damaged row).

use std::path::PathBuf;

/// Failure of a therapy operation. Messages carry ids and states, never key material or
/// therapy values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TherapyError {
    /// No change request has this id.
    #[error("change request {0} not found")]
    RequestNotFound(i64),
    /// The device is not enrolled for therapy commands.
    #[error("device {0} is not enrolled for therapy commands; enroll it with its patient first")]
    DeviceNotEnrolled(String),
    /// The device belongs to another patient than the request names.
    #[error("device {device_id} does not belong to patient {patient_id}")]
    DevicePatientMismatch {
        /// Device named in the request.
        device_id: String,
        /// Patient named in the request.
        patient_id: String,
    },
    /// The device is not registered, or its model takes no therapy commands.
    #[error("device {device_id} cannot be enrolled: {problem}")]
    NotEnrollable {
        /// Device id.
        device_id: String,
        /// What is wrong.
        problem: String,
    },
    /// The request is in a state where the action is not possible.
    #[error("change request {request_id} is {state}, so it cannot be {action}")]
    InvalidState {
        /// Request id.
        request_id: i64,
        /// Current state.
        state: &'static str,
        /// Action attempted, as a past participle ("reviewed", "co-signed").
        action: &'static str,
    },
    /// The person may not take this action; the reason names the rule.
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// A patient policy failed its own consistency check.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// A key file could not be created or read.
    #[error("key file {}: {problem}", path.display())]
    KeyFile {
        /// File path.
        path: PathBuf,
        /// What failed, without key bytes.
        problem: String,
    },
    /// A stored value does not parse: the database was damaged or written by other code.
    #[error("stored value in {column} is invalid: {problem}")]
    Corrupt {
        /// Table and column.
        column: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] rusqlite::Error),
    /// The audit log failed; the action was not carried out.
    #[error("audit log: {0}")]
    Audit(#[from] medtunnel_audit::AuditError),
}

/// Result of therapy operations.
pub type TherapyResult<T> = Result<T, TherapyError>;
