//! Security events, logged through `tracing` under the target `medtunnel_api::audit`
//! with who, what, when and outcome. The request span adds where (method and route).
//!
//! Never logged here: passwords, hashes, tokens, TOTP secrets or codes, health values,
//! and the free-text reason of a break-glass session. That reason may describe the
//! patient's condition, so it is stored and shown to the patient instead. A failed sign-in for an
//! unknown user name logs no name, because people sometimes type a password there.

use crate::model::{Account, AccountId, Basis, BreakGlass, DataType, Grant};

/// Logs a successful sign-in.
pub(crate) fn sign_in_succeeded(account: &Account, at_s: i64) {
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "sign_in", outcome = "success",
        account_id = account.id.0, username = %account.username, role = %account.role, at_s,
    );
}

/// Logs a failed sign-in; `reason` is a fixed phrase such as "wrong password".
pub(crate) fn sign_in_failed(account: Option<&Account>, reason: &'static str, at_s: i64) {
    match account {
        Some(account) => tracing::info!(
            target: "medtunnel_api::audit",
            event = "sign_in", outcome = "failure", reason,
            account_id = account.id.0, username = %account.username, at_s,
        ),
        None => tracing::info!(
            target: "medtunnel_api::audit",
            event = "sign_in", outcome = "failure", reason, at_s,
        ),
    }
}

/// Logs that an account was locked after repeated failures.
pub(crate) fn account_locked(account: &Account, failed_sign_ins: u32, until_s: i64, at_s: i64) {
    tracing::warn!(
        target: "medtunnel_api::audit",
        event = "account_locked", outcome = "locked",
        account_id = account.id.0, username = %account.username, failed_sign_ins, until_s, at_s,
    );
}

/// Logs a sign-out.
pub(crate) fn signed_out(account: &Account, at_s: i64) {
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "sign_out", outcome = "success", account_id = account.id.0, at_s,
    );
}

/// Logs a request rejected by the authorization rules.
pub(crate) fn access_denied(account: &Account, patient: Option<AccountId>, at_s: i64) {
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "access", outcome = "denied",
        account_id = account.id.0, role = %account.role, patient_id = patient.map(|id| id.0), at_s,
    );
}

/// Logs a new grant.
pub(crate) fn grant_created(grant: &Grant, at_s: i64) {
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "grant_created", outcome = "success",
        grant_id = grant.id, patient_id = grant.patient_id.0, grantee_id = grant.grantee_id.0,
        data_types = ?grant.data_types, actions = ?grant.actions,
        valid_from_s = grant.valid_from_s, valid_until_s = grant.valid_until_s, at_s,
    );
}

/// Logs a revoked grant.
pub(crate) fn grant_revoked(grant: &Grant, at_s: i64) {
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "grant_revoked", outcome = "success",
        grant_id = grant.id, patient_id = grant.patient_id.0, grantee_id = grant.grantee_id.0, at_s,
    );
}

/// Logs an opened break-glass session.
pub(crate) fn break_glass_opened(session: &BreakGlass) {
    tracing::warn!(
        target: "medtunnel_api::audit",
        event = "break_glass_opened", outcome = "success",
        break_glass_id = session.id, clinician_id = session.clinician_id.0,
        patient_id = session.patient_id.0, at_s = session.opened_at_s,
        expires_at_s = session.expires_at_s,
    );
}

/// Logs a disclosure of health data to an account other than the patient.
pub(crate) fn disclosed(
    accessor: &Account,
    patient: AccountId,
    data_type: DataType,
    basis: Basis,
    item_count: u64,
    at_s: i64,
) {
    let (basis_kind, basis_id) = match basis {
        Basis::Grant(id) => ("grant", id),
        Basis::BreakGlass(id) => ("break_glass", id),
    };
    tracing::info!(
        target: "medtunnel_api::audit",
        event = "disclosure", outcome = "success",
        accessor_id = accessor.id.0, role = %accessor.role, patient_id = patient.0,
        data_type = data_type.as_str(), basis_kind, basis_id, item_count, at_s,
    );
}
