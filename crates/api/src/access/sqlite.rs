//! [`AccessStore`] on SQLite, in WAL mode with `synchronous=FULL` like the telemetry
//! store, so every committed change survives a crash.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{
    schema, AccessResult, AccessStore, AccessStoreError, Credentials, NewAccount, NewBreakGlass,
    NewDisclosure, NewGrant,
};
use crate::model::{
    Account, AccountId, Action, Basis, BreakGlass, DataType, Disclosure, Grant, Notification, Role,
};
use crate::token::TokenHash;
use crate::totp::TotpSecret;

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const ACCOUNT_COLUMNS: &str = "id, username, role, created_at_s, disabled_at_s";
const GRANT_COLUMNS: &str =
    "id, patient_id, grantee_id, valid_from_s, valid_until_s, created_at_s, revoked_at_s";
const BREAK_GLASS_COLUMNS: &str = "id, clinician_id, patient_id, reason, opened_at_s, expires_at_s";

/// Access tables in a SQLite file, through one connection.
pub struct SqliteAccessStore {
    connection: Mutex<Connection>,
}

impl SqliteAccessStore {
    /// Opens or creates the database at `path` and applies pending access migrations.
    pub fn open(path: impl AsRef<Path>, now_s: i64) -> AccessResult<Self> {
        let connection = Connection::open(path.as_ref())?;
        let mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AccessStoreError::CorruptValue {
                column: "PRAGMA journal_mode",
                value: format!("{mode:?} where WAL was set"),
            });
        }
        Self::configure(connection, now_s)
    }

    /// Opens a database that lives in memory only, for tests.
    pub fn open_in_memory(now_s: i64) -> AccessResult<Self> {
        Self::configure(Connection::open_in_memory()?, now_s)
    }

    fn configure(mut connection: Connection, now_s: i64) -> AccessResult<Self> {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        schema::migrate(&mut connection, now_s)?;
        Ok(SqliteAccessStore {
            connection: Mutex::new(connection),
        })
    }

    /// Returns the version of the access schema.
    pub fn schema_version(&self) -> AccessResult<u32> {
        schema::current_version(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held leaves at most an open transaction, which
        // rusqlite rolls back when it is dropped, so the connection is still usable.
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl From<rusqlite::Error> for AccessStoreError {
    fn from(error: rusqlite::Error) -> Self {
        AccessStoreError::Backend(Box::new(error))
    }
}

impl AccessStore for SqliteAccessStore {
    fn create_account(&self, new: &NewAccount) -> AccessResult<Account> {
        let connection = self.lock();
        let inserted = connection.execute(
            "INSERT INTO accounts (username, role, password_hash, totp_secret, created_at_s)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                new.username,
                new.role.as_str(),
                new.password_hash,
                new.totp_secret.as_ref().map(TotpSecret::expose_secret),
                new.created_at_s,
            ],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                return Err(AccessStoreError::UsernameTaken(new.username.clone()));
            }
            other => other?,
        };
        Ok(Account {
            id: AccountId(connection.last_insert_rowid()),
            username: new.username.clone(),
            role: new.role,
            created_at_s: new.created_at_s,
            disabled_at_s: None,
        })
    }

    fn account(&self, id: AccountId) -> AccessResult<Option<Account>> {
        let connection = self.lock();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1");
        query_optional(&connection, &sql, [id.0], account_from_row)
    }

    fn account_by_username(&self, username: &str) -> AccessResult<Option<Account>> {
        let connection = self.lock();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = ?1");
        query_optional(&connection, &sql, [username], account_from_row)
    }

    fn accounts(&self) -> AccessResult<Vec<Account>> {
        let connection = self.lock();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY id");
        query_all(&connection, &sql, [], account_from_row)
    }

    fn credentials(&self, username: &str) -> AccessResult<Option<Credentials>> {
        let connection = self.lock();
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash, totp_secret, totp_last_step,
                    failed_sign_ins, locked_until_s
             FROM accounts WHERE username = ?1"
        );
        query_optional(&connection, &sql, [username], |row| {
            let totp: Option<Vec<u8>> = row.get(6)?;
            Ok(Credentials {
                account: account_from_row(row)?,
                password_hash: row.get(5)?,
                totp_secret: totp.map(TotpSecret::from_bytes),
                totp_last_step: row.get(7)?,
                failed_sign_ins: row.get(8)?,
                locked_until_s: row.get(9)?,
            })
        })
    }

    fn disable_account(&self, id: AccountId, at_s: i64) -> AccessResult<()> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute(
            "UPDATE accounts SET disabled_at_s = ?2 WHERE id = ?1 AND disabled_at_s IS NULL",
            params![id.0, at_s],
        )?;
        transaction.execute(
            "UPDATE tokens SET revoked_at_s = ?2 WHERE account_id = ?1 AND revoked_at_s IS NULL",
            params![id.0, at_s],
        )?;
        transaction.commit()?;
        Ok(())
    }

    fn record_failed_sign_in(&self, id: AccountId) -> AccessResult<u32> {
        let connection = self.lock();
        let count = connection.query_row(
            "UPDATE accounts SET failed_sign_ins = failed_sign_ins + 1 WHERE id = ?1
             RETURNING failed_sign_ins",
            [id.0],
            |row| row.get(0),
        )?;
        Ok(count)
    }

    fn lock_account(&self, id: AccountId, until_s: i64) -> AccessResult<()> {
        self.lock().execute(
            "UPDATE accounts SET locked_until_s = ?2 WHERE id = ?1",
            params![id.0, until_s],
        )?;
        Ok(())
    }

    fn record_sign_in(&self, id: AccountId, totp_step: Option<i64>) -> AccessResult<()> {
        self.lock().execute(
            "UPDATE accounts SET failed_sign_ins = 0, locked_until_s = NULL,
                    totp_last_step = coalesce(?2, totp_last_step)
             WHERE id = ?1",
            params![id.0, totp_step],
        )?;
        Ok(())
    }

    fn insert_token(
        &self,
        hash: &TokenHash,
        account: AccountId,
        issued_at_s: i64,
        expires_at_s: i64,
    ) -> AccessResult<()> {
        self.lock().execute(
            "INSERT INTO tokens (token_hash, account_id, issued_at_s, expires_at_s)
             VALUES (?1, ?2, ?3, ?4)",
            params![hash.0.as_slice(), account.0, issued_at_s, expires_at_s],
        )?;
        Ok(())
    }

    fn token_account(&self, hash: &TokenHash, now_s: i64) -> AccessResult<Option<Account>> {
        let connection = self.lock();
        let sql = format!(
            "SELECT {} FROM tokens JOIN accounts ON accounts.id = tokens.account_id
             WHERE tokens.token_hash = ?1 AND tokens.revoked_at_s IS NULL
               AND ?2 < tokens.expires_at_s AND accounts.disabled_at_s IS NULL",
            qualified("accounts", ACCOUNT_COLUMNS)
        );
        query_optional(
            &connection,
            &sql,
            params![hash.0.as_slice(), now_s],
            account_from_row,
        )
    }

    fn revoke_token(&self, hash: &TokenHash, at_s: i64) -> AccessResult<bool> {
        let changed = self.lock().execute(
            "UPDATE tokens SET revoked_at_s = ?2 WHERE token_hash = ?1 AND revoked_at_s IS NULL",
            params![hash.0.as_slice(), at_s],
        )?;
        Ok(changed > 0)
    }

    fn link_device(&self, patient: AccountId, device_id: &str, at_s: i64) -> AccessResult<()> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let owner: Option<i64> = transaction
            .query_row(
                "SELECT patient_id FROM patient_devices WHERE device_id = ?1",
                [device_id],
                |row| row.get(0),
            )
            .optional()?;
        match owner {
            Some(owner) if owner == patient.0 => return Ok(()),
            Some(owner) => {
                return Err(AccessStoreError::DeviceAlreadyLinked {
                    device_id: device_id.to_owned(),
                    patient_id: AccountId(owner),
                })
            }
            None => {}
        }
        transaction.execute(
            "INSERT INTO patient_devices (device_id, patient_id, linked_at_s) VALUES (?1, ?2, ?3)",
            params![device_id, patient.0, at_s],
        )?;
        transaction.commit()?;
        Ok(())
    }

    fn patient_devices(&self, patient: AccountId) -> AccessResult<Vec<String>> {
        let connection = self.lock();
        query_all(
            &connection,
            "SELECT device_id FROM patient_devices WHERE patient_id = ?1 ORDER BY device_id",
            [patient.0],
            |row| Ok(row.get(0)?),
        )
    }

    fn create_grant(&self, new: &NewGrant) -> AccessResult<Grant> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute(
            "INSERT INTO grants (patient_id, grantee_id, valid_from_s, valid_until_s, created_at_s)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                new.patient_id.0,
                new.grantee_id.0,
                new.valid_from_s,
                new.valid_until_s,
                new.created_at_s
            ],
        )?;
        let id = transaction.last_insert_rowid();
        for data_type in &new.data_types {
            for action in &new.actions {
                transaction.execute(
                    "INSERT INTO grant_scopes (grant_id, data_type, action) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    params![id, data_type.as_str(), action.as_str()],
                )?;
            }
        }
        let grant = load_grant(&transaction, id)?;
        transaction.commit()?;
        grant.ok_or_else(|| AccessStoreError::CorruptValue {
            column: "grants.id",
            value: format!("{id}, inserted but not found"),
        })
    }

    fn grant(&self, id: i64) -> AccessResult<Option<Grant>> {
        load_grant(&self.lock(), id)
    }

    fn grants(&self, patient: AccountId) -> AccessResult<Vec<Grant>> {
        let connection = self.lock();
        let ids = query_all(
            &connection,
            "SELECT id FROM grants WHERE patient_id = ?1 ORDER BY id",
            [patient.0],
            |row| Ok(row.get::<_, i64>(0)?),
        )?;
        let mut grants = Vec::with_capacity(ids.len());
        for id in ids {
            grants.extend(load_grant(&connection, id)?);
        }
        Ok(grants)
    }

    fn revoke_grant(&self, id: i64, at_s: i64) -> AccessResult<bool> {
        let changed = self.lock().execute(
            "UPDATE grants SET revoked_at_s = ?2 WHERE id = ?1 AND revoked_at_s IS NULL",
            params![id, at_s],
        )?;
        Ok(changed > 0)
    }

    fn active_grant(
        &self,
        patient: AccountId,
        grantee: AccountId,
        data_type: DataType,
        action: Action,
        now_s: i64,
    ) -> AccessResult<Option<i64>> {
        let connection = self.lock();
        query_optional(
            &connection,
            "SELECT grants.id FROM grants
             JOIN grant_scopes ON grant_scopes.grant_id = grants.id
             WHERE grants.patient_id = ?1 AND grants.grantee_id = ?2
               AND grant_scopes.data_type = ?3 AND grant_scopes.action = ?4
               AND grants.revoked_at_s IS NULL
               AND grants.valid_from_s <= ?5
               AND (grants.valid_until_s IS NULL OR ?5 < grants.valid_until_s)
             ORDER BY grants.id LIMIT 1",
            params![
                patient.0,
                grantee.0,
                data_type.as_str(),
                action.as_str(),
                now_s
            ],
            |row| Ok(row.get(0)?),
        )
    }

    fn open_break_glass(&self, new: &NewBreakGlass, notice: &str) -> AccessResult<BreakGlass> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute(
            "INSERT INTO break_glass (clinician_id, patient_id, reason, opened_at_s, expires_at_s)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                new.clinician_id.0,
                new.patient_id.0,
                new.reason,
                new.opened_at_s,
                new.expires_at_s
            ],
        )?;
        let id = transaction.last_insert_rowid();
        transaction.execute(
            "INSERT INTO notifications (account_id, kind, text, created_at_s)
             VALUES (?1, 'break_glass', ?2, ?3)",
            params![new.patient_id.0, notice, new.opened_at_s],
        )?;
        transaction.commit()?;
        Ok(BreakGlass {
            id,
            clinician_id: new.clinician_id,
            patient_id: new.patient_id,
            reason: new.reason.clone(),
            opened_at_s: new.opened_at_s,
            expires_at_s: new.expires_at_s,
        })
    }

    fn active_break_glass(
        &self,
        clinician: AccountId,
        patient: AccountId,
        now_s: i64,
    ) -> AccessResult<Option<BreakGlass>> {
        let connection = self.lock();
        let sql = format!(
            "SELECT {BREAK_GLASS_COLUMNS} FROM break_glass
             WHERE clinician_id = ?1 AND patient_id = ?2
               AND opened_at_s <= ?3 AND ?3 < expires_at_s
             ORDER BY expires_at_s DESC LIMIT 1"
        );
        query_optional(
            &connection,
            &sql,
            params![clinician.0, patient.0, now_s],
            break_glass_from_row,
        )
    }

    fn break_glass_sessions(&self) -> AccessResult<Vec<BreakGlass>> {
        let connection = self.lock();
        let sql = format!("SELECT {BREAK_GLASS_COLUMNS} FROM break_glass ORDER BY id");
        query_all(&connection, &sql, [], break_glass_from_row)
    }

    fn record_disclosure(&self, new: &NewDisclosure) -> AccessResult<i64> {
        let (basis_kind, basis_id) = match new.basis {
            Basis::Grant(id) => ("grant", id),
            Basis::BreakGlass(id) => ("break_glass", id),
        };
        let connection = self.lock();
        connection.execute(
            "INSERT INTO disclosures (accessor_id, patient_id, data_type, disclosed_at_s,
                                      basis_kind, basis_id, item_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                new.accessor_id.0,
                new.patient_id.0,
                new.data_type.as_str(),
                new.disclosed_at_s,
                basis_kind,
                basis_id,
                i64::try_from(new.item_count).unwrap_or(i64::MAX),
            ],
        )?;
        Ok(connection.last_insert_rowid())
    }

    fn disclosures(&self, patient: Option<AccountId>) -> AccessResult<Vec<Disclosure>> {
        let connection = self.lock();
        query_all(
            &connection,
            "SELECT disclosures.id, accessor_id, accounts.username, accounts.role, patient_id,
                    data_type, disclosed_at_s, basis_kind, basis_id, item_count
             FROM disclosures JOIN accounts ON accounts.id = disclosures.accessor_id
             WHERE ?1 IS NULL OR patient_id = ?1
             ORDER BY disclosures.id",
            [patient.map(|id| id.0)],
            disclosure_from_row,
        )
    }

    fn notifications(&self, account: AccountId) -> AccessResult<Vec<Notification>> {
        let connection = self.lock();
        query_all(
            &connection,
            "SELECT id, kind, text, created_at_s, read FROM notifications
             WHERE account_id = ?1 ORDER BY id",
            [account.0],
            |row| {
                Ok(Notification {
                    id: row.get(0)?,
                    kind: row.get(1)?,
                    text: row.get(2)?,
                    created_at_s: row.get(3)?,
                    read: row.get(4)?,
                })
            },
        )
    }

    fn mark_notification_read(&self, account: AccountId, id: i64) -> AccessResult<bool> {
        let changed = self.lock().execute(
            "UPDATE notifications SET read = 1 WHERE id = ?1 AND account_id = ?2",
            params![id, account.0],
        )?;
        Ok(changed > 0)
    }
}

