//! WebSocket-over-TLS client to the cloud gateway.
//!
//! The relay opens one WebSocket connection per device tunnel. Each binary WebSocket
//! message carries exactly one tunnel frame. The server certificate must chain to the one
//! configured CA certificate; no system or bundled roots are trusted.
//!
//! This build accepts only loopback hosts (`127.0.0.0/8`, `::1`, `localhost`), because it
//! serves local tests and demos. It also resolves `localhost` itself and connects only to
//! the loopback addresses it resolves to.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, trace};

use crate::MAX_FRAME_LEN;

/// Maximum WebSocket message length in bytes that the client reads at all. Messages
/// between [`MAX_FRAME_LEN`] and this length are ignored; longer ones close the
/// connection, which bounds what a faulty server can make the relay allocate.
pub const MAX_WEBSOCKET_MESSAGE_LEN: usize = 64 * 1024;

/// Time limit of one connection attempt unless set with
/// [`CloudConnector::with_connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Failure of the cloud connection or of its configuration.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// Configuration error: the URL does not parse or is not `wss://host[:port]/path`.
    #[error("invalid cloud URL {url:?}: {reason}")]
    InvalidUrl {
        /// URL as configured.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Configuration error: the URL names a host other than a loopback one.
    #[error(
        "cloud host {host:?} is not a loopback host; this build connects only to \
         127.0.0.0/8, ::1 or localhost"
    )]
    NotLoopback {
        /// Host as written in the URL.
        host: String,
    },
    /// Configuration error: the CA certificate could not be read or parsed.
    #[error("invalid CA certificate from {source_name}: {reason}")]
    InvalidCa {
        /// Path of the PEM file, or "inline PEM".
        source_name: String,
        /// What failed.
        reason: String,
    },
    /// Local failure: the TLS client configuration could not be built.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// `localhost` resolved to no loopback address.
    #[error("host {host:?} resolved to no loopback address")]
    NoLoopbackAddress {
        /// Host as written in the URL.
        host: String,
    },
    /// Network failure: the TCP, TLS and WebSocket handshakes took longer than the
    /// connect timeout.
    #[error("connect timed out after {timeout_ms} ms")]
    TimedOut {
        /// Connect timeout in milliseconds.
        timeout_ms: u64,
    },
    /// Network failure: TCP connect failed.
    #[error("TCP connect to {addr} failed: {source}")]
    Connect {
        /// Address that was tried.
        addr: SocketAddr,
        /// Underlying error.
        source: io::Error,
    },
    /// Network or peer failure: the TLS or WebSocket handshake, or a later read or
    /// write, failed.
    #[error("WebSocket failed: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Source of the CA certificate that the cloud's server certificate must chain to.
#[derive(Clone)]
pub enum CaCertificate {
    /// PEM file on disk, read when the connector is built.
    PemFile(PathBuf),
    /// PEM text in memory.
    Pem(Vec<u8>),
}

impl fmt::Debug for CaCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaCertificate::PemFile(path) => f.debug_tuple("PemFile").field(path).finish(),
            CaCertificate::Pem(pem) => write!(f, "Pem({} bytes)", pem.len()),
        }
    }
}

/// Validated cloud endpoint and TLS trust, ready to open connections.
#[derive(Clone)]
pub struct CloudConnector {
    url: String,
    uri: Uri,
    host: String,
    port: u16,
    tls: Arc<ClientConfig>,
    connect_timeout: Duration,
}

impl fmt::Debug for CloudConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudConnector")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl CloudConnector {
    /// Validates `url` (`wss://` on a loopback host) and builds a TLS client that trusts
    /// only the certificates in `ca`.
    pub fn new(url: &str, ca: &CaCertificate) -> Result<Self, CloudError> {
        let (uri, host, port) = parse_url(url)?;
        let roots = load_roots(ca)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(CloudConnector {
            url: url.to_owned(),
            uri,
            host,
            port,
            tls: Arc::new(tls),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        })
    }

    /// Returns the URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sets the time limit for one connection attempt, handshakes included.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Opens a new WebSocket connection to the cloud within the connect timeout.
    pub async fn connect(&self) -> Result<CloudLink, CloudError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_unbounded()).await {
            Ok(result) => result,
            Err(_) => Err(CloudError::TimedOut {
                timeout_ms: duration_ms(self.connect_timeout),
            }),
        }
    }

    async fn connect_unbounded(&self) -> Result<CloudLink, CloudError> {
        let addr = self.resolve_loopback().await?;
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| CloudError::Connect { addr, source })?;
        stream
            .set_nodelay(true)
            .map_err(|source| CloudError::Connect { addr, source })?;

        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WEBSOCKET_MESSAGE_LEN))
            .max_frame_size(Some(MAX_WEBSOCKET_MESSAGE_LEN));
        let connector = Connector::Rustls(Arc::clone(&self.tls));
        let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
            self.uri.clone(),
            stream,
            Some(config),
            Some(connector),
        )
        .await?;
        debug!(url = %self.url, %addr, "cloud connection open");
        Ok(CloudLink {
            ws,
            messages_ignored: 0,
        })
    }

    /// Resolves the host to its first loopback address. Non-loopback results are
    /// skipped, so a changed hosts file cannot point the relay elsewhere.
    async fn resolve_loopback(&self) -> Result<SocketAddr, CloudError> {
        let no_address = || CloudError::NoLoopbackAddress {
            host: self.host.clone(),
        };
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|_| no_address())?;
        let mut loopback = addrs.filter(|addr| addr.ip().is_loopback());
        loopback.next().ok_or_else(no_address)
    }
}

