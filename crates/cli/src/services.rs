//! The long-running subcommands: `cloud`, `relay` and `device`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use medtunnel_device::{run_cgm, CgmConfig, CgmProgress, PersistentState, SoftwareKeyStore};
use medtunnel_relay::{BleLink, CaCertificate, FrameLink, Relay, RelayConfig};
use tokio::net::TcpListener;
use tracing::info;

use crate::args::{loopback_addr, mtu};
use crate::faults::FaultArgs;
use crate::trace_input::{by_subject, read_trace_file};
use crate::CommandResult;

pub use crate::cloud::{run_cloud, CloudArgs};

#[derive(Args)]
pub struct RelayArgs {
    /// Address where the relay accepts the device's emulated Bluetooth LE link.
    #[arg(long, value_parser = loopback_addr, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// Cloud gateway URL (wss:// on a loopback host).
    #[arg(long, default_value = "wss://127.0.0.1:8443/tunnel")]
    cloud: String,
    /// PEM file of the certificate authority the gateway's certificate chains to
    /// (`medtunnel cloud` writes DIR/tls/gateway-cert.pem).
    #[arg(long)]
    ca: PathBuf,
    /// Link MTU in bytes (20 to 244).
    #[arg(long, value_parser = mtu, default_value = "185")]
    mtu: usize,
    /// Maximum frames buffered while the cloud is unreachable; the oldest are dropped
    /// beyond it, with a warning.
    #[arg(long, default_value_t = 4096)]
    buffer_frames: usize,
    /// Maximum bytes buffered while the cloud is unreachable.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    buffer_bytes: usize,
    #[command(flatten)]
    faults: FaultArgs,
}

pub fn run_relay(args: RelayArgs) -> CommandResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut config =
            RelayConfig::new(args.cloud.clone(), CaCertificate::PemFile(args.ca.clone()));
        config.buffer_max_frames = args.buffer_frames;
        config.buffer_max_bytes = args.buffer_bytes;
        config.faults = args.faults.config(0);
        let relay = Relay::new(config)?;
        let listener = TcpListener::bind(args.listen)
            .await
            .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
        let listen = listener.local_addr()?;
        info!(%listen, cloud = %args.cloud, "relay started");
        println!("relay listening on {listen} for one device at a time; Ctrl-C stops it");
        let relay = Arc::new(relay);
        let mut current: Option<RunningLink> = None;
        loop {
            let link = tokio::select! {
                accepted = BleLink::accept(&listener, args.mtu) => accepted?,
                _ = tokio::signal::ctrl_c() => break,
            };
            // The newest link wins: a device reconnects after its old link died, and an
            // idle or silent client cannot hold the relay against the device.
            if let Some(previous) = current.take() {
                previous.stop().await;
            }
            current = Some(RunningLink::start(Arc::clone(&relay), link));
        }
        if let Some(previous) = current.take() {
            previous.stop().await;
        }
        info!("relay stopped");
        Ok(())
    })
}

/// One device link that the relay serves in a task of its own.
struct RunningLink {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<medtunnel_relay::StopReason, medtunnel_relay::RelayError>>,
}

impl RunningLink {
    fn start(relay: Arc<Relay>, link: BleLink) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            relay
                .run(FrameLink::new(link), async move {
                    let _ = stopped.changed().await;
                })
                .await
        });
        RunningLink { stop, task }
    }

    /// Stops the link if it still runs and logs how it ended. A device that sent a bad
    /// packet or dropped mid-packet ended only its own link.
    async fn stop(self) {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(Ok(reason)) => info!(?reason, "device link ended"),
            Ok(Err(error)) => info!(%error, "device link failed"),
            Err(error) => info!(%error, "device link task ended abnormally"),
        }
    }
}

#[derive(Args)]
pub struct DeviceArgs {
    /// Device identity file written by `medtunnel provision` (`DIR/devices/<id>.json`).
    #[arg(long)]
    identity: PathBuf,
    /// Address of the relay's Bluetooth LE link.
    #[arg(long, value_parser = loopback_addr, default_value = "127.0.0.1:9100")]
    relay: SocketAddr,
    /// File for the device's counters across restarts; default: the identity file with
    /// the extension `.state.json`.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Trace to replay: an iglu CSV file (`id,time,gl`) or Nightscout entries (`.json`).
    /// Without it, a generated trace of one day is used.
    #[arg(long)]
    cgm: Option<PathBuf>,
    /// Subject of the trace file to replay; default: the first one.
    #[arg(long)]
    subject: Option<String>,
    /// Trace seconds replayed per real second; 0 sends as fast as acknowledgements allow.
    #[arg(long, value_parser = crate::args::speed, default_value_t = 0.0)]
    speed: f64,
    /// Link MTU in bytes (20 to 244).
    #[arg(long, value_parser = mtu, default_value = "185")]
    mtu: usize,
    /// Readings of the generated trace used without --cgm, 5 minutes apart.
    #[arg(long, value_parser = crate::args::reading_count, default_value_t = 288)]
    generated_readings: usize,
    /// Time limit in seconds; the device exits with an error if readings are still
    /// unacknowledged then.
    #[arg(long, default_value_t = 600)]
    deadline_s: u64,
}

pub fn run_device(args: DeviceArgs) -> CommandResult {
    let keystore = SoftwareKeyStore::load(&args.identity)?;
    let trace = match &args.cgm {
        Some(path) => read_trace_file(path)?,
        None => medtunnel_records::trace::generated_trace(1, args.generated_readings, 7),
    };
    let subjects = by_subject(&trace)?;
    let subject = match &args.subject {
        Some(name) => subjects
            .into_iter()
            .find(|subject| &subject.subject == name)
            .ok_or_else(|| format!("subject {name:?} is not in the trace"))?,
        None => subjects
            .into_iter()
            .next()
            .ok_or("the trace has no readings")?,
    };
    let state_path = args
        .state
        .clone()
        .unwrap_or_else(|| args.identity.with_extension("state.json"));
    let state = PersistentState::new(state_path);
    let mut config = CgmConfig::new(args.relay, subject.readings);
    config.speed = args.speed;
    config.mtu = args.mtu;
    config.deadline = std::time::Duration::from_secs(args.deadline_s);
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(run_cgm(
        &keystore,
        &state,
        config,
        Arc::new(CgmProgress::default()),
    ))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.completed {
        let problem = report
            .last_problem
            .as_deref()
            .map(|problem| format!("; last problem: {problem}"))
            .unwrap_or_default();
        return Err(format!(
            "{} of {} readings acknowledged before the deadline{problem}",
            report.acked, report.readings
        )
        .into());
    }
    Ok(())
}
