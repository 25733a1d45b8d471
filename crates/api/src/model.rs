//! Values of the access layer: roles, scopes, accounts, grants, break-glass sessions,
//! disclosures and notifications. Times are Unix seconds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Id of an account. A patient's id is also the `{id}` of the per-patient routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl fmt::Display for AccountId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// Role of an account. It decides which routes the account may call at all; grants and
/// break-glass sessions decide which patients' data a caregiver or clinician may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Owner of their own health data.
    Patient,
    /// Family member or carer; reads what a patient grants.
    Caregiver,
    /// Physician or nurse; reads what a patient grants and may open break-glass access.
    Clinician,
    /// Sees de-identified aggregates only, never an individual patient's records.
    Researcher,
    /// Runs the device fleet. Lists devices, never reads health data.
    Operator,
    /// Reviews disclosures and break-glass sessions; never reads health data.
    Auditor,
}

impl Role {
    /// Every role, in a fixed order.
    pub const ALL: [Role; 6] = [
        Role::Patient,
        Role::Caregiver,
        Role::Clinician,
        Role::Researcher,
        Role::Operator,
        Role::Auditor,
    ];

    /// Returns the name used in JSON, in the database and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Patient => "patient",
            Role::Caregiver => "caregiver",
            Role::Clinician => "clinician",
            Role::Researcher => "researcher",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name such as `clinician`.
    pub fn from_name(name: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Returns true if signing in requires a TOTP code as second factor.
    pub const fn requires_second_factor(self) -> bool {
        matches!(self, Role::Clinician | Role::Operator)
    }

    /// Returns true if a patient may grant this role access to their data.
    pub const fn may_receive_grants(self) -> bool {
        matches!(self, Role::Caregiver | Role::Clinician)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Kind of health data that a grant covers and a disclosure records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Glucose readings of continuous glucose monitors.
    Glucose,
    /// Insulin delivery records of insulin pumps.
    Insulin,
    /// Cardiac implant monitoring data.
    Cardiac,
    /// Status of a patient's devices: their ids, models, and whether they are active.
    DeviceStatus,
}

impl DataType {
    /// Every data type, in a fixed order.
    pub const ALL: [DataType; 4] = [
        DataType::Glucose,
        DataType::Insulin,
        DataType::Cardiac,
        DataType::DeviceStatus,
    ];

    /// Returns the name used in JSON and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            DataType::Glucose => "glucose",
            DataType::Insulin => "insulin",
            DataType::Cardiac => "cardiac",
            DataType::DeviceStatus => "device_status",
        }
    }

    /// Parses a data type name such as `glucose`.
    pub fn from_name(name: &str) -> Option<Self> {
        DataType::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Action that a grant allows its grantee on a data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read the data.
    Read,
    /// Ask for therapy settings changes, which still pass the safety policy.
    RequestChanges,
}

impl Action {
    /// Every action, in a fixed order.
    pub const ALL: [Action; 2] = [Action::Read, Action::RequestChanges];

    /// Returns the name used in JSON and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::RequestChanges => "request_changes",
        }
    }

    /// Parses an action name such as `read`.
    pub fn from_name(name: &str) -> Option<Self> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
    }
}

/// An account as the API shows it. It carries no credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Account id.
    pub id: AccountId,
    /// Unique user name.
    pub username: String,
    /// Role of the account.
    pub role: Role,
    /// Creation time.
    pub created_at_s: i64,
    /// Time the account was disabled, if it was. A disabled account cannot sign in and
    /// its tokens stop working.
    pub disabled_at_s: Option<i64>,
}

/// A patient's consent for one grantee, over a set of data types and actions, for a
/// period. It allows every listed action on every listed data type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grant {
    /// Grant id.
    pub id: i64,
    /// Patient who gave the consent.
    pub patient_id: AccountId,
    /// Account that received it.
    pub grantee_id: AccountId,
    /// Data types covered.
    pub data_types: Vec<DataType>,
    /// Actions allowed on them.
    pub actions: Vec<Action>,
    /// Start of the period, inclusive.
    pub valid_from_s: i64,
    /// End of the period, exclusive; `None` for "until revoked".
    pub valid_until_s: Option<i64>,
    /// Creation time.
    pub created_at_s: i64,
    /// Revocation time, if revoked.
    pub revoked_at_s: Option<i64>,
}

impl Grant {
    /// Returns true if the grant is in force at `now_s`.
    pub fn is_active_at(&self, now_s: i64) -> bool {
        self.revoked_at_s.is_none()
            && self.valid_from_s <= now_s
            && self.valid_until_s.is_none_or(|until| now_s < until)
    }
}

/// Emergency read access of a clinician to one patient, without the patient's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakGlass {
    /// Break-glass id.
    pub id: i64,
    /// Clinician who opened it.
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

/// Basis of a disclosure: the grant or break-glass session that allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Basis {
    /// A patient's grant, by id.
    Grant(i64),
    /// A break-glass session, by id.
    BreakGlass(i64),
}

/// One read of a patient's health data by another account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disclosure {
    /// Disclosure id.
    pub id: i64,
    /// Account that read the data.
    pub accessor_id: AccountId,
    /// User name of that account.
    pub accessor_username: String,
    /// Role of that account.
    pub accessor_role: Role,
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

/// A message to an account, such as the notice of a break-glass access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Notification id.
    pub id: i64,
    /// Kind, such as `break_glass`.
    pub kind: String,
    /// Text for the account holder.
    pub text: String,
    /// Creation time.
    pub created_at_s: i64,
    /// Whether the account holder marked it as read.
    pub read: bool,
}
