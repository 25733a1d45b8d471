//! The SQLite audit log: appends, checkpoints and reads.

use std::num::NonZeroU64;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::RngCore;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use crate::checkpoint::Checkpoint;
use crate::entry::{entry_hash, genesis_hash, AuditEntry, EntryFields, Hash, NewEntry};
use crate::key::CheckpointKey;
use crate::{schema, AuditError};

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Destination of audit entries. Implementations assign `seq` densely from 1, chain
/// each entry to the previous one, and offer no way to change or remove an entry.
pub trait AuditSink {
    /// Appends `entry` as the next entry of the log and returns it as stored.
    ///
    /// Once this returns `Ok`, the entry is durable. Concurrent appends, also from other
    /// processes, are serialized.
    fn append(&mut self, entry: NewEntry) -> Result<AuditEntry, AuditError>;
}

/// An audit log in the tables `audit_log` and `audit_checkpoints` of a SQLite database.
///
/// The database may be shared with other crates' tables. Appends run in one immediate
/// transaction each, which reads the head and inserts the next entry, so concurrent
/// writers through other connections are serialized by SQLite's write lock.
pub struct SqliteAuditLog {
    connection: Connection,
    log_id: String,
    signer: Option<Signer>,
}

struct Signer {
    key: CheckpointKey,
    interval: NonZeroU64,
}

impl SqliteAuditLog {
    /// Opens or creates the audit tables in the database at `path`, in WAL mode with
    /// `synchronous=FULL`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AuditError> {
        let connection = Connection::open(path.as_ref())?;
        let _mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        Self::from_connection(connection)
    }

    /// Creates the audit tables in `connection` if needed and uses it for the log.
    ///
    /// The connection's journal and sync settings are kept as they are.
    pub fn from_connection(mut connection: Connection) -> Result<Self, AuditError> {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let log_id = schema::migrate(&mut connection, random_log_id, now_ms())?;
        Ok(SqliteAuditLog {
            connection,
            log_id,
            signer: None,
        })
    }

    /// Signs a checkpoint with `key` after every `interval` entries (when `seq` is a
    /// multiple of `interval`), in the same transaction as that entry.
    pub fn with_checkpoints(mut self, key: CheckpointKey, interval: NonZeroU64) -> Self {
        self.signer = Some(Signer { key, interval });
        self
    }

    /// Returns the random id of this log, which the genesis hash and every checkpoint cover.
    pub fn log_id(&self) -> &str {
        &self.log_id
    }

    /// Returns the database connection, for reads and for [`crate::verify`].
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Returns the last entry's sequence number and hash, or `(0, genesis hash)` for an
    /// empty log.
    pub fn head(&self) -> Result<(u64, Hash), AuditError> {
        read_head(&self.connection, &self.log_id)
    }

    /// Signs and stores a checkpoint of the current head at time `at_ms`.
    ///
    /// Returns the existing checkpoint instead when the head has not moved since the
    /// latest one.
    pub fn checkpoint(&mut self, at_ms: i64) -> Result<Checkpoint, AuditError> {
        let signer = self.signer.as_ref().ok_or(AuditError::NoCheckpointKey)?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (upto_seq, hash) = read_head(&transaction, &self.log_id)?;
        let latest = read_checkpoints(&transaction)?.pop();
        if let Some(latest) = latest.filter(|latest| latest.upto_seq == upto_seq) {
            return Ok(latest);
        }
        let checkpoint = Checkpoint::sign(&signer.key, &self.log_id, upto_seq, hash, at_ms);
        insert_checkpoint(&transaction, &checkpoint)?;
        transaction.commit()?;
        tracing::info!(
            upto_seq,
            key_id = checkpoint.key_id,
            "signed audit checkpoint"
        );
        Ok(checkpoint)
    }

    /// Reads the entries with `from_seq <= seq <= to_seq`, in order.
    pub fn entries(&self, from_seq: u64, to_seq: u64) -> Result<Vec<AuditEntry>, AuditError> {
        read_entries(&self.connection, from_seq, to_seq)
    }

    /// Reads every checkpoint, ordered by `upto_seq`.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        read_checkpoints(&self.connection)
    }
}

