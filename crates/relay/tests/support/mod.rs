//! Test fixtures: device link pairs, a WebSocket-over-TLS cloud stand-in with a
//! self-signed certificate, and log capture.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use medtunnel_relay::{
    BleLink, CaCertificate, FrameLink, Relay, RelayConfig, RelayError, StopReason,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;

/// Time limit of every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// Self-signed certificate for 127.0.0.1 and localhost, with the TLS acceptor that
/// serves it.
pub struct TestCert {
    pub ca: CaCertificate,
    pub acceptor: TlsAcceptor,
}

pub fn make_cert() -> TestCert {
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).expect("generate certificate");
    let cert_der = CertificateDer::from(certified.cert.der().to_vec());
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)
        .expect("server certificate");
    TestCert {
        ca: CaCertificate::Pem(certified.cert.pem().into_bytes()),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

/// Connected device and relay ends of an emulated link.
pub async fn device_pair(mtu: usize) -> (FrameLink, FrameLink) {
    let (device, relay_side) = ble_pair(mtu).await;
    (FrameLink::new(device), FrameLink::new(relay_side))
}

pub async fn ble_pair(mtu: usize) -> (BleLink, BleLink) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (device, relay_side) =
        tokio::join!(BleLink::connect(addr, mtu), BleLink::accept(&listener, mtu));
    (device.expect("connect"), relay_side.expect("accept"))
}

/// Cloud stand-in: accepts one WebSocket connection at a time, reports each received
/// binary message, optionally echoes it, and sends what the test queues.
pub struct TestCloud {
    pub url: String,
    pub received: mpsc::UnboundedReceiver<Vec<u8>>,
    pub outgoing: mpsc::UnboundedSender<Message>,
    task: JoinHandle<()>,
}

impl Drop for TestCloud {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestCloud {
    pub async fn start(cert: &TestCert, echo: bool) -> TestCloud {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, cert, echo)
    }

    /// Serves on `listener`, which a test may bind to an address it chose earlier.
    pub fn serve(listener: TcpListener, cert: &TestCert, echo: bool) -> TestCloud {
        let addr = listener.local_addr().expect("local addr");
        let (received_tx, received) = mpsc::unbounded_channel();
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let acceptor = cert.acceptor.clone();
        let task = tokio::spawn(accept_loop(
            listener,
            acceptor,
            echo,
            received_tx,
            outgoing_rx,
        ));
        TestCloud {
            url: tunnel_url(addr),
            received,
            outgoing,
            task,
        }
    }

    /// Receives `count` frames, failing the test after [`WAIT`].
    pub async fn recv_frames(&mut self, count: usize) -> Vec<Vec<u8>> {
        let mut frames = Vec::with_capacity(count);
        for _ in 0..count {
            let frame = tokio::time::timeout(WAIT, self.received.recv())
                .await
                .expect("cloud frame in time")
                .expect("cloud task alive");
            frames.push(frame);
        }
        frames
    }
}

pub fn tunnel_url(addr: SocketAddr) -> String {
    format!("wss://{addr}/tunnel")
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    echo: bool,
    received: mpsc::UnboundedSender<Vec<u8>>,
    mut outgoing: mpsc::UnboundedReceiver<Message>,
) {
    // Bounded: the test aborts this task when it drops the `TestCloud`.
    for _ in 0..100 {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(tls) = acceptor.accept(stream).await else {
            continue;
        };
        let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
            continue;
        };
        loop {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Binary(frame))) => {
                        let _ = received.send(frame.to_vec());
                        if echo && ws.send(Message::Binary(frame)).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                message = outgoing.recv() => match message {
                    Some(message) => {
                        if ws.send(message).await.is_err() {
                            break;
                        }
                    }
                    None => return,
                },
            }
        }
    }
}

/// Receives one frame on the device end, failing the test after [`WAIT`].
pub async fn device_recv(device: &mut FrameLink) -> Vec<u8> {
    tokio::time::timeout(WAIT, device.recv_frame())
        .await
        .expect("device frame in time")
        .expect("device link healthy")
        .expect("device link open")
}

/// Polls `condition` every 10 ms until it holds, failing the test after [`WAIT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Frame of `len` bytes whose contents depend on `seed`.
pub fn test_frame(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

/// In-memory log sink for a `tracing` subscriber.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }

    /// Installs a subscriber at trace level that writes to this buffer on the current
    /// thread until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let buffer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || buffer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Running relay with its device end and a way to stop it.
pub struct Running {
    pub relay: Arc<Relay>,
    pub device: FrameLink,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<StopReason, RelayError>>,
}

impl Running {
    pub async fn start(config: RelayConfig, mtu: usize) -> Running {
        let relay = Arc::new(Relay::new(config).expect("valid relay config"));
        let (device, relay_side) = device_pair(mtu).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task_relay = Arc::clone(&relay);
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            task_relay.run(relay_side, shutdown).await
        });
        Running {
            relay,
            device,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) -> StopReason {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("relay stops in time")
            .expect("relay task not panicked")
            .expect("relay ran without error")
    }
}

pub fn fast_config(url: &str, cert: &TestCert) -> RelayConfig {
    let mut config = RelayConfig::new(url, cert.ca.clone());
    config.reconnect_initial_delay = Duration::from_millis(20);
    config.reconnect_max_delay = Duration::from_millis(100);
    config.connect_timeout = Duration::from_secs(2);
    config
}
