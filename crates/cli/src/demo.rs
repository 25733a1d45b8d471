//! `medtunnel demo`: the whole pipeline in one process on loopback.
//!
//! Steps: read or generate a trace, then provision a cloud and one CGM per subject. Start
//! the gateway, one relay and one simulated CGM per subject, and wait until every reading
//! is acknowledged. Finally compare what the cloud stored with the trace and summarize.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use medtunnel_cloud::{Gateway, GatewayStatsSnapshot};
use medtunnel_device::{
    run_cgm, CgmConfig, CgmProgress, CgmReport, PersistentState, SoftwareKeyStore,
};
use medtunnel_proto::wire::{INITIATION_LEN, RESPONSE_LEN, TRANSPORT_OVERHEAD};
use medtunnel_relay::{
    BleLink, CaCertificate, FaultKind, FrameLink, Relay, RelayConfig, RelayStatsSnapshot,
};
use medtunnel_store::provision::{device_identity_path, provision_cloud, provision_devices};
use medtunnel_store::{DeviceModel, Store};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::mtu;
use crate::cloud::{gateway_config, TLS_DIR};
use crate::faults::FaultArgs;
use crate::provision::DATABASE_FILE;
use crate::trace_input::{by_subject, read_trace_file, SubjectTrace};
use crate::CommandResult;

/// Readings per subject of the built-in trace: one day at 5-minute sampling.
const GENERATED_READINGS: usize = 288;
/// Subjects of the built-in trace.
const GENERATED_SUBJECTS: usize = 5;

#[derive(Args)]
pub struct DemoArgs {
    /// Trace to replay: an iglu CSV file (`id,time,gl`) or Nightscout entries (`.json`).
    /// Without it, a built-in generated trace of 5 subjects over one day is used.
    #[arg(long)]
    cgm: Option<PathBuf>,
    /// Write the summary as JSON to this file as well.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Data directory for the cloud database and key files; must be new or empty.
    /// Default: a new folder under the system's temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Link MTU of the emulated Bluetooth LE links, in bytes (20 to 244).
    #[arg(long, value_parser = mtu, default_value = "185")]
    mtu: usize,
    /// Trace seconds replayed per real second; 0 replays as fast as acknowledgements allow.
    #[arg(long, value_parser = crate::args::speed, default_value_t = 0.0)]
    speed: f64,
    /// Subjects of the built-in trace (without --cgm).
    #[arg(long, value_parser = crate::args::subject_count, default_value_t = GENERATED_SUBJECTS)]
    subjects: usize,
    /// Readings per subject of the built-in trace (without --cgm), 5 minutes apart.
    #[arg(long, value_parser = crate::args::reading_count, default_value_t = GENERATED_READINGS)]
    readings_per_subject: usize,
    /// Skip the therapy scenario (an insulin pump and a pacemaker receiving settings
    /// changes through the policy, signing and audit path).
    #[arg(long)]
    no_therapy: bool,
    /// Time limit for the replay, in seconds.
    #[arg(long, default_value_t = 600)]
    deadline_s: u64,
    #[command(flatten)]
    faults: FaultArgs,
}

