//! Authentication: sign-in with password and, for some roles, a TOTP code; bearer
//! tokens; lockout after repeated failures.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use zeroize::Zeroizing;

use crate::access::Credentials;
use crate::audit;
use crate::error::ApiError;
use crate::model::Account;
use crate::password::{spend_verification_time, verify_password};
use crate::state::ApiState;
use crate::token::{BearerToken, TokenHash};

/// The signed-in account of a request. Extracting it checks the bearer token against
/// the store on every request, so a revoked or expired token fails at once.
pub(crate) struct Caller {
    /// The account.
    pub account: Account,
    /// Hash of the token the request presented.
    pub token_hash: TokenHash,
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::MissingToken)?;
        let text = header.to_str().map_err(|_| ApiError::InvalidToken)?;
        let (scheme, token) = text.split_once(' ').ok_or(ApiError::MissingToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::MissingToken);
        }
        let token_hash = TokenHash::of(token.trim());
        let account = state
            .blocking(move |state| Ok(state.access().token_account(&token_hash, state.now_s())?))
            .await?
            .ok_or(ApiError::InvalidToken)?;
        Ok(Caller {
            account,
            token_hash,
        })
    }
}

/// Credentials of a sign-in request. Not `Debug`, because it contains the password.
pub(crate) struct SignIn {
    pub username: String,
    pub password: Zeroizing<String>,
    pub totp: Option<Zeroizing<String>>,
}

/// A token issued by a successful sign-in.
pub(crate) struct Session {
    pub token: BearerToken,
    pub expires_at_s: i64,
    pub account: Account,
}

/// Checks a sign-in and issues a token. Blocking: it hashes the password.
///
/// Steps: find the account, reject a disabled or locked one, verify the password, then
/// the TOTP code if the role needs one, and finally store a fresh token's hash. Every
/// wrong password or code counts toward the lockout.
pub(crate) fn sign_in(state: &ApiState, request: &SignIn) -> Result<Session, ApiError> {
    let now_s = state.now_s();
    let cost = state.config().password_cost;

    // 1. An unknown or disabled account costs as much time as a wrong password.
    let Some(credentials) = state.access().credentials(&request.username)? else {
        spend_verification_time(cost);
        audit::sign_in_failed(None, "unknown user name", now_s);
        return Err(ApiError::InvalidCredentials);
    };
    let account = &credentials.account;
    if account.disabled_at_s.is_some() {
        spend_verification_time(cost);
        audit::sign_in_failed(Some(account), "account disabled", now_s);
        return Err(ApiError::InvalidCredentials);
    }

    // 2. A locked account is rejected without checking the password.
    if let Some(until_s) = credentials.locked_until_s.filter(|until| *until > now_s) {
        audit::sign_in_failed(Some(account), "account locked", now_s);
        return Err(ApiError::AccountLocked {
            retry_after_s: until_s - now_s,
        });
    }

    // 3. The password.
    let password_ok = verify_password(&request.password, &credentials.password_hash)
        .map_err(|error| ApiError::internal("verifying a stored password hash", error))?;
    if !password_ok {
        audit::sign_in_failed(Some(account), "wrong password", now_s);
        return Err(count_failure(state, account, ApiError::InvalidCredentials));
    }

    // 4. The second factor, for roles that need one.
    let totp_step = check_second_factor(state, &credentials, request.totp.as_deref())?;

    // 5. The token.
    state.access().record_sign_in(account.id, totp_step)?;
    let token = BearerToken::generate();
    let expires_at_s = now_s.saturating_add(state.config().token_lifetime_s);
    state
        .access()
        .insert_token(&token.hash(), account.id, now_s, expires_at_s)?;
    audit::sign_in_succeeded(account, now_s);
    Ok(Session {
        token,
        expires_at_s,
        account: account.clone(),
    })
}

/// Checks the TOTP code if the role needs one; returns the step of the accepted code.
fn check_second_factor(
    state: &ApiState,
    credentials: &Credentials,
    code: Option<&String>,
) -> Result<Option<i64>, ApiError> {
    let account = &credentials.account;
    if !account.role.requires_second_factor() {
        return Ok(None);
    }
    let Some(code) = code else {
        audit::sign_in_failed(Some(account), "second factor missing", state.now_s());
        return Err(ApiError::SecondFactorRequired);
    };
    let Some(secret) = &credentials.totp_secret else {
        // Accounts of these roles get a secret when they are created, so this account
        // was changed by hand. It cannot sign in until it has a secret again.
        tracing::error!(
            account_id = account.id.0,
            "account of a second-factor role has no TOTP secret"
        );
        return Err(ApiError::InvalidSecondFactor);
    };
    match secret.verify(code.trim(), state.now_s(), credentials.totp_last_step) {
        Some(step) => Ok(Some(step)),
        None => {
            audit::sign_in_failed(Some(account), "wrong second factor", state.now_s());
            Err(count_failure(state, account, ApiError::InvalidSecondFactor))
        }
    }
}

/// Counts a failed sign-in, locks the account when the count reaches the limit, and
/// returns the error for the response: `failure` itself, or the lock.
fn count_failure(state: &ApiState, account: &Account, failure: ApiError) -> ApiError {
    let now_s = state.now_s();
    let count = match state.access().record_failed_sign_in(account.id) {
        Ok(count) => count,
        Err(error) => return error.into(),
    };
    let Some(lock_s) = state.config().lockout_s(count) else {
        return failure;
    };
    let until_s = now_s.saturating_add(lock_s);
    if let Err(error) = state.access().lock_account(account.id, until_s) {
        return error.into();
    }
    audit::account_locked(account, count, until_s, now_s);
    ApiError::AccountLocked {
        retry_after_s: lock_s,
    }
}
