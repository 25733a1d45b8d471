//! Storage of accounts, tokens, device links, grants, break-glass sessions, disclosures
//! and notifications, behind the [`AccessStore`] trait.
//!
//! [`SqliteAccessStore`] keeps these tables in the cloud's SQLite file next to the
//! device registry and the readings, with its own migration history, so the schema of
//! the telemetry pipeline is untouched. The trait names no SQLite type, so a PostgreSQL
//! implementation can serve it too.

mod schema;
mod sqlite;

use std::error::Error;

pub use sqlite::SqliteAccessStore;

use crate::model::{
    Account, AccountId, Action, Basis, BreakGlass, DataType, Disclosure, Grant, Notification, Role,
};
use crate::token::TokenHash;
use crate::totp::TotpSecret;

/// Failure of an [`AccessStore`] call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessStoreError {
    /// Another account has this user name.
    #[error("the user name {0:?} is taken; choose another")]
    UsernameTaken(String),
    /// The device is linked to a patient already.
    #[error("device {device_id:?} is already linked to patient account {patient_id}")]
    DeviceAlreadyLinked {
        /// The device.
        device_id: String,
        /// Its patient.
        patient_id: AccountId,
    },
    /// A stored value is outside its allowed set, so the database was changed by hand
    /// or by a newer version.
    #[error("the database holds an invalid {column}: {value}")]
    CorruptValue {
        /// Table and column.
        column: &'static str,
        /// Description of the value; never a secret.
        value: String,
    },
    /// The schema is newer than this build supports.
    #[error(
        "the access schema has version {found} but this build supports up to {supported}; \
         upgrade medtunnel"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: u32,
        /// Newest version this build supports.
        supported: u32,
    },
    /// The database failed.
    #[error("database operation failed: {0}")]
    Backend(Box<dyn Error + Send + Sync>),
}

/// Result of an [`AccessStore`] call.
pub type AccessResult<T> = Result<T, AccessStoreError>;

/// An account to create. The password must already be hashed.
pub struct NewAccount {
    /// Unique user name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// argon2id hash in PHC string format.
    pub password_hash: String,
    /// TOTP secret, for roles that need a second factor.
    pub totp_secret: Option<TotpSecret>,
    /// Creation time.
    pub created_at_s: i64,
}

/// Stored credentials that a sign-in checks. Not `Debug`, because they contain the
/// password hash and the TOTP secret.
pub struct Credentials {
    /// The account.
    pub account: Account,
    /// argon2id hash in PHC string format.
    pub password_hash: String,
    /// TOTP secret, if the account has one.
    pub totp_secret: Option<TotpSecret>,
    /// Step of the last accepted TOTP code, so that no code is accepted twice.
    pub totp_last_step: Option<i64>,
    /// Failed sign-ins since the last successful one.
    pub failed_sign_ins: u32,
    /// End of the current lock, if any.
    pub locked_until_s: Option<i64>,
}

/// A grant to create.
#[derive(Debug, Clone)]
pub struct NewGrant {
    /// Patient who gives consent.
    pub patient_id: AccountId,
    /// Account that receives it.
    pub grantee_id: AccountId,
    /// Data types covered; not empty.
    pub data_types: Vec<DataType>,
    /// Actions allowed; not empty.
    pub actions: Vec<Action>,
    /// Start of the period, inclusive.
    pub valid_from_s: i64,
    /// End of the period, exclusive, or `None` for "until revoked".
    pub valid_until_s: Option<i64>,
    /// Creation time.
    pub created_at_s: i64,
}

/// A break-glass session to open.
#[derive(Debug, Clone)]
pub struct NewBreakGlass {
    /// Clinician who opens it.
    pub clinician_id: AccountId,
    /// Patient whose data it opens.
    pub patient_id: AccountId,
    /// Reason the clinician gave.
    pub reason: String,
    /// Opening time.
    pub opened_at_s: i64,
    /// End of the access, exclusive.
    pub expires_at_s: i64,
}

/// A disclosure to record.
#[derive(Debug, Clone)]
pub struct NewDisclosure {
    /// Account that read the data.
    pub accessor_id: AccountId,
    /// Patient whose data was read.
    pub patient_id: AccountId,
    /// Kind of data read.
    pub data_type: DataType,
    /// Time of the read.
    pub disclosed_at_s: i64,
    /// Basis of the read.
    pub basis: Basis,
    /// Number of items returned.
    pub item_count: u64,
}

