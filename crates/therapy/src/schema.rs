//! Schema of the therapy tables, applied by versioned migrations recorded in
//! `therapy_schema_migrations`, apart from the migrations of other crates that share the
//! cloud database file.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::TherapyResult;

/// Migrations in order; the version of `MIGRATIONS[i]` is `i + 1`. Never edit an entry
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // Version 1: policies, enrolled devices with their last status, change requests and
    // the outbox of signed commands.
    "
    CREATE TABLE therapy_policies (
        patient_id    TEXT PRIMARY KEY,
        policy        TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        updated_by    TEXT NOT NULL
    ) STRICT;

    -- last_status and last_telemetry hold the device's record bytes as received.
    -- status_wanted: 0 nothing, 1 a status report, 2 a status with a fresh challenge.
    CREATE TABLE therapy_devices (
        device_id          TEXT PRIMARY KEY,
        patient_id         TEXT NOT NULL,
        model              TEXT NOT NULL CHECK (model IN ('insulin_pump', 'pacemaker')),
        next_sequence      INTEGER NOT NULL DEFAULT 1 CHECK (next_sequence >= 1),
        last_status        BLOB,
        status_at_ms       INTEGER,
        challenge_used     INTEGER NOT NULL DEFAULT 0 CHECK (challenge_used IN (0, 1)),
        last_telemetry     BLOB,
        telemetry_at_ms    INTEGER,
        status_wanted      INTEGER NOT NULL DEFAULT 0 CHECK (status_wanted IN (0, 1, 2)),
        enrolled_at_ms     INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX therapy_devices_by_patient ON therapy_devices (patient_id);

    CREATE TABLE change_requests (
        id             INTEGER PRIMARY KEY,
        device_id      TEXT NOT NULL REFERENCES therapy_devices (device_id),
        patient_id     TEXT NOT NULL,
        requester_id   TEXT NOT NULL,
        requester_role TEXT NOT NULL,
        body           BLOB NOT NULL,
        summary        TEXT NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('pending_review', 'needs_cosign',
                           'rejected', 'approved', 'sent', 'acknowledged', 'failed', 'expired')),
        reason         TEXT,
        decision       TEXT NOT NULL,
        reasons        TEXT NOT NULL,
        reviewed_by    TEXT,
        cosigned_by    TEXT,
        created_at_ms  INTEGER NOT NULL,
        updated_at_ms  INTEGER NOT NULL,
        approved_at_ms INTEGER
    ) STRICT;
    CREATE INDEX change_requests_by_device ON change_requests (device_id, id);
    CREATE INDEX change_requests_by_state ON change_requests (state);

    -- expires_at_ms is the expiry on the cloud's wall clock; the signed command carries
    -- the expiry on the device's session clock.
    CREATE TABLE command_outbox (
        id             INTEGER PRIMARY KEY,
        request_id     INTEGER NOT NULL REFERENCES change_requests (id),
        device_id      TEXT NOT NULL,
        command_id     BLOB NOT NULL CHECK (length(command_id) = 16),
        sequence       INTEGER NOT NULL CHECK (sequence >= 1),
        epoch          INTEGER NOT NULL,
        challenge      BLOB CHECK (challenge IS NULL OR length(challenge) = 16),
        signed_command BLOB NOT NULL,
        expires_at_ms  INTEGER NOT NULL,
        state          TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'delivered', 'done',
                           'expired', 'superseded')),
        queued_at_ms   INTEGER NOT NULL,
        sent_at_ms     INTEGER,
        connection     TEXT,
        tunnel_seq     INTEGER
    ) STRICT;
    CREATE INDEX command_outbox_by_device ON command_outbox (device_id, state);
    CREATE INDEX command_outbox_by_command ON command_outbox (command_id);
    ",
];

/// Creates the migrations table if needed and applies every migration not yet recorded.
pub(crate) fn migrate(connection: &Connection, now_ms: i64) -> TherapyResult<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS therapy_schema_migrations (
             version       INTEGER PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let found: u32 = connection
        .query_row(
            "SELECT max(version) FROM therapy_schema_migrations",
            [],
            |row| row.get::<_, Option<u32>>(0),
        )
        .optional()?
        .flatten()
        .unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let transaction = connection.unchecked_transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO therapy_schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, now_ms],
        )?;
        transaction.commit()?;
        tracing::info!(version, "applied therapy schema migration");
    }
    Ok(())
}
