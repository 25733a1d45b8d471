//! Therapy commands in medtunnel's cloud, from a settings-change request to the device's
//! acknowledgement.
//!
//! [`TherapyService`] (run by the HTTP API) records change requests, evaluates them with
//! the patient's policy (`medtunnel-policy`), takes clinicians' reviews and
//! co-signatures, and signs approved commands with the command-signing key into an
//! outbox. [`CommandDelivery`] (run by the tunnel gateway, without the signing key)
//! sends queued commands to connected devices, records the devices' status reports,
//! telemetry and acknowledgements, and expires commands that were not delivered in
//! time. Every request, decision, review, co-signature, signing, delivery,
//! acknowledgement, failure and expiry is appended to the tamper-evident audit log
//! (`medtunnel-audit`) in the same database file.
//!
//! # A request's way
//!
//! ```text
//! submit ─► policy ─┬─ rejected
//!                   ├─ pending_review ─ review ─► policy again ─┐
//!                   ├─ needs_cosign ─── cosign ─► policy again ─┤
//!                   └─ approved ◄───────────────────────────────┘
//!                        │ sign_pending: device status in (and a fresh challenge
//!                        │ for high-risk changes), else the gateway asks for one
//!                        ▼
//!                   outbox (queued) ─ gateway sends ─► sent ─► acknowledged | failed
//!                        └─ not delivered before its expiry ─► expired
//! ```
//!
//! Times are Unix milliseconds of the cloud's clock, passed in by the caller. A command's
//! expiry on the device is on the device's session clock, estimated from its last
//! status report (see `medtunnel_command::envelope`).
//!
//! The audit log holds ids, states, command kinds and reason codes, never therapy values
//! or keys.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod db;
mod defaults;
mod delivery;
mod error;
mod keys;
mod model;
mod rows;
mod schema;
mod service;

pub use defaults::{example_pacemaker_bounds, example_pump_bounds};
pub use delivery::{CommandDelivery, Due, OutboxCommand};
pub use error::{TherapyError, TherapyResult};
pub use keys::{load_command_public_key, COMMAND_KEY_FILE, COMMAND_PUBLIC_KEY_FILE};
pub use medtunnel_policy::Role;
pub use model::{reject_reason_name, summarize, RequestState, RequestView, Requester};
pub use service::{TherapyConfig, TherapyService};

/// File name of the cloud database inside the cloud directory.
pub const DATABASE_FILE: &str = "cloud.db";
