//! Test fixtures: a provisioned database with TLS files in a temporary directory, a
//! running gateway on 127.0.0.1, and a device that drives `DeviceChannel` over the
//! relay's WebSocket client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use medtunnel_cloud::{tls, Gateway, GatewayConfig, GatewayHandle, GatewayStatsSnapshot};
use medtunnel_proto::channel::{DeviceChannel, DeviceResume};
use medtunnel_proto::crypto::RustCrypto;
use medtunnel_proto::handshake::DeviceKeys;
use medtunnel_proto::stream::Incoming;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use medtunnel_records::{CgmMeasurement, Record};
use medtunnel_relay::{CaCertificate, CloudConnector, CloudError, CloudLink};
use medtunnel_store::provision::{self, DeviceIdentityFile};
use medtunnel_store::{DeviceModel, Store};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tempfile::TempDir;

/// Time limit of every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A provisioned database, cloud key and TLS certificate in a temporary directory.
pub struct Environment {
    pub dir: TempDir,
    pub db_path: PathBuf,
    pub keys_dir: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Environment {
    pub fn new() -> Environment {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db_path = dir.path().join("cloud.db");
        let keys_dir = dir.path().join("keys");
        let mut store = Store::open(&db_path).expect("open database");
        provision::provision_cloud(&keys_dir, &mut store).expect("provision cloud");
        let (cert_path, key_path) =
            tls::generate_local_certificate(&dir.path().join("tls")).expect("certificate");
        Environment {
            dir,
            db_path,
            keys_dir,
            cert_path,
            key_path,
        }
    }

    pub fn config(&self) -> GatewayConfig {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
        GatewayConfig::new(
            listen,
            &self.db_path,
            self.keys_dir.join(provision::CLOUD_KEY_FILE),
            &self.cert_path,
            &self.key_path,
        )
    }

    pub fn store(&self) -> Store {
        Store::open(&self.db_path).expect("open database")
    }

    pub fn provision_device(&self, prefix: &str) -> DeviceIdentityFile {
        let mut store = self.store();
        let mut devices =
            provision::provision_devices(&self.keys_dir, &mut store, DeviceModel::Cgm, 1, prefix)
                .expect("provision device");
        devices.pop().expect("one device")
    }

    pub async fn start(&self) -> GatewayHandle {
        Gateway::bind(self.config())
            .await
            .expect("bind gateway")
            .spawn()
    }

    pub fn connector(&self, addr: SocketAddr, path: &str) -> CloudConnector {
        let url = format!("wss://{addr}{path}");
        CloudConnector::new(&url, &CaCertificate::PemFile(self.cert_path.clone()))
            .expect("connector")
            .with_connect_timeout(WAIT)
    }

    pub async fn connect(&self, gateway: &GatewayHandle) -> CloudLink {
        self.connector(gateway.local_addr(), "/tunnel")
            .connect()
            .await
            .expect("connect to gateway")
    }
}

/// The device end of a tunnel, driving the channel core over a WebSocket link.
pub struct TestDevice {
    pub channel: DeviceChannel<RustCrypto>,
    pub link: Option<CloudLink>,
    pub rng: StdRng,
    pub now_ms: u64,
    /// Payloads sent, by sequence number, for retransmission.
    pub sent: Vec<Vec<u8>>,
}

impl TestDevice {
    pub fn new(identity: &DeviceIdentityFile) -> TestDevice {
        let keys = DeviceKeys::new(
            &RustCrypto,
            identity.key_id,
            identity.cloud_key_id,
            identity.device_secret.clone(),
            identity.cloud_public,
            identity.psk.clone(),
        );
        TestDevice {
            channel: DeviceChannel::new(
                RustCrypto,
                keys,
                Limits::default(),
                DeviceResume::default(),
            ),
            link: None,
            rng: StdRng::seed_from_u64(u64::from(identity.key_id)),
            now_ms: 1,
            sent: Vec::new(),
        }
    }

    pub fn link(&mut self) -> &mut CloudLink {
        self.link.as_mut().expect("device is connected")
    }

    /// Writes an initiation frame without sending it.
    pub fn initiation(&mut self) -> Vec<u8> {
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        let initiation = self
            .channel
            .start_handshake(&mut self.rng, &mut frame)
            .expect("initiation");
        frame.truncate(initiation.len);
        frame
    }

