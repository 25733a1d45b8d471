//! The therapy part of the demo: one insulin pump and one pacemaker behind their own
//! relays, driven through the therapy service, the running gateway and the tunnel.
//!
//! Scenarios, each reported by name in [`TherapySummary`]:
//! - `basal_change`: the patient asks for a temporary basal within policy; it is
//!   approved, signed, delivered and acknowledged by the pump.
//! - `bolus_above_limit`: the patient asks for a bolus above the policy's maximum; the
//!   policy rejects it and nothing reaches the pump.
//! - `pacemaker_cosign`: a clinician changes the pacemaker's lower rate; the change waits
//!   for a second clinician's co-signature, then is delivered and acknowledged.
//! - `relay_replay`: the pump's relay replays earlier cloud-to-device frames, including a
//!   delivered command; the pump's channel rejects every replayed frame and the command
//!   runs once.
//!
//! Needs: the gateway running on `gateway_addr` with its database in `data_dir`, and the
//! CA certificate relays trust. The service writes `command-key` and `audit-key` (with
//! their `.pub` files) into `data_dir` on first use.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medtunnel_audit::{CheckpointPublicKey, CHECKPOINT_PUBLIC_KEY_FILE};
use medtunnel_command::body::{PacemakerCommand, PumpCommand, TempBasalRate};
use medtunnel_command::{CommandBody, Insulin};
use medtunnel_device::{
    PersistentState, SoftwareKeyStore, TherapyDeviceConfig, TherapyDeviceIo, TherapyDeviceReport,
    TherapyState,
};
use medtunnel_relay::{
    BleLink, CaCertificate, Direction, FaultConfig, FaultHandle, FaultKind, FrameLink, Relay,
    RelayConfig,
};
use medtunnel_store::provision::{device_identity_path, provision_devices};
use medtunnel_store::{DeviceModel, Store};
use medtunnel_therapy::{
    RequestState, RequestView, Requester, Role, TherapyConfig, TherapyService,
};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// Patient id the demo enrolls both devices for.
const PATIENT: &str = "demo-patient";
/// Time limit of each wait for a request state.
const WAIT: Duration = Duration::from_secs(30);
/// Link MTU of the emulated Bluetooth LE links.
const MTU: usize = 185;

/// Outcome of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    /// Scenario name, such as `basal_change`.
    pub name: String,
    /// Change request id.
    pub request_id: i64,
    /// Final state of the request.
    pub state: RequestState,
    /// Reason of a rejection or failure.
    pub reason: Option<String>,
    /// The change in words.
    pub change: String,
}

/// What the therapy scenarios did.
#[derive(Debug, Clone, Serialize)]
pub struct TherapySummary {
    /// Device id of the pump.
    pub pump_id: String,
    /// Device id of the pacemaker.
    pub pacemaker_id: String,
    /// One outcome per scenario, in order.
    pub outcomes: Vec<ScenarioOutcome>,
    /// Commands the pump executed.
    pub pump_commands_executed: u64,
    /// Commands the pacemaker executed.
    pub pacemaker_commands_executed: u64,
    /// Frames the pump's channel rejected, among them the relay's replays.
    pub pump_frames_rejected: u64,
    /// Frames the pump's relay replayed.
    pub frames_replayed: u64,
    /// Whether `medtunnel audit verify` passes on the data directory.
    pub audit_intact: bool,
    /// Entries in the audit log.
    pub audit_entries: u64,
}