/// The demo's result, printed and optionally written as JSON.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Simulated devices, one per trace subject.
    pub devices: usize,
    /// Readings in the trace.
    pub readings_in_trace: u64,
    /// Readings the devices sent at least once.
    pub readings_sent: u64,
    /// Readings the cloud stored.
    pub readings_stored: u64,
    /// Trace readings missing from the cloud or stored with another value or time.
    pub readings_lost: u64,
    /// Stored readings that are not in the trace (never expected to be non-zero).
    pub readings_unexpected: u64,
    /// Readings the cloud received again and did not store twice.
    pub duplicates_suppressed: u64,
    /// Frames rejected by the gateway, the devices or the relays' reassemblers.
    pub frames_rejected: u64,
    /// Handshakes completed by the devices.
    pub handshakes: u64,
    /// Bytes of one handshake on the wire: initiation plus response.
    pub handshake_bytes: usize,
    /// Bytes each transport frame adds to its padded record.
    pub transport_overhead_bytes: usize,
    /// Transport bytes the devices sent per reading stored, acknowledgements included.
    pub device_bytes_per_reading: f64,
    /// Data frames the devices sent again.
    pub retransmissions: u64,
    /// Faults the relays injected.
    pub faults_injected: u64,
    /// Faults the relays injected, by kind.
    pub faults_by_kind: std::collections::BTreeMap<String, u64>,
    /// Frames rejected by the gateway.
    pub frames_rejected_by_gateway: u64,
    /// Initiations the gateway rejected (a replayed initiation is stale).
    pub handshakes_rejected_by_gateway: u64,
    /// Frames rejected by the devices.
    pub frames_rejected_by_devices: u64,
    /// Packets rejected by the relays' reassemblers.
    pub fragments_rejected_by_relays: u64,
    /// Frames the gateway received ahead of a missing sequence number (each one a gap
    /// event; the sender resends them after the missing one).
    pub frames_after_gap: u64,
    /// Wall-clock time of the replay, in seconds.
    pub elapsed_s: f64,
    /// Readings stored per second of the replay.
    pub readings_per_second: f64,
    /// Data directory, for `medtunnel readings --dir`.
    pub data_dir: PathBuf,
    /// Outcomes of the therapy scenario, unless it was skipped.
    pub therapy: Option<crate::therapy_demo::TherapySummary>,
    /// Device that replayed each trace subject.
    pub subjects: Vec<SubjectDevice>,
}

/// A trace subject and the device that replayed it.
#[derive(Debug, Serialize)]
pub struct SubjectDevice {
    /// Subject id from the trace.
    pub subject: String,
    /// Device id in the cloud.
    pub device_id: String,
}

pub fn run(args: DemoArgs) -> CommandResult {
    let trace = match &args.cgm {
        Some(path) => read_trace_file(path)?,
        None => {
            medtunnel_records::trace::generated_trace(args.subjects, args.readings_per_subject, 7)
        }
    };
    let subjects = by_subject(&trace)?;
    if subjects.is_empty() {
        return Err("the trace has no readings".into());
    }
    let dir = data_dir(args.dir.as_deref())?;
    let runtime = tokio::runtime::Runtime::new()?;
    let summary = runtime.block_on(run_pipeline(&args, &subjects, &dir))?;
    print_summary(&summary);
    if let Some(path) = &args.summary_json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n")
            .map_err(|error| format!("cannot write summary to {}: {error}", path.display()))?;
    }
    if summary.readings_lost > 0 || summary.readings_unexpected > 0 {
        return Err(format!(
            "the cloud's data differs from the trace: {} readings missing or changed, {} unexpected",
            summary.readings_lost, summary.readings_unexpected
        )
        .into());
    }
    Ok(())
}

fn data_dir(requested: Option<&Path>) -> Result<PathBuf, String> {
    let dir = match requested {
        Some(dir) => dir.to_owned(),
        None => std::env::temp_dir().join(format!(
            "medtunnel-demo-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
        )),
    };
    if dir.exists() && std::fs::read_dir(&dir).map_or(true, |mut entries| entries.next().is_some())
    {
        return Err(format!(
            "data directory {} exists and is not empty; choose a new one",
            dir.display()
        ));
    }
    crate::provision::create_private_dir(&dir)?;
    Ok(dir)
}

/// Running relays and devices of one demo.
struct Fleet {
    relays: Vec<(Arc<Relay>, JoinHandle<()>)>,
    devices: Vec<JoinHandle<Result<CgmReport, medtunnel_device::CgmError>>>,
    progress: Vec<Arc<CgmProgress>>,
}

