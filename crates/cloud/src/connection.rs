//! The I/O of one connection: TLS, the WebSocket upgrade at [`TUNNEL_PATH`], and the read
//! loop that batches frames for group commit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use crate::shared::Shared;
use crate::tunnel::{Close, Tunnel};
use crate::{MAX_MESSAGE_LEN, TUNNEL_PATH};

/// Time limit of sending the WebSocket close message when a connection ends.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<TlsStream<TcpStream>>;

/// Settings of one connection task.
pub(crate) struct ConnectionSettings {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// Reason the read loop ended.
enum End {
    PeerClosed,
    Shutdown,
    IdleTimeout,
    ReadFailed(tungstenite::Error),
    SendFailed(tungstenite::Error),
    Tunnel(Close),
}

impl End {
    fn reason(&self) -> &'static str {
        match self {
            End::PeerClosed => "closed by peer",
            End::Shutdown => "gateway shutdown",
            End::IdleTimeout => "idle timeout",
            End::ReadFailed(_) => "read failed",
            End::SendFailed(_) => "send failed",
            End::Tunnel(close) => close.as_str(),
        }
    }
}

/// Serves one accepted TCP connection until it ends or `shutdown` turns true.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    settings: Arc<ConnectionSettings>,
    tcp: TcpStream,
    peer: SocketAddr,
    connection: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let started = Instant::now();
    debug!(connection, %peer, "connection open");
    let upgrade = tokio::time::timeout(settings.handshake_timeout, upgrade(&settings, tcp));
    let mut socket = match upgrade.await {
        Ok(Ok(socket)) => socket,
        Ok(Err(reason)) => {
            debug!(connection, %peer, reason, "connection closed before the tunnel started");
            return;
        }
        Err(_) => {
            debug!(
                connection,
                %peer,
                timeout_ms = duration_ms(settings.handshake_timeout),
                "TLS or WebSocket handshake timed out"
            );
            return;
        }
    };

    let mut tunnel = Tunnel::new(
        Arc::clone(&shared),
        connection,
        format!("{peer}#{connection}"),
    );
    let end = read_loop(&shared, &settings, &mut socket, &mut tunnel, &mut shutdown).await;
    if let End::ReadFailed(error) | End::SendFailed(error) = &end {
        debug!(connection, %peer, %error, "WebSocket failed");
    }
    if !matches!(end, End::ReadFailed(_) | End::SendFailed(_)) {
        // Best effort: the peer may be gone already.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.close(None)).await;
    }
    debug!(
        connection,
        %peer,
        device_id = tunnel.device_id().unwrap_or(""),
        reason = end.reason(),
        duration_ms = duration_ms(started.elapsed()),
        frames_accepted = tunnel.counts.frames_accepted,
        frames_rejected = tunnel.counts.frames_rejected,
        readings_stored = tunnel.counts.readings_stored,
        "connection closed"
    );
}

/// Runs the TLS handshake and the WebSocket upgrade.
async fn upgrade(settings: &ConnectionSettings, tcp: TcpStream) -> Result<Socket, String> {
    // Frames are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    let tls = settings
        .acceptor
        .accept(tcp)
        .await
        .map_err(|error| format!("TLS handshake failed: {error}"))?;
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_LEN))
        .max_frame_size(Some(MAX_MESSAGE_LEN));
    tokio_tungstenite::accept_hdr_async_with_config(tls, check_path, Some(config))
        .await
        .map_err(|error| format!("WebSocket upgrade failed: {error}"))
}

/// Accepts the WebSocket upgrade at [`TUNNEL_PATH`] only; other paths get 404.
#[expect(
    clippy::result_large_err,
    reason = "tungstenite's upgrade callback fixes this signature"
)]
fn check_path(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.uri().path() == TUNNEL_PATH {
        return Ok(response);
    }
    let mut rejection =
        ErrorResponse::new(Some(format!("no tunnel at this path; use {TUNNEL_PATH}")));
    *rejection.status_mut() = StatusCode::NOT_FOUND;
    Err(rejection)
}

/// Reads frames, hands each batch to the tunnel and sends what it returns.
async fn read_loop(
    shared: &Shared,
    settings: &ConnectionSettings,
    socket: &mut Socket,
    tunnel: &mut Tunnel,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let mut idle_deadline = tokio::time::Instant::now() + settings.idle_timeout;
    loop {
        if *shutdown.borrow() {
            return End::Shutdown;
        }
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => return End::Shutdown,
            next = tokio::time::timeout_at(idle_deadline, socket.next()) => match next {
                Err(_) => return End::IdleTimeout,
                Ok(message) => message,
            },
            // Therapy devices only: queued commands and retransmissions on a timer.
            () = tokio::time::sleep(shared.command_poll_interval), if tunnel.wants_poll() => {
                match tunnel.poll().await {
                    Ok(outgoing) => {
                        if let Err(error) = send_all(socket, outgoing).await {
                            return End::SendFailed(error);
                        }
                        continue;
                    }
                    Err(close) => return End::Tunnel(close),
                }
            }
        };
        idle_deadline = tokio::time::Instant::now() + settings.idle_timeout;
        let mut batch = Vec::new();
        let mut end = None;
        if let Err(stop) = take_message(first, &mut batch, tunnel) {
            end = Some(stop);
        }
        // Group commit: whatever is readable now joins the batch, without waiting.
        while end.is_none() && batch.len() < shared.commit_batch {
            let Some(next) = socket.next().now_or_never() else {
                break;
            };
            if let Err(stop) = take_message(next, &mut batch, tunnel) {
                end = Some(stop);
            }
        }
        if !batch.is_empty() {
            let outgoing = match tunnel.handle_batch(batch).await {
                Ok(outgoing) => outgoing,
                Err(close) => return End::Tunnel(close),
            };
            if let Err(error) = send_all(socket, outgoing).await {
                return End::SendFailed(error);
            }
        }
        if let Some(end) = end {
            return end;
        }
    }
}

/// Adds a binary message to the batch, counts other data messages, and returns why the
/// loop must end, if it must.
fn take_message(
    message: Option<Result<Message, tungstenite::Error>>,
    batch: &mut Vec<Vec<u8>>,
    tunnel: &mut Tunnel,
) -> Result<(), End> {
    match message {
        None | Some(Ok(Message::Close(_))) => Err(End::PeerClosed),
        Some(Err(error)) => Err(End::ReadFailed(error)),
        Some(Ok(Message::Binary(frame))) => {
            batch.push(frame.to_vec());
            Ok(())
        }
        Some(Ok(Message::Text(text))) => tunnel
            .reject_non_frame("text", text.len())
            .map_err(End::Tunnel),
        // tungstenite replies to ping itself, and it never returns raw frames from a read.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(()),
    }
}

async fn send_all(socket: &mut Socket, frames: Vec<Vec<u8>>) -> Result<(), tungstenite::Error> {
    if frames.is_empty() {
        return Ok(());
    }
    for frame in frames {
        socket.feed(Message::binary(frame)).await?;
    }
    socket.flush().await
}

/// Returns `duration` in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