    /// Runs a handshake on the current link and exchanges the first acknowledgements.
    /// Returns the initiation frame that was sent.
    pub async fn handshake(&mut self) -> Vec<u8> {
        let initiation = self.initiation();
        self.link()
            .send_frame(&initiation)
            .await
            .expect("send initiation");
        let mut response = self.recv().await.expect("handshake response");
        let incoming = self.handle(&mut response);
        assert!(
            incoming.handshake_completed,
            "response completes the handshake"
        );
        self.send_ack().await;
        initiation
    }

    pub async fn send_ack(&mut self) {
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        let len = self
            .channel
            .send_ack(self.now_ms, &mut frame)
            .expect("seal ack");
        self.link()
            .send_frame(&frame[..len])
            .await
            .expect("send ack");
        // The gateway replies to every heartbeat with an acknowledgement.
        let mut reply = self.recv().await.expect("heartbeat reply");
        self.handle(&mut reply);
    }

    /// Seals the next message and returns its frame without sending it.
    pub fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        let sent = self
            .channel
            .send(self.now_ms, payload, &mut frame)
            .expect("seal");
        assert_eq!(
            sent.seq,
            self.sent.len() as u64,
            "sequence numbers are consecutive"
        );
        self.sent.push(payload.to_vec());
        frame.truncate(sent.len);
        frame
    }

    /// Seals an earlier message again under its sequence number.
    pub fn reseal(&mut self, seq: u64) -> Vec<u8> {
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        let payload = self.sent[seq as usize].clone();
        let len = self
            .channel
            .resend(self.now_ms, seq, &payload, &mut frame)
            .expect("reseal");
        frame.truncate(len);
        frame
    }

    pub async fn send_frame(&mut self, frame: &[u8]) {
        self.link().send_frame(frame).await.expect("send frame");
    }

    /// Sends readings `first..first + count` and waits until all are acknowledged.
    pub async fn send_readings(&mut self, first: u32, count: u32) {
        for index in first..first + count {
            let frame = self.seal(&reading_payload(index));
            self.send_frame(&frame).await;
        }
        let target = self.channel.stream().tx_next;
        self.await_ack(target).await;
    }

    /// Receives frames until the cloud acknowledged everything below `target`.
    pub async fn await_ack(&mut self, target: u64) {
        // Each frame carries at least one acknowledgement, so the loop needs at most one
        // round per message plus the reply to a heartbeat.
        for _ in 0..=target + 1 {
            let mut frame = self.recv().await.expect("acknowledgement");
            self.handle(&mut frame);
            if self.channel.stream().tx_acked >= target {
                return;
            }
        }
        panic!("cloud never acknowledged up to {target}");
    }

    /// Receives one frame, or `None` once the gateway closed the connection.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let link = self.link();
        match tokio::time::timeout(WAIT, link.recv_frame()).await {
            Ok(Ok(frame)) => frame,
            Ok(Err(CloudError::WebSocket(_))) => None,
            Ok(Err(error)) => panic!("link failed: {error}"),
            Err(_) => panic!("no frame from the gateway within {WAIT:?}"),
        }
    }

    pub fn handle<'a>(&mut self, frame: &'a mut [u8]) -> Incoming<'a> {
        self.now_ms += 1;
        self.channel
            .handle_frame(self.now_ms, frame)
            .expect("frame from the cloud is valid")
    }
}

/// Encoded CGM record number `index`: 5-minute samples with a varying glucose value.
pub fn reading_payload(index: u32) -> Vec<u8> {
    Record::CgmMeasurement(measurement(index)).encode_into_vec()
}

pub fn measurement(index: u32) -> CgmMeasurement {
    CgmMeasurement {
        session_start_s: 1_700_000_000,
        time_offset_s: index * 300,
        glucose_mg_dl: 80 + (index % 150) as u16,
        trend_mg_dl_per_min: None,
        quality_percent: Some(100),
        status: 0,
    }
}

trait EncodeIntoVec {
    fn encode_into_vec(&self) -> Vec<u8>;
}

impl EncodeIntoVec for Record {
    fn encode_into_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.encode_into(&mut bytes).expect("record within limits");
        bytes
    }
}

/// Polls the gateway's counters every 10 ms until `condition` holds, failing the test
/// after [`WAIT`].
pub async fn wait_for_stats(
    gateway: &GatewayHandle,
    what: &str,
    condition: impl Fn(&GatewayStatsSnapshot) -> bool,
) -> GatewayStatsSnapshot {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let snapshot = gateway.stats().snapshot();
        if condition(&snapshot) {
            return snapshot;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {snapshot:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