async fn run_pipeline(
    args: &DemoArgs,
    subjects: &[SubjectTrace],
    dir: &Path,
) -> Result<Summary, Box<dyn std::error::Error + Send + Sync>> {
    let device_ids = provision(dir, subjects.len())?;
    let gateway = Gateway::bind(gateway_config(dir, "127.0.0.1:0".parse()?)?).await?;
    let cloud_url = format!("wss://{}/tunnel", gateway.local_addr());
    let gateway_stats = gateway.stats();
    let gateway = gateway.spawn();
    let (stop_relays, relays_stopped) = watch::channel(false);
    let started = Instant::now();
    let fleet = start_fleet(args, subjects, dir, &device_ids, &cloud_url, relays_stopped).await?;
    let total: u64 = subjects
        .iter()
        .map(|subject| subject.readings.len() as u64)
        .sum();
    let reports = watch_progress(fleet.devices, &fleet.progress, total).await?;
    let elapsed_s = started.elapsed().as_secs_f64();

    let _ = stop_relays.send(true);
    let mut relay_stats = Vec::new();
    for (relay, task) in fleet.relays {
        let _ = task.await;
        relay_stats.push(relay.stats().snapshot());
    }
    let gateway_snapshot = gateway_stats.snapshot();
    let therapy = if args.no_therapy {
        None
    } else {
        let ca = dir.join(TLS_DIR).join(medtunnel_cloud::tls::CERT_FILE);
        Some(crate::therapy_demo::run_therapy_scenario(dir, gateway.local_addr(), &ca).await?)
    };
    gateway.shutdown().await?;

    let comparison = compare_with_trace(dir, subjects, &device_ids)?;
    let mut summary = summarize(
        subjects.len(),
        total,
        &reports,
        &relay_stats,
        &gateway_snapshot,
        comparison,
        elapsed_s,
        dir,
    );
    summary.therapy = therapy;
    summary.subjects = subjects
        .iter()
        .zip(&device_ids)
        .map(|(subject, device_id)| SubjectDevice {
            subject: subject.subject.clone(),
            device_id: device_id.clone(),
        })
        .collect();
    Ok(summary)
}

fn provision(
    dir: &Path,
    count: usize,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut store = Store::open(dir.join(DATABASE_FILE))?;
    provision_cloud(dir, &mut store)?;
    let devices = provision_devices(dir, &mut store, DeviceModel::Cgm, count, "cgm-")?;
    Ok(devices
        .into_iter()
        .map(|device| device.device_id.clone())
        .collect())
}

