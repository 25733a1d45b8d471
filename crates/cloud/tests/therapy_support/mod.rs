//! The whole therapy stack on loopback: a provisioned data directory, the therapy
//! service, the gateway, one relay per device with switchable faults, and simulated
//! pumps and pacemakers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medtunnel_audit::{CheckpointPublicKey, CHECKPOINT_PUBLIC_KEY_FILE};
use medtunnel_cloud::{tls, Gateway, GatewayConfig, GatewayHandle};
use medtunnel_device::{
    PersistentState, SoftwareKeyStore, TherapyDeviceConfig, TherapyDeviceIo, TherapyDeviceReport,
    TherapyState,
};
use medtunnel_relay::{
    BleLink, CaCertificate, FaultConfig, FaultHandle, FrameLink, Relay, RelayConfig,
};
use medtunnel_store::provision::{self, device_identity_path};
use medtunnel_store::{DeviceModel, Store};
use medtunnel_therapy::{
    RequestState, RequestView, Requester, Role, TherapyConfig, TherapyService,
};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Time limit of every wait.
pub const WAIT: Duration = Duration::from_secs(20);
/// Patient of every device.
pub const PATIENT: &str = "patient-1";

pub fn now_ms() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(elapsed.as_millis()).expect("time fits i64")
}

pub fn patient() -> Requester {
    Requester::new(PATIENT, Role::Patient).with_source("127.0.0.1")
}

pub fn clinician(id: &str) -> Requester {
    Requester::new(id, Role::Clinician).with_source("127.0.0.1")
}

/// A data directory with the cloud key, TLS files, the service and a running gateway.
pub struct Cloud {
    pub dir: TempDir,
    pub service: TherapyService,
    pub gateway: GatewayHandle,
    pub cert_path: PathBuf,
}

