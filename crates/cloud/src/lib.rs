//! Cloud gateway of medtunnel: the server end of every device tunnel.
//!
//! Relays connect over TLS and upgrade to WebSocket at [`TUNNEL_PATH`]; each binary
//! WebSocket message carries exactly one tunnel frame. Per connection the gateway
//! responds to the device's handshake with [`CloudChannel`](medtunnel_proto::channel::CloudChannel),
//! checking the registry, the mac1 pre-filter and the initiation counter before the
//! handshake's Diffie-Hellman operations, and commits the counter before it sends the response. Transport
//! frames carry readings: the frames that are readable at once are committed in one
//! database transaction, and only then is one acknowledgement sent, so an acknowledged
//! reading is durable.
//!
//! Pumps and pacemakers enrolled for therapy commands (`medtunnel-therapy`) also get
//! the signed commands that the therapy service queued for them: after the device's
//! handshake and status report, the gateway sends each queued command as an application
//! message, retransmits it until the tunnel acknowledges it, and records the device's
//! status, telemetry and command acknowledgements in the therapy tables.
//!
//! Faults of a peer (damaged, replayed or unexpected frames, bad handshakes) are counted
//! in [`GatewayStats`] and logged at debug level. The connection stays open until
//! [`MAX_CONSECUTIVE_REJECTED_FRAMES`] are rejected in a row, but unknown and revoked key
//! ids close it at once.
//!
//! Never logged by this crate: keys, pre-shared keys, frame or payload bytes and glucose
//! values. Logs carry connection numbers, peer addresses, device ids, key ids, counters,
//! sequence numbers and lengths.
//!
//! This build listens on loopback addresses only; [`Gateway::bind`] rejects any other.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod connection;
mod delivery;
mod error;
mod gateway;
mod shared;
mod stats;
pub mod tls;
mod tunnel;

pub use config::{
    GatewayConfig, DEFAULT_COMMAND_POLL_INTERVAL, DEFAULT_COMMIT_BATCH, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
pub use error::GatewayError;
pub use gateway::{Gateway, GatewayHandle};
pub use stats::{
    FrameRejections, GatewayStats, GatewayStatsSnapshot, HandshakeRejection, HandshakeRejections,
};

/// Crypto provider of the cloud's channel ends: the assembly-optimized aws-lc-rs one.
pub type Provider = medtunnel_proto::crypto::AwsLc;

/// WebSocket path of the tunnel endpoint; other paths get HTTP 404.
pub const TUNNEL_PATH: &str = "/tunnel";

/// Maximum WebSocket message length in bytes: one frame of the largest kind. Longer
/// messages end the connection.
pub const MAX_MESSAGE_LEN: usize = medtunnel_proto::wire::MAX_FRAME_LEN;

/// Rejected frames in a row after which the gateway closes the connection.
pub const MAX_CONSECUTIVE_REJECTED_FRAMES: u32 = tunnel::MAX_CONSECUTIVE_REJECTED;
