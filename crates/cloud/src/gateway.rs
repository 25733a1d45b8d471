//! The listening gateway: binds, accepts connections up to the limit, and shuts down.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use medtunnel_proto::handshake::CloudKeys;
use medtunnel_store::provision::{self, CloudIdentity};
use medtunnel_store::Store;
use medtunnel_therapy::CommandDelivery;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::connection::{self, duration_ms, ConnectionSettings};
use crate::shared::Shared;
use crate::{tls, GatewayConfig, GatewayError, GatewayStats, Provider};

/// Time that open connections get to finish their current batch after shutdown starts;
/// connections still open then are aborted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept`, so a persistent failure such as too many open files
/// does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// A bound gateway, ready to [`run`](Gateway::run).
pub struct Gateway {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    settings: Arc<ConnectionSettings>,
    max_connections: usize,
}

impl Gateway {
    /// Checks the configuration, opens the database, loads the cloud key and the TLS
    /// certificate, and binds the listening socket.
    pub async fn bind(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let tls = tls::load_server_config(&config.tls_cert_path, &config.tls_key_path)?;
        let identity = provision::load_cloud_identity(&config.cloud_key_path)?;

        let db_path = config.db_path.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(db_path))
            .await
            .map_err(|error| GatewayError::StoreTask(error.to_string()))??;
        check_cloud_key(&store, &identity, &config)?;
        let delivery = open_delivery(&config).await?;

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| GatewayError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;

        let cloud = CloudKeys::new(&Provider::default(), identity.cloud_key_id, identity.secret);
        let stats = Arc::new(GatewayStats::default());
        let shared = Shared::new(
            store,
            cloud,
            stats,
            config.limits,
            config.commit_batch,
            delivery,
            config.command_poll_interval,
        );
        let settings = ConnectionSettings {
            acceptor: TlsAcceptor::from(tls),
            handshake_timeout: config.handshake_timeout,
            idle_timeout: config.idle_timeout,
        };
        Ok(Gateway {
            listener,
            local_addr,
            shared: Arc::new(shared),
            settings: Arc::new(settings),
            max_connections: config.max_connections,
        })
    }

    /// Returns the address the gateway listens on, with the port the system chose for
    /// port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the gateway's counters.
    pub fn stats(&self) -> Arc<GatewayStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Accepts connections until `shutdown` completes, then stops accepting, lets open
    /// connections finish their current batch for up to 5 seconds, and closes the
    /// database once every connection has ended.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        info!(listen = %self.local_addr, max_connections = self.max_connections, "gateway started");
        let (stop, stopped) = watch::channel(false);
        let limit = Arc::new(Semaphore::new(self.max_connections));
        let mut connections = JoinSet::new();
        let mut number = 0u64;
        tokio::pin!(shutdown);

        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(joined) = connections.join_next(), if !connections.is_empty() => {
                    report_join(joined);
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        number += 1;
                        self.admit(tcp, peer, number, &limit, &stopped, &mut connections);
                    }
                    Err(error) => {
                        warn!(listen = %self.local_addr, %error, "accepting a connection failed; retrying");
                        tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    }
                },
            }
        }

        drop(self.listener);
        let _ = stop.send(true);
        let open = connections.len();
        drain(connections).await;
        let snapshot = self.shared.stats.snapshot();
        info!(
            listen = %self.local_addr,
            connections_at_shutdown = open,
            connections_accepted = snapshot.connections_accepted,
            handshakes_completed = snapshot.handshakes_completed,
            readings_stored = snapshot.readings_stored,
            "gateway stopped"
        );
    }

    /// Starts a task for a new connection, or closes it at once if `max_connections`
    /// are open.
    fn admit(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        number: u64,
        limit: &Arc<Semaphore>,
        stopped: &watch::Receiver<bool>,
        connections: &mut JoinSet<()>,
    ) {
        let Ok(permit) = Arc::clone(limit).try_acquire_owned() else {
            self.shared.stats.connection_rejected();
            debug!(
                connection = number,
                %peer,
                max_connections = self.max_connections,
                "connection rejected: limit reached"
            );
            return;
        };
        self.shared.stats.connection_accepted();
        let shared = Arc::clone(&self.shared);
        let settings = Arc::clone(&self.settings);
        let stopped = stopped.clone();
        connections.spawn(async move {
            connection::serve(Arc::clone(&shared), settings, tcp, peer, number, stopped).await;
            shared.stats.connection_closed();
            drop(permit);
        });
    }

    /// Runs the gateway on a new task and returns a handle that stops it.
    pub fn spawn(self) -> GatewayHandle {
        let local_addr = self.local_addr;
        let stats = self.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            // A dropped handle stops the gateway as well.
            let _ = stopped.await;
        }));
        GatewayHandle {
            local_addr,
            stats,
            stop,
            task,
        }
    }
}

/// A gateway running on its own task. Dropping the handle stops the gateway without
/// waiting for it.
pub struct GatewayHandle {
    local_addr: SocketAddr,
    stats: Arc<GatewayStats>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl GatewayHandle {
    /// Returns the address the gateway listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the gateway's counters.
    pub fn stats(&self) -> Arc<GatewayStats> {
        Arc::clone(&self.stats)
    }

    /// Stops the gateway and waits until it has closed every connection and the
    /// database.
    pub async fn shutdown(self) -> Result<(), GatewayError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|error| GatewayError::StoreTask(format!("gateway task failed: {error}")))
    }
}

/// Checks that the database has the cloud key under the key file's id.
fn check_cloud_key(
    store: &Store,
    identity: &CloudIdentity,
    config: &GatewayConfig,
) -> Result<(), GatewayError> {
    let problem = match store.cloud_key(identity.cloud_key_id)? {
        Some(public) if public == identity.public => return Ok(()),
        Some(_) => "registered with another public key",
        None => "not registered",
    };
    Err(GatewayError::CloudKeyNotRegistered {
        cloud_key_id: identity.cloud_key_id,
        path: config.cloud_key_path.clone(),
        db_path: config.db_path.clone(),
        problem,
    })
}

/// Opens the therapy tables and audit log in the gateway's database.
async fn open_delivery(config: &GatewayConfig) -> Result<CommandDelivery, GatewayError> {
    let db_path = config.db_path.clone();
    let opened = tokio::task::spawn_blocking(move || {
        CommandDelivery::open_beside(&db_path, crate::shared::unix_now_ms())
    })
    .await
    .map_err(|error| GatewayError::StoreTask(error.to_string()))?;
    opened.map_err(|error| {
        GatewayError::StoreTask(format!("opening the therapy tables failed: {error}"))
    })
}

/// Waits up to [`DRAIN_TIMEOUT`] for the connection tasks, then aborts the rest.
async fn drain(mut connections: JoinSet<()>) {
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(joined) = connections.join_next().await {
            report_join(joined);
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            open_connections = connections.len(),
            timeout_ms = duration_ms(DRAIN_TIMEOUT),
            "connections did not end in time; aborting them"
        );
        connections.shutdown().await;
    }
}

fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked; this is a gateway bug");
        }
    }
}
