//! Account administration for the `medtunnel user` command: create, list, disable, and
//! link a device to its patient. These run on the database directly, not over HTTP.

use std::fmt;
use std::io::{self, BufRead};

use zeroize::Zeroizing;

use crate::access::{AccessStore, NewAccount};
use crate::config::PasswordCost;
use crate::model::{Account, Role};
use crate::password::{hash_password, PasswordError};
use crate::totp::TotpSecret;
use crate::ApiState;

/// A password given for a new account. Zeroed on drop; `Debug` prints none of it.
pub struct NewPassword(Zeroizing<String>);

impl NewPassword {
    /// Reads the first line of `reader`, without its line ending.
    pub fn read_line_from(mut reader: impl BufRead) -> io::Result<Self> {
        let mut line = Zeroizing::new(String::new());
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end_matches(['\r', '\n']);
        Ok(NewPassword(Zeroizing::new(trimmed.to_owned())))
    }

    /// Returns the password text, for hashing.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("NewPassword(..)")
    }
}

/// Maximum user name length, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;

/// Failure of an administrative action. Messages name the value and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The user name breaks the naming rule.
    #[error(
        "invalid user name {0:?}: use 3 to {MAX_USERNAME_LEN} characters from a-z, 0-9, \
         '.', '_' and '-', starting with a letter or digit"
    )]
    InvalidUsername(String),
    /// The password breaks a length rule.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// No account has this user name.
    #[error("no account has the user name {0:?}; `medtunnel user list` shows the accounts")]
    UnknownUser(String),
    /// The account is not a patient.
    #[error("account {username:?} is a {role}, not a patient; devices link only to patients")]
    NotAPatient {
        /// User name.
        username: String,
        /// Its role.
        role: Role,
    },
    /// The device is not registered.
    #[error("device {0:?} is not registered; provision it first")]
    UnknownDevice(String),
    /// A storage operation failed.
    #[error(transparent)]
    Store(#[from] crate::access::AccessStoreError),
    /// The telemetry store failed.
    #[error("reading the device registry failed: {0}")]
    Registry(String),
}

/// A newly created account.
pub struct CreatedAccount {
    /// The account.
    pub account: Account,
    /// Its TOTP secret, for roles that need a second factor. Show it once, as the
    /// provisioning URI, and never store it elsewhere.
    pub totp_secret: Option<TotpSecret>,
}

/// Checks a user name: 3 to 64 characters from a-z, 0-9, `.`, `_`, `-`, starting with a
/// letter or digit, so that it is safe in logs and in a TOTP provisioning URI.
pub fn check_username(username: &str) -> Result<(), AdminError> {
    let valid = (3..=MAX_USERNAME_LEN).contains(&username.len())
        && username
            .bytes()
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && username.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(AdminError::InvalidUsername(username.to_owned()))
    }
}

/// Creates an account with an argon2id password hash and, for clinicians and operators,
/// a fresh TOTP secret.
pub fn create_account(
    access: &dyn AccessStore,
    username: &str,
    role: Role,
    password: &str,
    cost: PasswordCost,
    now_s: i64,
) -> Result<CreatedAccount, AdminError> {
    check_username(username)?;
    let password_hash = hash_password(password, cost)?;
    let totp_secret = role.requires_second_factor().then(TotpSecret::generate);
    let account = access.create_account(&NewAccount {
        username: username.to_owned(),
        role,
        password_hash,
        totp_secret: totp_secret.clone(),
        created_at_s: now_s,
    })?;
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "account_created", outcome = "success",
        account_id = account.id.0, username = %account.username, role = %account.role, at_s = now_s,
    );
    Ok(CreatedAccount {
        account,
        totp_secret,
    })
}

/// Disables an account and revokes its tokens.
pub fn disable_account(
    access: &dyn AccessStore,
    username: &str,
    now_s: i64,
) -> Result<Account, AdminError> {
    let account = access
        .account_by_username(username)?
        .ok_or_else(|| AdminError::UnknownUser(username.to_owned()))?;
    access.disable_account(account.id, now_s)?;
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "account_disabled", outcome = "success",
        account_id = account.id.0, username = %account.username, at_s = now_s,
    );
    Ok(account)
}

/// Links a registered device to a patient account. Linking it to the same patient again
/// changes nothing; linking it to another patient fails.
pub fn link_device(
    state: &ApiState,
    patient_username: &str,
    device_id: &str,
) -> Result<Account, AdminError> {
    let access = state.access();
    let patient = access
        .account_by_username(patient_username)?
        .ok_or_else(|| AdminError::UnknownUser(patient_username.to_owned()))?;
    if patient.role != Role::Patient {
        return Err(AdminError::NotAPatient {
            username: patient.username,
            role: patient.role,
        });
    }
    let registered = state
        .health()
        .devices(&[device_id.to_owned()])
        .map_err(|error| AdminError::Registry(error.to_string()))?;
    if registered.is_empty() {
        return Err(AdminError::UnknownDevice(device_id.to_owned()));
    }
    let now_s = state.now_s();
    access.link_device(patient.id, device_id, now_s)?;
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "device_linked", outcome = "success",
        patient_id = patient.id.0, device_id, at_s = now_s,
    );
    Ok(patient)
}
