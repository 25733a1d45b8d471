//! Errors of the audit log, grouped by who is to blame.

use std::path::PathBuf;

/// Failure of an audit log operation.
///
/// `InvalidField`, `DetailTooLarge` and `NoCheckpointKey` are the caller's: the request
/// does not fit the log. `InvalidKeyFile`, `KeyFileExposed` and `Io` concern key files
/// that an operator must fix. `Sqlite`, `SchemaTooNew`, `NotAnAuditLog` and
/// `CorruptValue` are faults of the database file or its environment.
///
/// A broken chain is not an error: [`crate::verify`] returns it in its report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// SQLite returned an error.
    #[error("SQLite operation failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer version of this crate.
    #[error(
        "audit schema version {found} is newer than the supported version {supported}; \
         upgrade medtunnel"
    )]
    SchemaTooNew {
        /// Version recorded in the database.
        found: u32,
        /// Latest version this build supports.
        supported: u32,
    },
    /// The database has no audit tables.
    #[error("the database has no audit log (table {0} is missing)")]
    NotAnAuditLog(&'static str),
    /// A stored value cannot be read back as its type.
    #[error("stored value {value} in column {column} is invalid; the database is damaged")]
    CorruptValue {
        /// Table and column, as `table.column`.
        column: &'static str,
        /// The value, or a description of it.
        value: String,
    },
    /// A field of a new entry is invalid.
    #[error("audit field {field} = {value:?} {problem}")]
    InvalidField {
        /// Name of the field.
        field: &'static str,
        /// The value, cut to 64 characters.
        value: String,
        /// Description of the problem.
        problem: &'static str,
    },
    /// The detail of a new entry is too large.
    #[error(
        "audit detail is {len} bytes of JSON, above the maximum of {max}; \
         record identifiers, not payloads"
    )]
    DetailTooLarge {
        /// Length of the canonical JSON in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A checkpoint was requested from a log opened without a checkpoint key.
    #[error("no checkpoint key is configured; open the log with a checkpoint key to sign")]
    NoCheckpointKey,
    /// A key file could not be read or written.
    #[error("{action} {path} failed: {source}")]
    Io {
        /// Operation that failed, such as `reading`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file does not contain a valid key.
    #[error("key file {path} is invalid: {problem}")]
    InvalidKeyFile {
        /// The file.
        path: PathBuf,
        /// Description of the problem, never the key itself.
        problem: String,
    },
    /// A secret key file may be read by other users.
    #[error(
        "secret key file {path} has mode {mode:03o}, so other users may read it; \
         restrict it with chmod 600"
    )]
    KeyFileExposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}
