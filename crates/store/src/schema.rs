//! Schema migrations, applied in order, each in its own transaction together with its
//! row in `schema_migrations`.

use rusqlite::{params, Connection, OptionalExtension};

use crate::{now_ms, StoreError};

/// Migrations in order; the version of `MIGRATIONS[i]` is `i + 1`. Never edit an entry
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // Version 1: cloud keys, device registry, channel state, readings.
    "
    CREATE TABLE cloud_keys (
        cloud_key_id  INTEGER PRIMARY KEY CHECK (cloud_key_id BETWEEN 0 AND 4294967295),
        public_key    BLOB NOT NULL CHECK (length(public_key) = 32),
        created_at_ms INTEGER NOT NULL
    ) STRICT;

    -- NOTE: the pre-shared key is stored unencrypted, so a copy of this file gives
    -- every device's PSK. Key storage behind an HSM interface is to replace this column.
    CREATE TABLE devices (
        device_id     TEXT PRIMARY KEY,
        model         TEXT NOT NULL CHECK (model IN ('cgm', 'insulin_pump', 'pacemaker')),
        key_id        INTEGER NOT NULL UNIQUE CHECK (key_id BETWEEN 0 AND 4294967295),
        static_public BLOB NOT NULL CHECK (length(static_public) = 32),
        psk           BLOB NOT NULL CHECK (length(psk) = 32),
        cloud_key_id  INTEGER NOT NULL REFERENCES cloud_keys (cloud_key_id),
        status        TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    ) STRICT;

    CREATE TABLE channel_state (
        device_id               TEXT PRIMARY KEY REFERENCES devices (device_id),
        last_initiation_counter INTEGER
            CHECK (last_initiation_counter BETWEEN 0 AND 4294967295),
        rx_acked_seq            INTEGER CHECK (rx_acked_seq >= 0),
        tx_next_seq             INTEGER NOT NULL DEFAULT 0 CHECK (tx_next_seq >= 0)
    ) STRICT;

    CREATE TABLE readings (
        device_id       TEXT NOT NULL REFERENCES devices (device_id),
        seq             INTEGER NOT NULL CHECK (seq >= 0),
        session_start_s INTEGER NOT NULL,
        time_offset_s   INTEGER NOT NULL,
        device_time_s   INTEGER NOT NULL,
        glucose_mg_dl   INTEGER NOT NULL,
        trend           REAL,
        quality         INTEGER,
        status          INTEGER NOT NULL,
        key_id          INTEGER NOT NULL,
        received_at_ms  INTEGER NOT NULL,
        relay           TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE INDEX readings_by_device_time ON readings (device_id, device_time_s, seq);
    ",
];

/// Creates the migrations table if needed and applies every migration not yet recorded.
pub(crate) fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let supported = latest_version();
    let found = current_version(connection)?;
    if found > supported {
        return Err(StoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
        transaction.commit()?;
        tracing::info!(version, "applied schema migration");
    }
    Ok(())
}

/// Returns the highest applied migration, 0 for a new database.
pub(crate) fn current_version(connection: &Connection) -> Result<u32, StoreError> {
    let version: Option<u32> = connection
        .query_row("SELECT max(version) FROM schema_migrations", [], |row| {
            row.get(0)
        })
        .optional()?
        .flatten();
    Ok(version.unwrap_or(0))
}

fn latest_version() -> u32 {
    // A handful of migrations, far below u32::MAX.
    MIGRATIONS.len() as u32
}
