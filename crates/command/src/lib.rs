//! Therapy commands of medtunnel: signed envelopes, device models with their own hard
//! limits, and the device-side executor.
//!
//! The cloud signs each [`CommandEnvelope`] with a command-signing key (Ed25519) that is
//! kept apart from the tunnel keys. The envelope travels as an application payload
//! inside the authenticated tunnel. The device checks the signature, its id, a boot
//! epoch, a strictly increasing sequence, an expiry on its session clock, a single-use
//! challenge for high-risk commands and its own limits, then executes the command at most
//! once and sends an [`Acknowledgement`]. The cloud's policy engine uses the same
//! [`limits`] and [`risk`] rules before it signs.
//!
//! The crate needs neither `std` nor `alloc`, reads no clock and draws no randomness of
//! its own: the session time and a random number generator come in as arguments.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ack;
pub mod body;
pub mod cgm;
pub mod envelope;
pub mod executor;
pub mod limits;
pub mod pacemaker;
pub mod pump;
pub mod risk;
pub mod wire;

pub use ack::{Acknowledgement, Outcome, RejectReason, StateSummary};
pub use body::{CommandBody, DeviceModel, Insulin, InsulinRate};
pub use envelope::{CommandEnvelope, SignedCommand};
pub use executor::{
    CommandExecutor, DeviceContext, ExecutionRecord, ExecutorConfig, Prepared, Therapy,
};
pub use limits::DeviceLimits;
pub use risk::Risk;

/// Re-exported Ed25519 key types of the command-signing key.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
