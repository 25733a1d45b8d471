//! Errors of the gateway's setup. Faults of a single connection never surface here:
//! they are counted in [`crate::GatewayStats`] and logged, and only that connection ends.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use medtunnel_store::provision::ProvisionError;
use medtunnel_store::StoreError;

use crate::tls::TlsError;

/// Failure to start or run the gateway. Every variant needs an operator: the
/// configuration, a file or the database is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The listen address is not a loopback address.
    #[error(
        "listen address {addr} is not a loopback address; this build serves local \
         operation only, so use 127.0.0.1 or ::1"
    )]
    NotLoopback {
        /// Address as configured.
        addr: SocketAddr,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration value {field}: {reason}")]
    InvalidConfig {
        /// Field of [`crate::GatewayConfig`].
        field: &'static str,
        /// Description of the problem.
        reason: String,
    },
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The cloud key file could not be loaded.
    #[error("loading the cloud key failed: {0}")]
    CloudKey(#[from] ProvisionError),
    /// The cloud key is not the one registered in the database under its id.
    #[error(
        "cloud key id {cloud_key_id} from {path} is {problem} in database {db_path}; \
         use the key file provisioned with this database"
    )]
    CloudKeyNotRegistered {
        /// Id from the key file.
        cloud_key_id: u32,
        /// Key file.
        path: PathBuf,
        /// Database file.
        db_path: PathBuf,
        /// "not registered" or "registered with another public key".
        problem: &'static str,
    },
    /// The database failed.
    #[error("database operation failed: {0}")]
    Store(#[from] StoreError),
    /// A database task ended without a result (it panicked, or the lock was poisoned by
    /// an earlier panic).
    #[error("database task failed: {0}")]
    StoreTask(String),
    /// The listening socket could not be bound.
    #[error("binding {addr} failed: {source}")]
    Bind {
        /// Address as configured.
        addr: SocketAddr,
        /// Underlying error.
        source: io::Error,
    },
}