/// Storage of the access layer.
///
/// Every method is blocking and each is atomic on its own. The API calls them on
/// tokio's blocking thread pool. Nothing is cached above this trait, so a change such as
/// a revoked grant or token applies to the very next call.
pub trait AccessStore: Send + Sync {
    /// Creates an account.
    fn create_account(&self, new: &NewAccount) -> AccessResult<Account>;
    /// Looks an account up by id.
    fn account(&self, id: AccountId) -> AccessResult<Option<Account>>;
    /// Looks an account up by user name.
    fn account_by_username(&self, username: &str) -> AccessResult<Option<Account>>;
    /// Lists all accounts by id.
    fn accounts(&self) -> AccessResult<Vec<Account>>;
    /// Returns what a sign-in with `username` must check.
    fn credentials(&self, username: &str) -> AccessResult<Option<Credentials>>;
    /// Disables an account and revokes all its tokens. Disabling it again changes
    /// nothing.
    fn disable_account(&self, id: AccountId, at_s: i64) -> AccessResult<()>;

    /// Adds one to the failed sign-in count and returns the new count.
    fn record_failed_sign_in(&self, id: AccountId) -> AccessResult<u32>;
    /// Locks an account until `until_s`.
    fn lock_account(&self, id: AccountId, until_s: i64) -> AccessResult<()>;
    /// Clears the failed sign-in count and lock, and stores the step of the TOTP code
    /// just accepted, if any.
    fn record_sign_in(&self, id: AccountId, totp_step: Option<i64>) -> AccessResult<()>;

    /// Stores a token hash.
    fn insert_token(
        &self,
        hash: &TokenHash,
        account: AccountId,
        issued_at_s: i64,
        expires_at_s: i64,
    ) -> AccessResult<()>;
    /// Returns the account of a token that is neither expired nor revoked at `now_s`,
    /// if that account is not disabled.
    fn token_account(&self, hash: &TokenHash, now_s: i64) -> AccessResult<Option<Account>>;
    /// Revokes a token. Returns false if it was unknown or revoked already.
    fn revoke_token(&self, hash: &TokenHash, at_s: i64) -> AccessResult<bool>;

    /// Links a device to the patient who wears it. A device has at most one patient.
    fn link_device(&self, patient: AccountId, device_id: &str, at_s: i64) -> AccessResult<()>;
    /// Lists the ids of a patient's devices, in order.
    fn patient_devices(&self, patient: AccountId) -> AccessResult<Vec<String>>;

    /// Creates a grant.
    fn create_grant(&self, new: &NewGrant) -> AccessResult<Grant>;
    /// Looks a grant up by id.
    fn grant(&self, id: i64) -> AccessResult<Option<Grant>>;
    /// Lists a patient's grants, revoked and expired ones included, by id.
    fn grants(&self, patient: AccountId) -> AccessResult<Vec<Grant>>;
    /// Revokes a grant at `at_s`. Returns false if it was revoked already.
    fn revoke_grant(&self, id: i64, at_s: i64) -> AccessResult<bool>;
    /// Returns the id of a grant in force at `now_s` that lets `grantee` do `action` on
    /// `patient`'s `data_type`.
    fn active_grant(
        &self,
        patient: AccountId,
        grantee: AccountId,
        data_type: DataType,
        action: Action,
        now_s: i64,
    ) -> AccessResult<Option<i64>>;

    /// Opens a break-glass session and, in the same transaction, stores `notice` as a
    /// `break_glass` notification to the patient.
    fn open_break_glass(&self, new: &NewBreakGlass, notice: &str) -> AccessResult<BreakGlass>;
    /// Returns a break-glass session of `clinician` on `patient` open at `now_s`.
    fn active_break_glass(
        &self,
        clinician: AccountId,
        patient: AccountId,
        now_s: i64,
    ) -> AccessResult<Option<BreakGlass>>;
    /// Lists all break-glass sessions by id.
    fn break_glass_sessions(&self) -> AccessResult<Vec<BreakGlass>>;

    /// Records a disclosure and returns its id.
    fn record_disclosure(&self, new: &NewDisclosure) -> AccessResult<i64>;
    /// Lists disclosures by id, of one patient or of all.
    fn disclosures(&self, patient: Option<AccountId>) -> AccessResult<Vec<Disclosure>>;

    /// Lists an account's notifications by id.
    fn notifications(&self, account: AccountId) -> AccessResult<Vec<Notification>>;
    /// Marks a notification of `account` as read. Returns false if it has no such
    /// notification.
    fn mark_notification_read(&self, account: AccountId, id: i64) -> AccessResult<bool>;
}
