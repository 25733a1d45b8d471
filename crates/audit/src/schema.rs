//! Schema of the audit tables, applied by versioned migrations recorded in
//! `audit_schema_migrations`, apart from the migrations of other crates that share the
//! database file.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::AuditError;

/// Migrations in order; the version of `MIGRATIONS[i]` is `i + 1`. Never edit an entry
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // Version 1: log identity, entries, checkpoints, and triggers that reject changes.
    "
    CREATE TABLE audit_log_info (
        singleton     INTEGER PRIMARY KEY CHECK (singleton = 1),
        log_id        TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE audit_log (
        seq        INTEGER PRIMARY KEY CHECK (seq >= 1),
        at_ms      INTEGER NOT NULL,
        actor      TEXT NOT NULL,
        actor_role TEXT,
        action     TEXT NOT NULL,
        subject    TEXT,
        target     TEXT,
        source     TEXT,
        outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'denied', 'failure')),
        detail     TEXT NOT NULL,
        prev_hash  BLOB NOT NULL CHECK (length(prev_hash) = 32),
        hash       BLOB NOT NULL CHECK (length(hash) = 32)
    ) STRICT;

    CREATE TABLE audit_checkpoints (
        upto_seq     INTEGER PRIMARY KEY CHECK (upto_seq >= 0),
        hash_at_upto BLOB NOT NULL CHECK (length(hash_at_upto) = 32),
        at_ms        INTEGER NOT NULL,
        key_id       TEXT NOT NULL,
        signature    BLOB NOT NULL CHECK (length(signature) = 64)
    ) STRICT;

    -- Defense in depth only: anyone who can write the file can drop these triggers.
    -- The hash chain and the signed checkpoints detect what they then change.
    CREATE TRIGGER audit_log_reject_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is rejected'); END;

    CREATE TRIGGER audit_log_reject_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is rejected'); END;

    -- Rejects an insert that is not the next entry of the chain. This also stops
    -- INSERT OR REPLACE, whose implicit delete does not fire the DELETE trigger.
    CREATE TRIGGER audit_log_reject_out_of_chain BEFORE INSERT ON audit_log
    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
      OR (NEW.seq > 1 AND NEW.prev_hash IS NOT
          (SELECT hash FROM audit_log WHERE seq = NEW.seq - 1))
    BEGIN SELECT RAISE(ABORT, 'audit_log accepts only the next entry of the chain'); END;

    CREATE TRIGGER audit_checkpoints_reject_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE is rejected'); END;

    CREATE TRIGGER audit_checkpoints_reject_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE is rejected'); END;

    CREATE TRIGGER audit_checkpoints_reject_old BEFORE INSERT ON audit_checkpoints
    WHEN NEW.upto_seq <= (SELECT coalesce(max(upto_seq), -1) FROM audit_checkpoints)
      OR NEW.upto_seq > (SELECT coalesce(max(seq), 0) FROM audit_log)
    BEGIN
        SELECT RAISE(ABORT, 'audit_checkpoints accepts only a later checkpoint of a stored seq');
    END;

    CREATE TRIGGER audit_log_info_reject_update BEFORE UPDATE ON audit_log_info
    BEGIN SELECT RAISE(ABORT, 'audit_log_info is immutable: UPDATE is rejected'); END;

    CREATE TRIGGER audit_log_info_reject_delete BEFORE DELETE ON audit_log_info
    BEGIN SELECT RAISE(ABORT, 'audit_log_info is immutable: DELETE is rejected'); END;
    ",
];

/// Applies every migration not yet recorded and creates the log id on first use, in one
/// immediate transaction so that concurrent openers agree on both. Returns the log id.
pub(crate) fn migrate(
    connection: &mut Connection,
    new_log_id: impl FnOnce() -> String,
    now_ms: i64,
) -> Result<String, AuditError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute_batch(
        "CREATE TABLE IF NOT EXISTS audit_schema_migrations (
             version       INTEGER PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let supported = latest_version();
    let found = current_version(&transaction)?;
    if found > supported {
        return Err(AuditError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO audit_schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, now_ms],
        )?;
        tracing::info!(version, "applied audit schema migration");
    }
    let existing = read_log_id(&transaction)?;
    let log_id = match existing {
        Some(log_id) => log_id,
        None => {
            let log_id = new_log_id();
            transaction.execute(
                "INSERT INTO audit_log_info (singleton, log_id, created_at_ms) VALUES (1, ?1, ?2)",
                params![log_id, now_ms],
            )?;
            tracing::info!(log_id, "created audit log");
            log_id
        }
    };
    transaction.commit()?;
    Ok(log_id)
}

/// Returns the highest applied migration, 0 for a database without audit tables.
pub(crate) fn current_version(connection: &Connection) -> Result<u32, AuditError> {
    let version: Option<u32> = connection
        .query_row(
            "SELECT max(version) FROM audit_schema_migrations",
            [],
            |row| row.get(0),
        )
        .optional()?
        .flatten();
    Ok(version.unwrap_or(0))
}

/// Reads the log id, `None` before it is created.
pub(crate) fn read_log_id(connection: &Connection) -> Result<Option<String>, AuditError> {
    let log_id = connection
        .query_row(
            "SELECT log_id FROM audit_log_info WHERE singleton = 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(log_id)
}

/// Checks that the audit tables exist, without changing the database.
pub(crate) fn require_tables(connection: &Connection) -> Result<(), AuditError> {
    for table in ["audit_log_info", "audit_log", "audit_checkpoints"] {
        let found: Option<i64> = connection
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |row| row.get(0),
            )
            .optional()?;
        if found.is_none() {
            return Err(AuditError::NotAnAuditLog(table));
        }
    }
    Ok(())
}

fn latest_version() -> u32 {
    // A handful of migrations, far below u32::MAX.
    MIGRATIONS.len() as u32
}
