//! Safety policy of medtunnel's cloud: decides whether a requested therapy change may be
//! signed and sent to a device.
//!
//! The cloud calls [`evaluate`] for every change request, records the [`Decision`] in the
//! audit log, and signs a command only for [`Decision::Approved`]. A request that needs a
//! clinician's review goes through [`evaluate_reviewed`], and a high-risk change through
//! [`cosign`] by a second clinician. The device checks its own hard limits again, with
//! the same functions from `medtunnel-command`, so a wrong policy cannot push a value past
//! them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bounds;
mod decision;
mod evaluate;
mod policy;

pub use decision::{cosign, CosignError, Decision, Reason, ReasonCode};
pub use evaluate::{evaluate, evaluate_reviewed, ReviewError};
pub use policy::{
    CgmBounds, ChangeRequest, CurrentSettings, PacemakerBounds, PatientPolicy, Person,
    PolicyContext, PumpBounds, PumpSettings, Range, RecentChange, Role,
};
