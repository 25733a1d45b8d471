//! The cloud database as the therapy code uses it: one SQLite connection that the audit
//! log owns, shared by the therapy tables, so both write to the same file.
//!
//! Entries go to the audit log and therapy rows change in separate transactions. Actions
//! with an effect outside the database (signing a command, sending it) are audited
//! before the effect. Bookkeeping of what already happened (a request stored, a state
//! changed) is audited right after its commit.
//! NOTE: a crash between such a commit and its audit entry loses the entry; one shared
//! transaction needs an audit API that appends inside a caller's transaction.

use std::num::NonZeroU64;
use std::path::Path;
use std::time::Duration;

use medtunnel_audit::{AuditSink, CheckpointKey, NewEntry, Outcome, SqliteAuditLog};
use rusqlite::Connection;

use crate::error::TherapyResult;
use crate::schema;

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Db {
    log: SqliteAuditLog,
}

impl Db {
    /// Opens the database at `path` in WAL mode with `synchronous=FULL`, applies the
    /// therapy and audit migrations, and signs audit checkpoints with `checkpoint_key`
    /// every `interval` entries when a key is given.
    pub(crate) fn open(
        path: &Path,
        checkpoint_key: Option<CheckpointKey>,
        interval: NonZeroU64,
        now_ms: i64,
    ) -> TherapyResult<Self> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let _mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&connection, now_ms)?;
        let mut log = SqliteAuditLog::from_connection(connection)?;
        if let Some(key) = checkpoint_key {
            log = log.with_checkpoints(key, interval);
        }
        Ok(Self { log })
    }

    pub(crate) fn conn(&self) -> &Connection {
        self.log.connection()
    }

    pub(crate) fn audit(&mut self, entry: NewEntry) -> TherapyResult<()> {
        self.log.append(entry)?;
        Ok(())
    }
}

/// Starts an audit entry about a device or patient.
pub(crate) fn entry(
    at_ms: i64,
    actor: impl Into<String>,
    action: &str,
    outcome: Outcome,
    subject: &str,
) -> NewEntry {
    NewEntry::new(at_ms, actor, action, outcome).subject(subject)
}
