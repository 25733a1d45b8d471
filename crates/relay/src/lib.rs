//! Relay of medtunnel: the patient's phone between a medical device and its cloud.
//!
//! The relay forwards tunnel frames between a device on an emulated Bluetooth LE link
//! ([`ble`]) and the cloud gateway over WebSocket on TLS ([`cloud`]). It holds no tunnel
//! key: every frame is ciphertext that the device and the cloud authenticate end to end,
//! so the relay can only delay, drop or damage frames, and the endpoints detect that.
//! While the cloud is unreachable the relay buffers device frames in a bounded queue and
//! sends them in order once it has reconnected ([`relay`]). For tests and demos it can
//! inject faults into the frames it forwards ([`fault`]).
//!
//! Never logged or stored outside the bounded buffer: frame and packet contents. Logs
//! carry only lengths, counts, addresses and message ids.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod ble;
pub mod cloud;
pub mod fault;
pub mod relay;

mod buffer;
mod stats;

pub use ble::{BleError, BleLink, FrameLink};
pub use cloud::{CaCertificate, CloudConnector, CloudError, CloudLink};
pub use fault::{Direction, FaultConfig, FaultConfigError, FaultHandle, FaultInjector, FaultKind};
pub use relay::{Relay, RelayConfig, RelayError, RelayStats, RelayStatsSnapshot, StopReason};

/// Maximum length in bytes of one tunnel frame that the relay forwards. Longer frames
/// from either side are rejected.
// TODO: take this from the channel core's frame limit once the core exports one.
pub const MAX_FRAME_LEN: usize = 1100;