fn query_optional<T>(
    connection: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
    map: impl FnOnce(&Row<'_>) -> AccessResult<T>,
) -> AccessResult<Option<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(parameters)?;
    match rows.next()? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

fn query_all<T>(
    connection: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
    mut map: impl FnMut(&Row<'_>) -> AccessResult<T>,
) -> AccessResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query(parameters)?;
    let mut values = Vec::new();
    while let Some(row) = rows.next()? {
        values.push(map(row)?);
    }
    Ok(values)
}

/// Prefixes each column of a comma-separated list with `table.`.
fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|column| format!("{table}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn account_from_row(row: &Row<'_>) -> AccessResult<Account> {
    let role: String = row.get(2)?;
    Ok(Account {
        id: AccountId(row.get(0)?),
        username: row.get(1)?,
        role: Role::from_name(&role).ok_or_else(|| corrupt("accounts.role", &role))?,
        created_at_s: row.get(3)?,
        disabled_at_s: row.get(4)?,
    })
}

fn load_grant(connection: &Connection, id: i64) -> AccessResult<Option<Grant>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?1");
    let Some(mut grant) = query_optional(connection, &sql, [id], |row| {
        Ok(Grant {
            id: row.get(0)?,
            patient_id: AccountId(row.get(1)?),
            grantee_id: AccountId(row.get(2)?),
            data_types: Vec::new(),
            actions: Vec::new(),
            valid_from_s: row.get(3)?,
            valid_until_s: row.get(4)?,
            created_at_s: row.get(5)?,
            revoked_at_s: row.get(6)?,
        })
    })?
    else {
        return Ok(None);
    };
    let scopes = query_all(
        connection,
        "SELECT data_type, action FROM grant_scopes WHERE grant_id = ?1",
        [id],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
    )?;
    for (data_type, action) in scopes {
        let data_type = DataType::from_name(&data_type)
            .ok_or_else(|| corrupt("grant_scopes.data_type", &data_type))?;
        let action =
            Action::from_name(&action).ok_or_else(|| corrupt("grant_scopes.action", &action))?;
        if !grant.data_types.contains(&data_type) {
            grant.data_types.push(data_type);
        }
        if !grant.actions.contains(&action) {
            grant.actions.push(action);
        }
    }
    // Fixed order, so that listings are stable.
    grant
        .data_types
        .sort_by_key(|kind| DataType::ALL.iter().position(|k| k == kind));
    grant
        .actions
        .sort_by_key(|action| Action::ALL.iter().position(|a| a == action));
    Ok(Some(grant))
}