impl AuditSink for SqliteAuditLog {
    fn append(&mut self, entry: NewEntry) -> Result<AuditEntry, AuditError> {
        let detail_json = entry.validate()?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;

        // 1. Read the head inside the write transaction, so no other append interleaves.
        let (last_seq, prev_hash) = read_head(&transaction, &self.log_id)?;
        let seq = last_seq + 1;

        // 2. Hash the entry exactly as it will be stored.
        let hash = entry_hash(&EntryFields {
            seq,
            at_ms: entry.at_ms,
            actor: &entry.actor,
            actor_role: entry.actor_role.as_deref(),
            action: &entry.action,
            subject: entry.subject.as_deref(),
            target: entry.target.as_deref(),
            source: entry.source.as_deref(),
            outcome: entry.outcome.as_str(),
            detail_json: &detail_json,
            prev_hash: &prev_hash,
        });
        transaction.execute(
            "INSERT INTO audit_log (seq, at_ms, actor, actor_role, action, subject, target,
                 source, outcome, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                to_sql_seq(seq)?,
                entry.at_ms,
                entry.actor,
                entry.actor_role,
                entry.action,
                entry.subject,
                entry.target,
                entry.source,
                entry.outcome.as_str(),
                detail_json,
                prev_hash.as_slice(),
                hash.as_slice(),
            ],
        )?;

        // 3. Sign a checkpoint in the same transaction when one is due.
        if let Some(signer) = &self.signer {
            if seq % signer.interval.get() == 0 {
                let checkpoint =
                    Checkpoint::sign(&signer.key, &self.log_id, seq, hash, entry.at_ms);
                insert_checkpoint(&transaction, &checkpoint)?;
            }
        }
        transaction.commit()?;
        tracing::debug!(
            seq,
            action = entry.action,
            outcome = %entry.outcome,
            "appended audit entry"
        );

        Ok(AuditEntry {
            seq,
            at_ms: entry.at_ms,
            actor: entry.actor,
            actor_role: entry.actor_role,
            action: entry.action,
            subject: entry.subject,
            target: entry.target,
            source: entry.source,
            outcome: entry.outcome,
            detail: entry.detail,
            prev_hash,
            hash,
        })
    }
}

/// Opens the database at `path` without write access, for [`crate::verify`] and the
/// read functions, after checking that it has the audit tables.
pub fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    schema::require_tables(&connection)?;
    Ok(connection)
}

/// Reads the entries of the audit log in `connection` with `from_seq <= seq <= to_seq`,
/// in order. Does not verify them.
pub fn read_entries(
    connection: &Connection,
    from_seq: u64,
    to_seq: u64,
) -> Result<Vec<AuditEntry>, AuditError> {
    let mut entries = Vec::new();
    for_each_entry(connection, from_seq, to_seq, |entry| {
        entries.push(entry);
        Ok::<(), AuditError>(())
    })?;
    Ok(entries)
}

