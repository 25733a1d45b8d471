//! Migrations of the access tables, recorded in `access_schema_migrations`, apart from
//! the migrations of the telemetry tables in the same file.

use rusqlite::{params, Connection};

use super::{AccessResult, AccessStoreError};

/// Migrations in order; the version of `MIGRATIONS[i]` is `i + 1`. Never edit an entry
/// that has shipped: add a new one.
const MIGRATIONS: &[&str] = &[
    // Version 1: accounts, tokens, device links, consent, break-glass, disclosures and
    // notifications.
    "
    -- NOTE: the TOTP secret is stored unencrypted, so a copy of this file lets its
    -- holder generate second-factor codes. A key-store interface is to wrap it.
    CREATE TABLE accounts (
        id              INTEGER PRIMARY KEY,
        username        TEXT NOT NULL UNIQUE,
        role            TEXT NOT NULL CHECK (role IN ('patient', 'caregiver', 'clinician',
                                                     'researcher', 'operator', 'auditor')),
        password_hash   TEXT NOT NULL,
        totp_secret     BLOB,
        totp_last_step  INTEGER,
        failed_sign_ins INTEGER NOT NULL DEFAULT 0 CHECK (failed_sign_ins >= 0),
        locked_until_s  INTEGER,
        created_at_s    INTEGER NOT NULL,
        disabled_at_s   INTEGER
    ) STRICT;

    CREATE TABLE tokens (
        token_hash   BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
        account_id   INTEGER NOT NULL REFERENCES accounts (id),
        issued_at_s  INTEGER NOT NULL,
        expires_at_s INTEGER NOT NULL,
        revoked_at_s INTEGER
    ) STRICT;
    CREATE INDEX tokens_by_account ON tokens (account_id);

    CREATE TABLE patient_devices (
        device_id   TEXT PRIMARY KEY,
        patient_id  INTEGER NOT NULL REFERENCES accounts (id),
        linked_at_s INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX patient_devices_by_patient ON patient_devices (patient_id);

    CREATE TABLE grants (
        id            INTEGER PRIMARY KEY,
        patient_id    INTEGER NOT NULL REFERENCES accounts (id),
        grantee_id    INTEGER NOT NULL REFERENCES accounts (id),
        valid_from_s  INTEGER NOT NULL,
        valid_until_s INTEGER,
        created_at_s  INTEGER NOT NULL,
        revoked_at_s  INTEGER
    ) STRICT;
    CREATE INDEX grants_by_patient ON grants (patient_id);
    CREATE INDEX grants_by_grantee ON grants (grantee_id, patient_id);

    -- One row per (data type, action) pair that a grant allows.
    CREATE TABLE grant_scopes (
        grant_id  INTEGER NOT NULL REFERENCES grants (id),
        data_type TEXT NOT NULL CHECK (data_type IN ('glucose', 'insulin', 'cardiac',
                                                     'device_status')),
        action    TEXT NOT NULL CHECK (action IN ('read', 'request_changes')),
        PRIMARY KEY (grant_id, data_type, action)
    ) STRICT;

    CREATE TABLE break_glass (
        id           INTEGER PRIMARY KEY,
        clinician_id INTEGER NOT NULL REFERENCES accounts (id),
        patient_id   INTEGER NOT NULL REFERENCES accounts (id),
        reason       TEXT NOT NULL,
        opened_at_s  INTEGER NOT NULL,
        expires_at_s INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX break_glass_by_pair ON break_glass (clinician_id, patient_id);

    CREATE TABLE disclosures (
        id             INTEGER PRIMARY KEY,
        accessor_id    INTEGER NOT NULL REFERENCES accounts (id),
        patient_id     INTEGER NOT NULL REFERENCES accounts (id),
        data_type      TEXT NOT NULL,
        disclosed_at_s INTEGER NOT NULL,
        basis_kind     TEXT NOT NULL CHECK (basis_kind IN ('grant', 'break_glass')),
        basis_id       INTEGER NOT NULL,
        item_count     INTEGER NOT NULL CHECK (item_count >= 0)
    ) STRICT;
    CREATE INDEX disclosures_by_patient ON disclosures (patient_id);

    CREATE TABLE notifications (
        id           INTEGER PRIMARY KEY,
        account_id   INTEGER NOT NULL REFERENCES accounts (id),
        kind         TEXT NOT NULL,
        text         TEXT NOT NULL,
        created_at_s INTEGER NOT NULL,
        read         INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1))
    ) STRICT;
    CREATE INDEX notifications_by_account ON notifications (account_id);
    ",
];

/// Creates the migrations table if needed and applies every migration not yet recorded,
/// each in its own transaction together with its version row.
pub(super) fn migrate(connection: &mut Connection, now_s: i64) -> AccessResult<()> {
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS access_schema_migrations (
             version      INTEGER PRIMARY KEY,
             applied_at_s INTEGER NOT NULL
         ) STRICT;",
    )?;
    let supported = MIGRATIONS.len() as u32;
    let found = current_version(connection)?;
    if found > supported {
        return Err(AccessStoreError::SchemaTooNew { found, supported });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.execute(
            "INSERT INTO access_schema_migrations (version, applied_at_s) VALUES (?1, ?2)",
            params![version, now_s],
        )?;
        transaction.commit()?;
        tracing::info!(version, "applied access schema migration");
    }
    Ok(())
}

/// Returns the highest applied migration version, 0 for none.
pub(super) fn current_version(connection: &Connection) -> AccessResult<u32> {
    let version: Option<u32> = connection.query_row(
        "SELECT max(version) FROM access_schema_migrations",
        [],
        |row| row.get(0),
    )?;
    Ok(version.unwrap_or(0))
}