/// Runs the four scenarios against the gateway at `gateway_addr`, whose database is
/// `data_dir/cloud.db`, with relays that trust `ca_cert`.
pub async fn run_therapy_scenario(
    data_dir: &Path,
    gateway_addr: SocketAddr,
    ca_cert: &Path,
) -> Result<TherapySummary, DemoError> {
    let mut service = TherapyService::open(data_dir, TherapyConfig::default(), now_ms())?;
    let pump_id = provision(
        data_dir,
        &mut service,
        DeviceModel::InsulinPump,
        "therapy-pump-",
    )?;
    let pacemaker_id = provision(
        data_dir,
        &mut service,
        DeviceModel::Pacemaker,
        "therapy-pacemaker-",
    )?;
    let url = format!("wss://{gateway_addr}/tunnel");
    let mut replay = FaultConfig::none(17).with(FaultKind::Replay, 0.5);
    replay.direction = Direction::Downstream;
    let pump_relay = DemoRelay::start(&url, ca_cert, Some(replay)).await?;
    let pacemaker_relay = DemoRelay::start(&url, ca_cert, None).await?;
    let key = medtunnel_therapy::load_command_public_key(&service.command_public_key_path())?;
    let pump = DemoDevice::start(
        data_dir,
        &pump_id,
        DeviceModel::InsulinPump,
        TherapyDeviceConfig::new(pump_relay.addr, key),
    );
    let pacemaker = DemoDevice::start(
        data_dir,
        &pacemaker_id,
        DeviceModel::Pacemaker,
        TherapyDeviceConfig::new(pacemaker_relay.addr, key),
    );
    wait_for_status(&service, &pump_id).await?;
    wait_for_status(&service, &pacemaker_id).await?;

    let patient = Requester::new(PATIENT, Role::Patient);
    let mut outcomes = Vec::new();
    let basal = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(110),
        duration_minutes: 30,
    });
    let view = service.submit(&patient, PATIENT, &pump_id, basal, now_ms())?;
    outcomes.push(outcome(
        "basal_change",
        wait_for(&mut service, view.id, RequestState::Acknowledged).await?,
    ));

    let bolus = CommandBody::Pump(PumpCommand::Bolus(Insulin(1500)));
    let view = service.submit(&patient, PATIENT, &pump_id, bolus, now_ms())?;
    outcomes.push(outcome("bolus_above_limit", view));

    let lower_rate = CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(65));
    let clinician_a = Requester::new("dr-adams", Role::Clinician);
    let clinician_b = Requester::new("dr-baker", Role::Clinician);
    let view = service.submit(&clinician_a, PATIENT, &pacemaker_id, lower_rate, now_ms())?;
    if view.state != RequestState::NeedsCosign {
        return Err(format!(
            "pacemaker change is {:?}, expected needs_cosign",
            view.state
        )
        .into());
    }
    service.cosign(&clinician_b, view.id, now_ms())?;
    outcomes.push(outcome(
        "pacemaker_cosign",
        wait_for(&mut service, view.id, RequestState::Acknowledged).await?,
    ));

    pump_relay.faults.set_enabled(true);
    let basal = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(90),
        duration_minutes: 30,
    });
    let view = service.submit(&patient, PATIENT, &pump_id, basal, now_ms())?;
    outcomes.push(outcome(
        "relay_replay",
        wait_for(&mut service, view.id, RequestState::Acknowledged).await?,
    ));
    // Heartbeat replies keep flowing, so the relay replays earlier frames for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    pump_relay.faults.set_enabled(false);
    let frames_replayed = pump_relay.faults.counters().get(FaultKind::Replay);

    let pump_report = pump.stop().await?;
    let pacemaker_report = pacemaker.stop().await?;
    let key = CheckpointPublicKey::load_file(&data_dir.join(CHECKPOINT_PUBLIC_KEY_FILE))?;
    let audit =
        medtunnel_audit::verify_file(&data_dir.join(medtunnel_therapy::DATABASE_FILE), &[key])?;
    Ok(TherapySummary {
        pump_id,
        pacemaker_id,
        outcomes,
        pump_commands_executed: pump_report.commands_executed,
        pacemaker_commands_executed: pacemaker_report.commands_executed,
        pump_frames_rejected: pump_report.frames_rejected,
        frames_replayed,
        audit_intact: audit.is_intact(),
        audit_entries: audit.entries,
    })
}

fn outcome(name: &str, view: RequestView) -> ScenarioOutcome {
    ScenarioOutcome {
        name: name.to_owned(),
        request_id: view.id,
        state: view.state,
        reason: view.reason,
        change: view.body_summary,
    }
}

