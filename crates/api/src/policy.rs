//! Authorization, default deny. Every decision reads the store, so a revoked grant or
//! an expired break-glass session applies to the very next request.
//!
//! - A patient reads and manages their own data only.
//! - A caregiver or clinician reads a patient's data type only under a grant in force.
//! - A clinician may also read under an open break-glass session.
//! - A therapy change request comes from the patient, or from a caregiver or clinician
//!   under a grant in force that allows `request_changes` on the device's data type.
//!   Only clinicians with such a grant review and co-sign. Break-glass allows no changes.
//! - Researchers, operators and auditors never read an individual's health data.
//!   Auditors read disclosure and break-glass listings; operators list devices.

use crate::access::NewDisclosure;
use crate::audit;
use crate::error::ApiError;
use crate::model::{Account, AccountId, Action, Basis, DataType, Role};
use crate::state::ApiState;

/// Basis on which a read of a patient's data is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadAccess {
    /// The caller is the patient.
    Owner,
    /// Another account, on this basis; the read is a disclosure.
    Disclosure(Basis),
}

/// Decides whether `caller` may read `data_type` of `patient`.
pub(crate) fn authorize_read(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    data_type: DataType,
) -> Result<ReadAccess, ApiError> {
    let now_s = state.now_s();
    match caller.role {
        Role::Patient if caller.id == patient => return Ok(ReadAccess::Owner),
        Role::Caregiver | Role::Clinician => {}
        _ => return Err(deny(caller, Some(patient), now_s, role_rule(caller.role))),
    }
    let access = state.access();
    if let Some(grant_id) =
        access.active_grant(patient, caller.id, data_type, Action::Read, now_s)?
    {
        return Ok(ReadAccess::Disclosure(Basis::Grant(grant_id)));
    }
    if caller.role == Role::Clinician {
        if let Some(session) = access.active_break_glass(caller.id, patient, now_s)? {
            return Ok(ReadAccess::Disclosure(Basis::BreakGlass(session.id)));
        }
    }
    Err(deny(
        caller,
        Some(patient),
        now_s,
        &format!(
            "no grant in force lets you read {} data of patient {patient}; the patient can grant access",
            data_type.as_str()
        ),
    ))
}

/// Decides whether `caller` may request a therapy change to `patient`'s `data_type`.
pub(crate) fn authorize_change_request(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    data_type: DataType,
) -> Result<(), ApiError> {
    let now_s = state.now_s();
    match caller.role {
        Role::Patient if caller.id == patient => return Ok(()),
        Role::Caregiver | Role::Clinician => {}
        Role::Patient => {
            let rule = "patients can request changes only to their own therapy";
            return Err(deny(caller, Some(patient), now_s, rule));
        }
        role => {
            let rule = format!("a {role} cannot request therapy changes");
            return Err(deny(caller, Some(patient), now_s, &rule));
        }
    }
    require_change_grant(state, caller, patient, data_type, "request changes to")
}

/// Decides whether `caller` may review or co-sign a therapy change to `patient`'s
/// `data_type`: a clinician under a grant that allows `request_changes` on it.
pub(crate) fn authorize_review(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    data_type: DataType,
) -> Result<(), ApiError> {
    if caller.role != Role::Clinician {
        let rule = format!(
            "only clinicians review and co-sign change requests; a {} cannot",
            caller.role
        );
        return Err(deny(caller, Some(patient), state.now_s(), &rule));
    }
    require_change_grant(state, caller, patient, data_type, "review changes to")
}

fn require_change_grant(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    data_type: DataType,
    verb: &str,
) -> Result<(), ApiError> {
    let now_s = state.now_s();
    let grant = state.access().active_grant(
        patient,
        caller.id,
        data_type,
        Action::RequestChanges,
        now_s,
    )?;
    if grant.is_some() {
        return Ok(());
    }
    let rule = format!(
        "no grant in force lets you {verb} {} therapy of patient {patient}; the patient can grant request_changes",
        data_type.as_str()
    );
    Err(deny(caller, Some(patient), now_s, &rule))
}

/// Records a read as a disclosure when the reader is not the patient. Called before the
/// data leaves, so that no disclosure goes unrecorded.
pub(crate) fn record_read(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
    data_type: DataType,
    access: ReadAccess,
    item_count: usize,
) -> Result<(), ApiError> {
    let ReadAccess::Disclosure(basis) = access else {
        return Ok(());
    };
    let now_s = state.now_s();
    let item_count = item_count as u64;
    state.access().record_disclosure(&NewDisclosure {
        accessor_id: caller.id,
        patient_id: patient,
        data_type,
        disclosed_at_s: now_s,
        basis,
        item_count,
    })?;
    audit::disclosed(caller, patient, data_type, basis, item_count, now_s);
    Ok(())
}

/// Allows only the patient themself.
pub(crate) fn require_owner(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
) -> Result<(), ApiError> {
    if caller.role == Role::Patient && caller.id == patient {
        return Ok(());
    }
    let rule = if caller.role == Role::Patient {
        "patients can manage only their own consent".to_owned()
    } else {
        format!(
            "only the patient can manage consent; a {} cannot",
            caller.role
        )
    };
    Err(deny(caller, Some(patient), state.now_s(), &rule))
}

/// Allows the patient themself and auditors, for listings about a patient's data.
pub(crate) fn require_owner_or_auditor(
    state: &ApiState,
    caller: &Account,
    patient: AccountId,
) -> Result<(), ApiError> {
    match caller.role {
        Role::Patient if caller.id == patient => Ok(()),
        Role::Auditor => Ok(()),
        Role::Patient => Err(deny(
            caller,
            Some(patient),
            state.now_s(),
            "patients can see only their own listings",
        )),
        _ => Err(deny(
            caller,
            Some(patient),
            state.now_s(),
            &format!(
                "only the patient and auditors can see this listing; a {} cannot",
                caller.role
            ),
        )),
    }
}

/// Allows only the given role.
pub(crate) fn require_role(state: &ApiState, caller: &Account, role: Role) -> Result<(), ApiError> {
    if caller.role == role {
        return Ok(());
    }
    Err(deny(
        caller,
        None,
        state.now_s(),
        &format!(
            "this route is for the {role} role; a {} cannot use it",
            caller.role
        ),
    ))
}

/// Checks that `patient` is the id of a patient account.
pub(crate) fn require_patient_account(
    state: &ApiState,
    patient: AccountId,
) -> Result<Account, ApiError> {
    match state.access().account(patient)? {
        Some(account) if account.role == Role::Patient => Ok(account),
        _ => Err(ApiError::NotFound(format!(
            "no patient account has id {patient}"
        ))),
    }
}

fn role_rule(role: Role) -> &'static str {
    match role {
        Role::Patient => "patients can read only their own data",
        Role::Researcher => "researchers have no access to individual patients' records",
        Role::Operator => {
            "operators have no access to health data; GET /v1/devices lists the fleet"
        }
        Role::Auditor => "auditors have no access to health data; they can list disclosures",
        Role::Caregiver | Role::Clinician => "access requires a grant from the patient",
    }
}

fn deny(caller: &Account, patient: Option<AccountId>, now_s: i64, rule: &str) -> ApiError {
    audit::access_denied(caller, patient, now_s);
    ApiError::Forbidden(rule.to_owned())
}