/// Calls `visit` for each entry with `from_seq <= seq <= to_seq`, in order, without
/// holding more than one entry in memory. Does not verify them.
pub fn for_each_entry<E>(
    connection: &Connection,
    from_seq: u64,
    to_seq: u64,
    mut visit: impl FnMut(AuditEntry) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<AuditError>,
{
    schema::require_tables(connection)?;
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let to = i64::try_from(to_seq).unwrap_or(i64::MAX);
    let mut statement = connection
        .prepare(
            "SELECT seq, at_ms, actor, actor_role, action, subject, target, source, outcome,
                    detail, prev_hash, hash
             FROM audit_log WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
        )
        .map_err(AuditError::from)?;
    let mut rows = statement
        .query(params![from, to])
        .map_err(AuditError::from)?;
    while let Some(row) = rows.next().map_err(AuditError::from)? {
        visit(entry_from_row(row)?)?;
    }
    Ok(())
}

/// Reads every checkpoint of the audit log in `connection`, ordered by `upto_seq`. Does
/// not verify them.
pub fn read_checkpoints(connection: &Connection) -> Result<Vec<Checkpoint>, AuditError> {
    let mut statement = connection.prepare(
        "SELECT upto_seq, hash_at_upto, at_ms, key_id, signature
         FROM audit_checkpoints ORDER BY upto_seq",
    )?;
    let mut rows = statement.query([])?;
    let mut checkpoints = Vec::new();
    while let Some(row) = rows.next()? {
        checkpoints.push(Checkpoint {
            upto_seq: from_sql_seq("audit_checkpoints.upto_seq", row.get(0)?)?,
            hash_at_upto: fixed_bytes("audit_checkpoints.hash_at_upto", row.get(1)?)?,
            at_ms: row.get(2)?,
            key_id: row.get(3)?,
            signature: fixed_bytes("audit_checkpoints.signature", row.get(4)?)?,
        });
    }
    Ok(checkpoints)
}

fn read_head(connection: &Connection, log_id: &str) -> Result<(u64, Hash), AuditError> {
    let last: Option<(i64, Vec<u8>)> = connection
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match last {
        None => Ok((0, genesis_hash(log_id))),
        Some((seq, hash)) => Ok((
            from_sql_seq("audit_log.seq", seq)?,
            fixed_bytes("audit_log.hash", hash)?,
        )),
    }
}

fn insert_checkpoint(connection: &Connection, checkpoint: &Checkpoint) -> Result<(), AuditError> {
    connection.execute(
        "INSERT INTO audit_checkpoints (upto_seq, hash_at_upto, at_ms, key_id, signature)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            to_sql_seq(checkpoint.upto_seq)?,
            checkpoint.hash_at_upto.as_slice(),
            checkpoint.at_ms,
            checkpoint.key_id,
            checkpoint.signature.as_slice(),
        ],
    )?;
    Ok(())
}

fn entry_from_row(row: &Row<'_>) -> Result<AuditEntry, AuditError> {
    let outcome: String = row.get(8)?;
    let detail: String = row.get(9)?;
    Ok(AuditEntry {
        seq: from_sql_seq("audit_log.seq", row.get(0)?)?,
        at_ms: row.get(1)?,
        actor: row.get(2)?,
        actor_role: row.get(3)?,
        action: row.get(4)?,
        subject: row.get(5)?,
        target: row.get(6)?,
        source: row.get(7)?,
        outcome: outcome.parse().map_err(|_| AuditError::CorruptValue {
            column: "audit_log.outcome",
            value: format!("{outcome:?}"),
        })?,
        detail: serde_json::from_str(&detail).map_err(|_| AuditError::CorruptValue {
            column: "audit_log.detail",
            value: "text that is not JSON".to_owned(),
        })?,
        prev_hash: fixed_bytes("audit_log.prev_hash", row.get(10)?)?,
        hash: fixed_bytes("audit_log.hash", row.get(11)?)?,
    })
}

fn fixed_bytes<const N: usize>(
    column: &'static str,
    bytes: Vec<u8>,
) -> Result<[u8; N], AuditError> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| AuditError::CorruptValue {
        column,
        value: format!("a blob of {len} bytes instead of {N}"),
    })
}

fn from_sql_seq(column: &'static str, seq: i64) -> Result<u64, AuditError> {
    u64::try_from(seq).map_err(|_| AuditError::CorruptValue {
        column,
        value: seq.to_string(),
    })
}

fn to_sql_seq(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::CorruptValue {
        column: "audit_log.seq",
        value: seq.to_string(),
    })
}

/// Creates a log id: 16 random bytes from the operating system, as 32 hex digits.
fn random_log_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Returns the wall-clock time in Unix milliseconds, or 0 if the clock is before 1970.
/// Used only for the migration record and the log's creation time.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