impl Cloud {
    pub async fn start(config: TherapyConfig) -> Cloud {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db_path = dir.path().join("cloud.db");
        let mut store = Store::open(&db_path).expect("open database");
        provision::provision_cloud(dir.path(), &mut store).expect("provision cloud");
        drop(store);
        let service = TherapyService::open(dir.path(), config, now_ms()).expect("open service");
        let (cert_path, key_path) =
            tls::generate_local_certificate(&dir.path().join("tls")).expect("certificate");
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let mut gateway_config = GatewayConfig::new(
            listen,
            &db_path,
            dir.path().join(provision::CLOUD_KEY_FILE),
            &cert_path,
            &key_path,
        );
        gateway_config.command_poll_interval = Duration::from_millis(50);
        let gateway = Gateway::bind(gateway_config)
            .await
            .expect("bind gateway")
            .spawn();
        Cloud {
            dir,
            service,
            gateway,
            cert_path,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Provisions one device of `model` and enrolls it for the patient.
    pub fn provision(&mut self, model: DeviceModel, prefix: &str) -> String {
        let mut store = Store::open(self.path().join("cloud.db")).expect("open database");
        let identity = provision::provision_devices(self.path(), &mut store, model, 1, prefix)
            .expect("provision device")
            .pop()
            .expect("one device");
        let operator = Requester::new("operator-1", Role::Operator);
        self.service
            .enroll_device(&operator, &identity.device_id, PATIENT, now_ms())
            .expect("enroll device");
        identity.device_id
    }

    /// Signs pending commands until the request reaches `state`.
    pub async fn wait_for(&mut self, request_id: i64, state: RequestState) -> RequestView {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.service.sign_pending(now_ms()).expect("sign pending");
            let view = self.service.request(request_id).expect("request");
            if view.state == state {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "request {request_id} never reached {state:?}: {view:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the cloud stored a status report of epoch `epoch` from the device.
    pub async fn wait_for_status(&self, device_id: &str, epoch: u32) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = self
                .service
                .device_status(device_id)
                .expect("device status");
            if status.is_some_and(|(s, _)| s.epoch == epoch) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no status of epoch {epoch} from {device_id}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Queues the request's signed command again, as an insider with write access to the
    /// database could: the gateway then sends the captured command a second time.
    pub fn replay_command(&self, request_id: i64) {
        let connection =
            rusqlite::Connection::open(self.path().join("cloud.db")).expect("open database");
        connection
            .execute(
                "INSERT INTO command_outbox (request_id, device_id, command_id, sequence, epoch,
                     challenge, signed_command, expires_at_ms, state, queued_at_ms)
                 SELECT request_id, device_id, command_id, sequence, epoch, challenge,
                     signed_command, ?2, 'queued', ?3
                 FROM command_outbox WHERE request_id = ?1 ORDER BY id LIMIT 1",
                rusqlite::params![request_id, now_ms() + 60_000, now_ms()],
            )
            .expect("queue the command again");
    }

    /// Checks the audit log's chain and checkpoints.
    pub fn verify_audit(&self) -> medtunnel_audit::VerifyReport {
        let key = CheckpointPublicKey::load_file(&self.path().join(CHECKPOINT_PUBLIC_KEY_FILE))
            .expect("checkpoint public key");
        let report = medtunnel_audit::verify_file(&self.path().join("cloud.db"), &[key])
            .expect("verify audit log");
        assert!(
            report.is_intact(),
            "audit log broken: {:?}",
            report.first_bad
        );
        report
    }

    /// Actions of the audit entries about `target` (a request id), in order.
    pub fn audit_actions(&self, target: &str) -> Vec<(String, String)> {
        let connection =
            medtunnel_audit::open_read_only(&self.path().join("cloud.db")).expect("open audit log");
        medtunnel_audit::read_entries(&connection, 1, u64::MAX)
            .expect("read audit log")
            .into_iter()
            .filter(|e| e.target.as_deref() == Some(target))
            .map(|e| (e.action, e.outcome.to_string()))
            .collect()
    }
}

/// A relay that accepts the device's link again after every reconnect.
pub struct TestRelay {
    pub addr: SocketAddr,
    pub faults: FaultHandle,
    task: JoinHandle<()>,
}

impl TestRelay {
    /// Starts a relay to the gateway, with `faults` installed but switched off.
    pub async fn start(cloud: &Cloud, faults: Option<FaultConfig>) -> TestRelay {
        let url = format!("wss://{}/tunnel", cloud.gateway.local_addr());
        let mut config = RelayConfig::new(url, CaCertificate::PemFile(cloud.cert_path.clone()));
        config.faults = faults;
        let relay = Relay::new(config).expect("relay");
        let handle = relay.fault_handle().clone();
        handle.set_enabled(false);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let task = tokio::spawn(async move {
            loop {
                let Ok(link) = BleLink::accept(&listener, 185).await else {
                    return;
                };
                let _ = relay
                    .run(FrameLink::new(link), std::future::pending())
                    .await;
            }
        });
        TestRelay {
            addr,
            faults: handle,
            task,
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A simulated pump or pacemaker running on its own task.
pub struct TestDevice {
    pub device_id: String,
    pub report: Arc<Mutex<TherapyDeviceReport>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<TherapyDeviceReport>,
}

impl TestDevice {
    pub fn config(cloud: &Cloud, relay: &TestRelay) -> TherapyDeviceConfig {
        let key =
            medtunnel_therapy::load_command_public_key(&cloud.service.command_public_key_path())
                .expect("command public key");
        let mut config = TherapyDeviceConfig::new(relay.addr, key);
        config.heartbeat_interval = Duration::from_millis(200);
        config
    }

    /// Boots the device with its files in the data directory.
    pub fn start(
        cloud: &Cloud,
        device_id: &str,
        model: DeviceModel,
        config: TherapyDeviceConfig,
    ) -> TestDevice {
        let dir = cloud.path().to_owned();
        let id = device_id.to_owned();
        let report = Arc::new(Mutex::new(TherapyDeviceReport::default()));
        let live = Arc::clone(&report);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let keystore =
                SoftwareKeyStore::load(&device_identity_path(&dir, &id)).expect("identity");
            let channel_state = PersistentState::new(dir.join(format!("{id}.state.json")));
            let therapy_state = TherapyState::new(dir.join(format!("{id}.therapy.json")));
            let io = TherapyDeviceIo {
                keystore: &keystore,
                channel_state: &channel_state,
                therapy_state: &therapy_state,
                report: live,
            };
            let result = match model {
                DeviceModel::InsulinPump => medtunnel_device::run_pump(io, config, stopped).await,
                _ => medtunnel_device::run_pacemaker(io, config, stopped).await,
            };
            result.expect("device run")
        });
        TestDevice {
            device_id: device_id.to_owned(),
            report,
            stop,
            task,
        }
    }

    pub fn report(&self) -> TherapyDeviceReport {
        self.report.lock().expect("report lock").clone()
    }

    /// Waits until the device's report satisfies `condition`.
    pub async fn wait_until(
        &self,
        what: &str,
        condition: impl Fn(&TherapyDeviceReport) -> bool,
    ) -> TherapyDeviceReport {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let report = self.report();
            if condition(&report) {
                return report;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "device never {what}: {report:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the device, as a power-off, and returns its final report.
    pub async fn stop(self) -> TherapyDeviceReport {
        let _ = self.stop.send(true);
        self.task.await.expect("device task")
    }
}