/// One open WebSocket connection to the cloud that carries tunnel frames.
///
/// [`recv_frame`](Self::recv_frame) is cancel-safe.
pub struct CloudLink {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    messages_ignored: u64,
}

impl fmt::Debug for CloudLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudLink")
            .field("messages_ignored", &self.messages_ignored)
            .finish_non_exhaustive()
    }
}

impl CloudLink {
    /// Sends one frame as one binary message.
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<(), CloudError> {
        self.ws.send(Message::binary(frame.to_vec())).await?;
        Ok(())
    }

    /// Receives the next frame, or `None` once the server closed the connection.
    ///
    /// Text messages and binary messages longer than [`MAX_FRAME_LEN`] or empty are
    /// ignored, logged at debug level and counted in
    /// [`messages_ignored`](Self::messages_ignored). Ping and pong are answered by the
    /// WebSocket layer.
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>, CloudError> {
        loop {
            let Some(message) = self.ws.next().await else {
                return Ok(None);
            };
            match message? {
                Message::Binary(frame) if (1..=MAX_FRAME_LEN).contains(&frame.len()) => {
                    trace!(len = frame.len(), "received frame from cloud");
                    return Ok(Some(frame.to_vec()));
                }
                Message::Binary(frame) => self.ignore("binary", frame.len()),
                Message::Text(text) => self.ignore("text", text.len()),
                Message::Close(_) => return Ok(None),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Returns the number of received messages that were not a valid frame.
    pub fn messages_ignored(&self) -> u64 {
        self.messages_ignored
    }

    /// Sends a WebSocket close message and waits for the server's reply, ignoring
    /// errors, since the connection is being dropped anyway.
    pub async fn close(mut self) {
        if let Err(error) = self.ws.close(None).await {
            debug!(%error, "closing cloud connection failed");
        }
    }

    fn ignore(&mut self, kind: &'static str, len: usize) {
        self.messages_ignored += 1;
        debug!(
            kind,
            len,
            max_len = MAX_FRAME_LEN,
            ignored_total = self.messages_ignored,
            "ignored cloud message that is not a frame"
        );
    }
}

/// Checks that `url` is `wss://` on a loopback host and returns it with host and port.
fn parse_url(url: &str) -> Result<(Uri, String, u16), CloudError> {
    let invalid = |reason| CloudError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: Uri = url.parse().map_err(|_| invalid("not a valid URI"))?;
    if uri.scheme_str() != Some("wss") {
        return Err(invalid("scheme must be wss"));
    }
    let host = uri.host().ok_or_else(|| invalid("host is missing"))?;
    if !is_loopback_host(host) {
        return Err(CloudError::NotLoopback {
            host: host.to_owned(),
        });
    }
    // Bracketed IPv6 literals resolve without their brackets.
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    Ok((uri, bare_host, port))
}

/// Returns `duration` in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn load_roots(ca: &CaCertificate) -> Result<RootCertStore, CloudError> {
    let (source_name, pem) = match ca {
        CaCertificate::PemFile(path) => {
            let source_name = path.display().to_string();
            let pem = std::fs::read(path).map_err(|error| CloudError::InvalidCa {
                source_name: source_name.clone(),
                reason: format!("read failed: {error}"),
            })?;
            (source_name, pem)
        }
        CaCertificate::Pem(pem) => ("inline PEM".to_owned(), pem.clone()),
    };
    let invalid = |reason: String| CloudError::InvalidCa {
        source_name: source_name.clone(),
        reason,
    };

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|error| invalid(format!("PEM parse failed: {error}")))?;
        roots
            .add(cert)
            .map_err(|error| invalid(format!("certificate rejected: {error}")))?;
    }
    if roots.is_empty() {
        return Err(invalid("no CERTIFICATE block found".to_owned()));
    }
    Ok(roots)
}
