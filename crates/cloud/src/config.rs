//! Configuration of the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medtunnel_proto::transport::Limits;

use crate::GatewayError;

/// Default of [`GatewayConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default of [`GatewayConfig::commit_batch`].
pub const DEFAULT_COMMIT_BATCH: usize = 64;
/// Default of [`GatewayConfig::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`GatewayConfig::idle_timeout`]: two CGM sampling intervals of 5 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Default of [`GatewayConfig::command_poll_interval`].
pub const DEFAULT_COMMAND_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Settings of one gateway.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Address to listen on. Must be a loopback address: this build serves local
    /// operation and tests only.
    pub listen: SocketAddr,
    /// SQLite database with the device registry, created if missing.
    pub db_path: PathBuf,
    /// Cloud key file (`cloud-key.json` of the provisioning directory). Its public key
    /// must be registered in the database.
    pub cloud_key_path: PathBuf,
    /// PEM file with the TLS certificate chain.
    pub tls_cert_path: PathBuf,
    /// PEM file with the TLS private key.
    pub tls_key_path: PathBuf,
    /// Key limits of every tunnel session.
    pub limits: Limits,
    /// Connections served at once; further TCP connections are closed at once.
    pub max_connections: usize,
    /// Most frames committed in one database transaction. A larger batch amortizes the
    /// commit's disk sync over more readings but delays their acknowledgement.
    pub commit_batch: usize,
    /// Time limit of the TLS and WebSocket handshakes of a new connection.
    pub handshake_timeout: Duration,
    /// A connection that receives no WebSocket message for this long is closed.
    pub idle_timeout: Duration,
    /// Interval at which a connection of a therapy device checks the outbox for signed
    /// commands and retransmits unacknowledged ones. The therapy service may run in
    /// another process, so the gateway polls the database instead of being notified.
    pub command_poll_interval: Duration,
}

impl GatewayConfig {
    /// Creates a configuration with default limits, timeouts and batch size.
    pub fn new(
        listen: SocketAddr,
        db_path: impl Into<PathBuf>,
        cloud_key_path: impl Into<PathBuf>,
        tls_cert_path: impl Into<PathBuf>,
        tls_key_path: impl Into<PathBuf>,
    ) -> Self {
        GatewayConfig {
            listen,
            db_path: db_path.into(),
            cloud_key_path: cloud_key_path.into(),
            tls_cert_path: tls_cert_path.into(),
            tls_key_path: tls_key_path.into(),
            limits: Limits::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            commit_batch: DEFAULT_COMMIT_BATCH,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            command_poll_interval: DEFAULT_COMMAND_POLL_INTERVAL,
        }
    }

    /// Checks the values that do not need a file or socket.
    pub(crate) fn validate(&self) -> Result<(), GatewayError> {
        if !self.listen.ip().is_loopback() {
            return Err(GatewayError::NotLoopback { addr: self.listen });
        }
        let invalid = |field, reason: &str| GatewayError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.commit_batch == 0 {
            return Err(invalid("commit_batch", "must be at least 1"));
        }
        if self.handshake_timeout.is_zero() {
            return Err(invalid("handshake_timeout", "must be above zero"));
        }
        if self.idle_timeout.is_zero() {
            return Err(invalid("idle_timeout", "must be above zero"));
        }
        if self.command_poll_interval.is_zero() {
            return Err(invalid("command_poll_interval", "must be above zero"));
        }
        Ok(())
    }
}