fn break_glass_from_row(row: &Row<'_>) -> AccessResult<BreakGlass> {
    Ok(BreakGlass {
        id: row.get(0)?,
        clinician_id: AccountId(row.get(1)?),
        patient_id: AccountId(row.get(2)?),
        reason: row.get(3)?,
        opened_at_s: row.get(4)?,
        expires_at_s: row.get(5)?,
    })
}

fn disclosure_from_row(row: &Row<'_>) -> AccessResult<Disclosure> {
    let role: String = row.get(3)?;
    let data_type: String = row.get(5)?;
    let basis_kind: String = row.get(7)?;
    let basis_id: i64 = row.get(8)?;
    let basis = match basis_kind.as_str() {
        "grant" => Basis::Grant(basis_id),
        "break_glass" => Basis::BreakGlass(basis_id),
        _ => return Err(corrupt("disclosures.basis_kind", &basis_kind)),
    };
    let item_count: i64 = row.get(9)?;
    Ok(Disclosure {
        id: row.get(0)?,
        accessor_id: AccountId(row.get(1)?),
        accessor_username: row.get(2)?,
        accessor_role: Role::from_name(&role).ok_or_else(|| corrupt("accounts.role", &role))?,
        patient_id: AccountId(row.get(4)?),
        data_type: DataType::from_name(&data_type)
            .ok_or_else(|| corrupt("disclosures.data_type", &data_type))?,
        disclosed_at_s: row.get(6)?,
        basis,
        item_count: item_count.unsigned_abs(),
    })
}

fn corrupt(column: &'static str, value: &str) -> AccessStoreError {
    AccessStoreError::CorruptValue {
        column,
        value: format!("{value:?}"),
    }
}