/// Provisions one device and enrolls it for the demo patient.
fn provision(
    data_dir: &Path,
    service: &mut TherapyService,
    model: DeviceModel,
    prefix: &str,
) -> Result<String, DemoError> {
    let mut store = Store::open(data_dir.join(medtunnel_therapy::DATABASE_FILE))?;
    let identity = provision_devices(data_dir, &mut store, model, 1, prefix)?
        .pop()
        .ok_or("provisioning returned no device")?;
    let operator = Requester::new("demo-operator", Role::Operator);
    service.enroll_device(&operator, &identity.device_id, PATIENT, now_ms())?;
    Ok(identity.device_id)
}

/// Signs pending commands until the request reaches `state`, or fails after [`WAIT`].
async fn wait_for(
    service: &mut TherapyService,
    request_id: i64,
    state: RequestState,
) -> Result<RequestView, DemoError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        service.sign_pending(now_ms())?;
        let view = service.request(request_id)?;
        if view.state == state || view.state.is_final() {
            return Ok(view);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "request {request_id} is still {:?} after {WAIT:?}",
                view.state
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_status(service: &TherapyService, device_id: &str) -> Result<(), DemoError> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while service.device_status(device_id)?.is_none() {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "device {device_id} sent no status within {WAIT:?}; is the gateway running?"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A relay that accepts its device's link again after each reconnect.
struct DemoRelay {
    addr: SocketAddr,
    faults: FaultHandle,
    task: JoinHandle<()>,
}

impl DemoRelay {
    async fn start(
        url: &str,
        ca_cert: &Path,
        faults: Option<FaultConfig>,
    ) -> Result<Self, DemoError> {
        let mut config = RelayConfig::new(url, CaCertificate::PemFile(ca_cert.to_owned()));
        config.faults = faults;
        let relay = Relay::new(config)?;
        let handle = relay.fault_handle().clone();
        handle.set_enabled(false);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok(link) = BleLink::accept(&listener, MTU).await {
                if let Err(error) = relay
                    .run(FrameLink::new(link), std::future::pending())
                    .await
                {
                    tracing::debug!(%error, "demo relay session ended");
                }
            }
        });
        Ok(Self {
            addr,
            faults: handle,
            task,
        })
    }
}

impl Drop for DemoRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A simulated device on its own task, with its files in the data directory.
struct DemoDevice {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<TherapyDeviceReport, DemoError>>,
}

impl DemoDevice {
    fn start(
        data_dir: &Path,
        device_id: &str,
        model: DeviceModel,
        config: TherapyDeviceConfig,
    ) -> Self {
        let dir: PathBuf = data_dir.to_owned();
        let id = device_id.to_owned();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let keystore = SoftwareKeyStore::load(&device_identity_path(&dir, &id))?;
            let channel_state = PersistentState::new(dir.join(format!("{id}.state.json")));
            let therapy_state = TherapyState::new(dir.join(format!("{id}.therapy.json")));
            let io = TherapyDeviceIo {
                keystore: &keystore,
                channel_state: &channel_state,
                therapy_state: &therapy_state,
                report: Arc::new(Mutex::new(TherapyDeviceReport::default())),
            };
            let report = match model {
                DeviceModel::InsulinPump => medtunnel_device::run_pump(io, config, stopped).await?,
                _ => medtunnel_device::run_pacemaker(io, config, stopped).await?,
            };
            Ok(report)
        });
        Self { stop, task }
    }

    async fn stop(self) -> Result<TherapyDeviceReport, DemoError> {
        let _ = self.stop.send(true);
        self.task.await?
    }
}

fn now_ms() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// Prints the therapy scenarios' outcomes below the demo summary.
pub fn print_therapy_summary(summary: &TherapySummary) {
    println!(
        "therapy commands (pump {}, pacemaker {})",
        summary.pump_id, summary.pacemaker_id
    );
    for outcome in &summary.outcomes {
        let reason = outcome
            .reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default();
        println!("  {:<24} {:?}{reason}", outcome.name, outcome.state);
    }
    println!(
        "  commands executed        pump {}, pacemaker {}",
        summary.pump_commands_executed, summary.pacemaker_commands_executed
    );
    println!(
        "  replayed frames rejected {} of {} replayed by the relay",
        summary.pump_frames_rejected, summary.frames_replayed
    );
    println!(
        "  audit log                {} entries, intact: {}",
        summary.audit_entries, summary.audit_intact
    );
}