async fn start_fleet(
    args: &DemoArgs,
    subjects: &[SubjectTrace],
    dir: &Path,
    device_ids: &[String],
    cloud_url: &str,
    relays_stopped: watch::Receiver<bool>,
) -> Result<Fleet, Box<dyn std::error::Error + Send + Sync>> {
    let ca = CaCertificate::PemFile(dir.join(TLS_DIR).join(medtunnel_cloud::tls::CERT_FILE));
    let mut fleet = Fleet {
        relays: Vec::new(),
        devices: Vec::new(),
        progress: Vec::new(),
    };
    for (index, (subject, device_id)) in subjects.iter().zip(device_ids).enumerate() {
        let mut config = RelayConfig::new(cloud_url, ca.clone());
        config.faults = args.faults.config(index as u64);
        let relay = Arc::new(Relay::new(config)?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let relay_addr = listener.local_addr()?;
        let task = tokio::spawn(serve_relay(
            Arc::clone(&relay),
            listener,
            args.mtu,
            relays_stopped.clone(),
        ));
        fleet.relays.push((relay, task));

        let keystore = SoftwareKeyStore::load(&device_identity_path(dir, device_id))?;
        let state =
            PersistentState::new(dir.join("devices").join(format!("{device_id}.state.json")));
        let mut config = CgmConfig::new(relay_addr, subject.readings.clone());
        config.mtu = args.mtu;
        config.speed = args.speed;
        config.deadline = Duration::from_secs(args.deadline_s);
        let progress = Arc::new(CgmProgress::default());
        fleet.progress.push(Arc::clone(&progress));
        fleet.devices.push(tokio::spawn(async move {
            run_cgm(&keystore, &state, config, progress).await
        }));
    }
    Ok(fleet)
}

/// Accepts the device's link again and again (it reconnects after failures) until the
/// demo stops.
async fn serve_relay(
    relay: Arc<Relay>,
    listener: TcpListener,
    mtu: usize,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let link = tokio::select! {
            accepted = BleLink::accept(&listener, mtu) => match accepted {
                Ok(link) => link,
                Err(error) => {
                    tracing::debug!(%error, "relay could not accept the device link");
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let mut stop = stopped.clone();
        let result = relay
            .run(FrameLink::new(link), async move {
                let _ = stop.changed().await;
            })
            .await;
        match result {
            Ok(medtunnel_relay::StopReason::Shutdown) => return,
            Ok(medtunnel_relay::StopReason::DeviceClosed) => {}
            Err(error) => tracing::debug!(%error, "relay ended the device link"),
        }
    }
}

async fn watch_progress(
    devices: Vec<JoinHandle<Result<CgmReport, medtunnel_device::CgmError>>>,
    progress: &[Arc<CgmProgress>],
    total: u64,
) -> Result<Vec<CgmReport>, Box<dyn std::error::Error + Send + Sync>> {
    let interactive = std::io::stderr().is_terminal();
    let mut all = Box::pin(join_devices(devices));
    let mut ticker =
        tokio::time::interval(Duration::from_millis(if interactive { 200 } else { 5000 }));
    loop {
        tokio::select! {
            reports = &mut all => {
                draw_progress(progress, total, interactive);
                if interactive {
                    eprintln!();
                }
                return reports;
            }
            _ = ticker.tick() => draw_progress(progress, total, interactive),
        }
    }
}

/// Error type of the demo's steps.
type DemoError = Box<dyn std::error::Error + Send + Sync>;

/// Waits for every device in turn and collects the reports.
async fn join_devices(
    devices: Vec<JoinHandle<Result<CgmReport, medtunnel_device::CgmError>>>,
) -> Result<Vec<CgmReport>, DemoError> {
    let mut reports = Vec::with_capacity(devices.len());
    for device in devices {
        reports.push(device.await??);
    }
    Ok(reports)
}

fn draw_progress(progress: &[Arc<CgmProgress>], total: u64, interactive: bool) {
    let sent: u64 = progress
        .iter()
        .map(|p| p.sent.load(Ordering::Relaxed))
        .sum();
    let acked: u64 = progress
        .iter()
        .map(|p| p.acked.load(Ordering::Relaxed))
        .sum();
    let width = 30u64;
    let filled = (acked * width).checked_div(total).unwrap_or(width);
    let bar: String = (0..width)
        .map(|i| if i < filled { '#' } else { '.' })
        .collect();
    let line = format!("[{bar}] {acked}/{total} readings stored, {sent} sent");
    let mut stderr = std::io::stderr();
    if interactive {
        let _ = write!(stderr, "\r{line}");
    } else {
        let _ = writeln!(stderr, "{line}");
    }
    let _ = stderr.flush();
}

/// Result of comparing the cloud's readings with the trace.
struct Comparison {
    stored: u64,
    /// Trace readings missing from the cloud or stored with another time or value.
    lost: u64,
    /// Stored readings that match no trace reading.
    unexpected: u64,
}

fn compare_with_trace(
    dir: &Path,
    subjects: &[SubjectTrace],
    device_ids: &[String],
) -> Result<Comparison, Box<dyn std::error::Error + Send + Sync>> {
    let store = Store::open(dir.join(DATABASE_FILE))?;
    let mut stored_total = 0u64;
    let mut lost = 0u64;
    let mut unexpected = 0u64;
    for (subject, device_id) in subjects.iter().zip(device_ids) {
        let stored = store.readings(device_id, None, None)?;
        stored_total += stored.len() as u64;
        let mut stored_keys: Vec<(i64, u16)> = stored
            .iter()
            .map(|reading| (reading.device_time_s, reading.measurement.glucose_mg_dl))
            .collect();
        stored_keys.sort_unstable();
        let mut expected: Vec<(i64, u16)> = subject
            .readings
            .iter()
            .map(|reading| (reading.device_time_s(), reading.glucose_mg_dl))
            .collect();
        expected.sort_unstable();
        lost += count_missing(&expected, &stored_keys);
        unexpected += count_missing(&stored_keys, &expected);
    }
    Ok(Comparison {
        stored: stored_total,
        lost,
        unexpected,
    })
}

/// Counts entries of sorted `expected` not matched one for one in sorted `actual`.
fn count_missing(expected: &[(i64, u16)], actual: &[(i64, u16)]) -> u64 {
    let mut missing = 0;
    let mut at = 0;
    for item in expected {
        while at < actual.len() && actual[at] < *item {
            at += 1;
        }
        if at < actual.len() && actual[at] == *item {
            at += 1;
        } else {
            missing += 1;
        }
    }
    missing
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    devices: usize,
    total: u64,
    reports: &[CgmReport],
    relays: &[RelayStatsSnapshot],
    gateway: &GatewayStatsSnapshot,
    comparison: Comparison,
    elapsed_s: f64,
    dir: &Path,
) -> Summary {
    let sum = |field: fn(&CgmReport) -> u64| reports.iter().map(field).sum::<u64>();
    let device_bytes = sum(|report| report.transport_bytes_sent + report.handshake_bytes_sent);
    let gateway_rejected = gateway.frames_rejected.malformed
        + gateway.frames_rejected.peer
        + gateway.frames_rejected.caller
        + gateway.frames_rejected.exhausted
        + gateway.frames_without_session;
    let handshakes_rejected = gateway.handshakes_rejected.unknown_key_id
        + gateway.handshakes_rejected.revoked
        + gateway.handshakes_rejected.mac1
        + gateway.handshakes_rejected.stale_counter
        + gateway.handshakes_rejected.failed;
    let relay_rejected: u64 = relays.iter().map(|relay| relay.fragments_rejected).sum();
    let device_rejected = sum(|report| report.frames_rejected);
    let faults_by_kind = FaultKind::ALL
        .iter()
        .map(|&kind| {
            let count = relays.iter().map(|relay| relay.faults(kind)).sum();
            (kind.name().to_owned(), count)
        })
        .collect();
    let stored = comparison.stored;
    Summary {
        devices,
        readings_in_trace: total,
        readings_sent: sum(|report| report.sent),
        readings_stored: stored,
        readings_lost: comparison.lost,
        readings_unexpected: comparison.unexpected,
        duplicates_suppressed: gateway.duplicates_suppressed,
        frames_rejected: gateway_rejected + handshakes_rejected + device_rejected + relay_rejected,
        frames_rejected_by_gateway: gateway_rejected,
        handshakes_rejected_by_gateway: handshakes_rejected,
        frames_rejected_by_devices: device_rejected,
        fragments_rejected_by_relays: relay_rejected,
        faults_by_kind,
        handshakes: sum(|report| report.handshakes),
        handshake_bytes: INITIATION_LEN + RESPONSE_LEN,
        transport_overhead_bytes: TRANSPORT_OVERHEAD,
        device_bytes_per_reading: if stored == 0 {
            0.0
        } else {
            device_bytes as f64 / stored as f64
        },
        retransmissions: sum(|report| report.retransmissions),
        faults_injected: relays
            .iter()
            .map(|relay| relay.faults_injected.iter().sum::<u64>())
            .sum(),
        frames_after_gap: gateway.gaps_detected,
        elapsed_s,
        readings_per_second: if elapsed_s > 0.0 {
            stored as f64 / elapsed_s
        } else {
            0.0
        },
        data_dir: dir.to_owned(),
        therapy: None,
        subjects: Vec::new(),
    }
}

fn print_summary(summary: &Summary) {
    println!("medtunnel demo summary");
    println!("  devices                  {}", summary.devices);
    println!("  readings in trace        {}", summary.readings_in_trace);
    println!("  readings sent            {}", summary.readings_sent);
    println!("  readings stored          {}", summary.readings_stored);
    println!("  readings lost            {}", summary.readings_lost);
    println!("  readings unexpected      {}", summary.readings_unexpected);
    println!(
        "  duplicates suppressed    {}",
        summary.duplicates_suppressed
    );
    println!("  frames rejected          {}", summary.frames_rejected);
    println!("  faults injected          {}", summary.faults_injected);
    println!("  retransmissions          {}", summary.retransmissions);
    println!("  frames after a gap       {}", summary.frames_after_gap);
    println!(
        "  handshakes               {} ({} bytes each)",
        summary.handshakes, summary.handshake_bytes
    );
    println!(
        "  overhead per message     {} bytes",
        summary.transport_overhead_bytes
    );
    println!(
        "  device bytes per reading {:.1}",
        summary.device_bytes_per_reading
    );
    println!("  elapsed                  {:.2} s", summary.elapsed_s);
    println!(
        "  readings per second      {:.0}",
        summary.readings_per_second
    );
    println!("  data directory           {}", summary.data_dir.display());
    if let Some(therapy) = &summary.therapy {
        crate::therapy_demo::print_therapy_summary(therapy);
    }
}
