//! The tunnel side shared by the simulated pump and pacemaker: a [`DeviceChannel`] over
//! the relay's [`FrameLink`], the command executor, status reports, telemetry and
//! acknowledgements.
//!
//! After every handshake the device sends a status report with a fresh challenge. Each
//! signed command from the cloud goes through [`CommandExecutor`]: the execution record
//! is saved durably before the command runs, and the [`Acknowledgement`] goes back as a
//! record. Channel health for the executor is measured before the frame that carries the
//! command is processed: a command that arrives after a silence longer than
//! [`TherapyDeviceConfig::max_silence`] finds the channel stale, whatever its own frame
//! proves.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medtunnel_command::executor::DEFAULT_CHALLENGE_LIFETIME_MS;
use medtunnel_command::{
    Acknowledgement, CommandExecutor, DeviceContext, ExecutorConfig, Outcome, Therapy, VerifyingKey,
};
use medtunnel_proto::channel::{DeviceChannel, Health};
use medtunnel_proto::crypto::RustCrypto;
use medtunnel_proto::error::Error as ChannelError;
use medtunnel_proto::queue::RetransmitQueue;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use medtunnel_records::{command_device_id, DeviceStatus, Record, StatusSettings};
use medtunnel_relay::{BleError, BleLink, FrameLink};
use rand::rngs::OsRng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{sleep, Instant};
use tracing::{debug, info, warn};

use crate::keystore::KeyStore;
use crate::state::{PersistentState, StateError};
use crate::therapy_state::{TherapyState, TherapyStateFile};

/// Maximum number of unacknowledged records in the device's queue.
const QUEUE_SLOTS: usize = 32;
/// Largest record the queue holds: a status report with a 24-segment basal profile is
/// 151 bytes.
const QUEUE_RECORD_LEN: usize = 192;
/// Interval of the device's timer checks.
const TICK: Duration = Duration::from_millis(10);

/// A device model that the simulator runs: the executor's [`Therapy`] plus what the
/// device reports and persists.
pub trait SimulatedTherapy: Therapy + Send + Sized {
    /// Settings saved across reboots.
    type Saved: Serialize + DeserializeOwned + Clone + Send;
    /// Settings to save now.
    fn saved(&self) -> Self::Saved;
    /// Rebuilds the model after a reboot.
    fn restore(saved: Self::Saved) -> Self;
    /// Settings for a status report.
    fn status_settings(&self) -> StatusSettings;
    /// Advances the model's own loops (basal delivery, sensing) to `now_ms`.
    fn advance(&mut self, now_ms: u64);
    /// A telemetry record for `now_ms`.
    fn telemetry(&self, now_ms: u64) -> Record;
}

/// Settings of one simulated therapy device.
#[derive(Debug, Clone)]
pub struct TherapyDeviceConfig {
    /// Address where the relay accepts the emulated Bluetooth LE link.
    pub relay_addr: SocketAddr,
    /// Link MTU in bytes, 20 to 244.
    pub mtu: usize,
    /// Public half of the cloud's command-signing key.
    pub command_key: VerifyingKey,
    /// Silence after which the channel counts as stale for the executor.
    pub max_silence: Duration,
    /// Interval of telemetry records.
    pub telemetry_interval: Duration,
    /// Idle time after which the device sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// Time without acknowledgement progress after which held records are resent.
    pub retransmit_timeout: Duration,
    /// Time to wait for a handshake response before starting over.
    pub handshake_timeout: Duration,
    /// Wait between attempts to connect to the relay.
    pub reconnect_delay: Duration,
    /// Lifetime of an issued challenge.
    pub challenge_lifetime: Duration,
    /// Key limits of the tunnel.
    pub limits: Limits,
}

impl TherapyDeviceConfig {
    /// Settings with timeouts suited to loopback: heartbeats every second, a stale
    /// channel after 5 s, telemetry every 5 s.
    pub fn new(relay_addr: SocketAddr, command_key: VerifyingKey) -> Self {
        Self {
            relay_addr,
            mtu: 185,
            command_key,
            max_silence: Duration::from_secs(5),
            telemetry_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_secs(1),
            retransmit_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(2),
            reconnect_delay: Duration::from_millis(200),
            challenge_lifetime: Duration::from_millis(DEFAULT_CHALLENGE_LIFETIME_MS),
            limits: Limits::default(),
        }
    }
}

/// Counters of a run so far. A test or demo reads them while the device runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TherapyDeviceReport {
    /// Boot epoch of this run.
    pub epoch: u32,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Status reports sent.
    pub statuses_sent: u64,
    /// Telemetry records sent.
    pub telemetry_sent: u64,
    /// Commands executed.
    pub commands_executed: u64,
    /// Reject reasons of the commands the executor rejected, in order.
    pub commands_rejected: Vec<String>,
    /// Frames the channel rejected (forged, changed or replayed on the way).
    pub frames_rejected: u64,
    /// Connections made to the relay.
    pub connections: u64,
}

/// Failure that stops the device.
#[derive(Debug, thiserror::Error)]
pub enum TherapyDeviceError {
    /// A state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The channel core reported caller misuse, a bug of this simulator.
    #[error("channel misuse: {0}")]
    Channel(ChannelError),
}

/// Files and live view of one device run.
pub struct TherapyDeviceIo<'a, K> {
    /// Identity.
    pub keystore: &'a K,
    /// Channel counters.
    pub channel_state: &'a PersistentState,
    /// Boot epoch, execution record and settings.
    pub therapy_state: &'a TherapyState,
    /// Live report.
    pub report: Arc<Mutex<TherapyDeviceReport>>,
}

/// Boots the device (incrementing its epoch), then serves the relay until `stop` turns
/// true. `first_boot` is the model used when no therapy state is saved yet.
pub async fn run_therapy_device<K: KeyStore, M: SimulatedTherapy>(
    io: TherapyDeviceIo<'_, K>,
    first_boot: M,
    config: TherapyDeviceConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<TherapyDeviceReport, TherapyDeviceError> {
    let saved = io.therapy_state.load::<M::Saved>()?;
    let (model, mut file) = match saved {
        Some(file) => (M::restore(file.model.clone()), file),
        None => {
            let file = TherapyStateFile {
                boot_epoch: 0,
                last_sequence: 0,
                last_command_id: hex::encode([0u8; 16]),
                model: first_boot.saved(),
            };
            (first_boot, file)
        }
    };
    // The epoch is on disk before anything uses it, so no two boots share one.
    file.boot_epoch = file.boot_epoch.saturating_add(1);
    io.therapy_state.save(&file)?;
    let executor = CommandExecutor::new(
        ExecutorConfig {
            device_id: command_device_id(io.keystore.device_id()),
            epoch: file.boot_epoch,
            command_key: config.command_key,
            challenge_lifetime_ms: duration_ms(config.challenge_lifetime),
        },
        file.execution_record(),
        model,
    );
    let resume = io.channel_state.load()?;
    let mut device = Device {
        device_id: io.keystore.device_id().to_owned(),
        channel: DeviceChannel::new(
            RustCrypto,
            io.keystore.device_keys(&RustCrypto),
            config.limits,
            resume,
        ),
        queue: RetransmitQueue::new(),
        executor,
        file,
        io_state: io.channel_state,
        therapy_state: io.therapy_state,
        report: io.report,
        start: Instant::now(),
        config,
    };
    device.update_report(|r| r.epoch = device.file.boot_epoch);
    device.run(&mut stop).await?;
    Ok(device.snapshot())
}

struct Device<'a, M: SimulatedTherapy> {
    device_id: String,
    channel: DeviceChannel<RustCrypto>,
    queue: RetransmitQueue<QUEUE_SLOTS, QUEUE_RECORD_LEN>,
    executor: CommandExecutor<M>,
    file: TherapyStateFile<M::Saved>,
    io_state: &'a PersistentState,
    therapy_state: &'a TherapyState,
    report: Arc<Mutex<TherapyDeviceReport>>,
    start: Instant,
    config: TherapyDeviceConfig,
}

struct Timers {
    handshake_started: Option<Instant>,
    last_progress: Instant,
    last_sent: Instant,
    last_telemetry: Instant,
}

/// Reason a step stopped.
enum StepError {
    Link,
    Fatal(TherapyDeviceError),
}

impl From<BleError> for StepError {
    fn from(_: BleError) -> Self {
        StepError::Link
    }
}

impl From<StateError> for StepError {
    fn from(error: StateError) -> Self {
        StepError::Fatal(TherapyDeviceError::State(error))
    }
}

impl<M: SimulatedTherapy> Device<'_, M> {
    async fn run(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), TherapyDeviceError> {
        info!(device_id = %self.device_id, epoch = self.file.boot_epoch, "therapy device started");
        while !*stop.borrow() {
            let link = match BleLink::connect(self.config.relay_addr, self.config.mtu).await {
                Ok(link) => link,
                Err(error) => {
                    debug!(device_id = %self.device_id, %error, "relay not reachable; retrying");
                    tokio::select! {
                        _ = stop.changed() => {}
                        () = sleep(self.config.reconnect_delay) => {}
                    }
                    continue;
                }
            };
            self.update_report(|r| r.connections += 1);
            let mut link = FrameLink::new(link);
            match self.connection(&mut link, stop).await {
                Ok(()) | Err(StepError::Link) => {}
                Err(StepError::Fatal(error)) => return Err(error),
            }
            if !*stop.borrow() {
                sleep(self.config.reconnect_delay).await;
            }
        }
        self.io_state.save(&self.channel.resume_state(), true)?;
        info!(device_id = %self.device_id, "therapy device stopped");
        Ok(())
    }

    async fn connection(
        &mut self,
        link: &mut FrameLink,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), StepError> {
        let now = Instant::now();
        let mut timers = Timers {
            handshake_started: None,
            last_progress: now,
            last_sent: now,
            last_telemetry: now,
        };
        self.start_handshake(link, &mut timers).await?;
        loop {
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                received = link.recv_frame() => match received {
                    Ok(Some(mut frame)) => self.on_frame(link, &mut frame, &mut timers).await?,
                    Ok(None) | Err(_) => return Err(StepError::Link),
                },
                () = sleep(TICK) => self.on_tick(link, &mut timers).await?,
            }
        }
    }

    fn now_ms(&self) -> u64 {
        duration_ms(self.start.elapsed())
    }

    async fn start_handshake(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let initiation = match self.channel.start_handshake(&mut OsRng, &mut frame) {
            Ok(initiation) => initiation,
            Err(error) => {
                warn!(device_id = %self.device_id, %error, "cannot start a handshake");
                return Ok(());
            }
        };
        // The counter is on disk before the initiation leaves, so a reboot never reuses it.
        self.io_state.save(&self.channel.resume_state(), true)?;
        link.send_frame(&frame[..initiation.len]).await?;
        timers.handshake_started = Some(Instant::now());
        timers.last_sent = Instant::now();
        Ok(())
    }

    async fn on_frame(
        &mut self,
        link: &mut FrameLink,
        frame: &mut [u8],
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let now = self.now_ms();
        // Health before this frame: a frame released after a long silence must not make
        // the channel look healthy for the command it carries.
        let max_silence = duration_ms(self.config.max_silence);
        let healthy = self.channel.health(now, max_silence) == Health::Healthy;
        let incoming = match self.channel.handle_frame(now, frame) {
            Ok(incoming) => incoming,
            Err(error) => {
                self.update_report(|r| r.frames_rejected += 1);
                debug!(device_id = %self.device_id, %error, blame = ?error.blame(), "frame rejected");
                return Ok(());
            }
        };
        if let Some(acked) = incoming.acked {
            self.queue.release_below(acked);
            timers.last_progress = Instant::now();
        }
        let data = incoming.data.map(|(seq, payload)| (seq, payload.to_vec()));
        let handshake_completed = incoming.handshake_completed;
        let ack_due = incoming.ack_due;
        if let Some((seq, payload)) = data {
            self.on_message(link, seq, &payload, healthy, timers)
                .await?;
        }
        if handshake_completed {
            self.update_report(|r| r.handshakes += 1);
            timers.handshake_started = None;
            timers.last_progress = Instant::now();
            self.send_ack(link, timers).await?;
            self.resend_all(link, timers).await?;
            self.send_status(link, true, timers).await?;
        } else if ack_due {
            self.send_ack(link, timers).await?;
        }
        Ok(())
    }

    /// Handles one message from the cloud and acknowledges it once its effect and reply
    /// are saved.
    async fn on_message(
        &mut self,
        link: &mut FrameLink,
        seq: u64,
        payload: &[u8],
        healthy: bool,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        match Record::decode(payload) {
            Ok(Record::SignedCommand(command)) => {
                let ack = self.execute(command.as_bytes(), healthy)?;
                self.channel.acknowledge(seq + 1);
                self.send_record(link, &Record::CommandAck(ack), timers)
                    .await?;
            }
            Ok(Record::StatusRequest(request)) => {
                self.channel.acknowledge(seq + 1);
                self.send_status(link, request.challenge_wanted, timers)
                    .await?;
            }
            Ok(other) => {
                debug!(device_id = %self.device_id, seq, record_type = ?other.record_type(), "record not for this device; ignored");
                self.channel.acknowledge(seq + 1);
            }
            Err(error) => {
                debug!(device_id = %self.device_id, seq, %error, "malformed record from the cloud; ignored");
                self.channel.acknowledge(seq + 1);
            }
        }
        Ok(())
    }

    /// Runs the executor's checks, saves the execution record, executes, and saves the
    /// settings afterwards.
    fn execute(
        &mut self,
        command: &[u8],
        channel_healthy: bool,
    ) -> Result<Acknowledgement, StepError> {
        let now_ms = self.now_ms();
        self.executor.therapy_mut().advance(now_ms);
        let ctx = DeviceContext {
            now_ms,
            channel_healthy,
        };
        let ack = match self.executor.prepare(command, ctx) {
            Err(ack) => ack,
            Ok(prepared) => {
                self.file
                    .set_execution_record(&prepared.record_to_persist());
                self.therapy_state.save(&self.file)?;
                prepared.execute()
            }
        };
        match ack.outcome {
            Outcome::Executed(_) => {
                self.file.model = self.executor.therapy().saved();
                self.therapy_state.save(&self.file)?;
                self.update_report(|r| r.commands_executed += 1);
                info!(device_id = %self.device_id, sequence = ack.sequence, "command executed");
            }
            Outcome::Rejected(reason) => {
                let name = format!("{reason:?}");
                info!(device_id = %self.device_id, sequence = ack.sequence, reason = %name, "command rejected");
                self.update_report(|r| r.commands_rejected.push(name));
            }
        }
        Ok(ack)
    }

    async fn send_status(
        &mut self,
        link: &mut FrameLink,
        with_challenge: bool,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let now_ms = self.now_ms();
        self.executor.therapy_mut().advance(now_ms);
        let challenge = with_challenge.then(|| self.executor.issue_challenge(&mut OsRng, now_ms));
        let last = *self.executor.last_executed();
        let status = DeviceStatus {
            epoch: self.file.boot_epoch,
            session_clock_ms: now_ms,
            last_executed_sequence: last.sequence,
            last_executed_command_id: last.command_id,
            challenge,
            settings: self.executor.therapy().status_settings(),
        };
        self.update_report(|r| r.statuses_sent += 1);
        self.send_record(link, &Record::DeviceStatus(status), timers)
            .await
    }

    async fn send_record(
        &mut self,
        link: &mut FrameLink,
        record: &Record,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let mut payload = Vec::with_capacity(record.encoded_len());
        if let Err(error) = record.encode_into(&mut payload) {
            warn!(device_id = %self.device_id, %error, "record not encodable; dropped");
            return Ok(());
        }
        if self.queue.is_full() {
            debug!(device_id = %self.device_id, "send queue full; record dropped");
            return Ok(());
        }
        let mut frame = [0u8; MAX_FRAME_LEN];
        let sent = match self.channel.send(self.now_ms(), &payload, &mut frame) {
            Ok(sent) => sent,
            Err(ChannelError::NotConnected | ChannelError::KeysExhausted) => return Ok(()),
            Err(error) => return Err(StepError::Fatal(TherapyDeviceError::Channel(error))),
        };
        self.queue
            .push(sent.seq, &payload)
            .map_err(|error| StepError::Fatal(TherapyDeviceError::Channel(error)))?;
        self.io_state.save(&self.channel.resume_state(), false)?;
        link.send_frame(&frame[..sent.len]).await?;
        timers.last_sent = Instant::now();
        Ok(())
    }

    async fn send_ack(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        if let Ok(len) = self.channel.send_ack(self.now_ms(), &mut frame) {
            self.io_state.save(&self.channel.resume_state(), false)?;
            link.send_frame(&frame[..len]).await?;
            timers.last_sent = Instant::now();
        }
        Ok(())
    }

    async fn resend_all(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let now = self.now_ms();
        let mut frames = Vec::with_capacity(self.queue.len());
        for (seq, payload) in self.queue.iter() {
            let mut frame = vec![0u8; MAX_FRAME_LEN];
            match self.channel.resend(now, seq, payload, &mut frame) {
                Ok(len) => {
                    frame.truncate(len);
                    frames.push(frame);
                }
                Err(_) => break,
            }
        }
        for frame in frames {
            link.send_frame(&frame).await?;
            timers.last_sent = Instant::now();
        }
        Ok(())
    }

    async fn on_tick(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), StepError> {
        let now = self.now_ms();
        self.executor.therapy_mut().advance(now);
        if let Some(started) = timers.handshake_started {
            if started.elapsed() >= self.config.handshake_timeout {
                debug!(device_id = %self.device_id, "handshake timed out; starting over");
                self.start_handshake(link, timers).await?;
            }
            if !self.channel.is_established() {
                return Ok(());
            }
        }
        if self.channel.needs_rekey(now) && timers.handshake_started.is_none() {
            self.start_handshake(link, timers).await?;
        }
        if !self.queue.is_empty()
            && timers.last_progress.elapsed() >= self.config.retransmit_timeout
        {
            timers.last_progress = Instant::now();
            self.resend_all(link, timers).await?;
        }
        if timers.last_telemetry.elapsed() >= self.config.telemetry_interval {
            timers.last_telemetry = Instant::now();
            let record = self.executor.therapy().telemetry(now);
            self.update_report(|r| r.telemetry_sent += 1);
            self.send_record(link, &record, timers).await?;
        }
        if timers.last_sent.elapsed() >= self.config.heartbeat_interval {
            self.send_ack(link, timers).await?;
        }
        Ok(())
    }

    fn update_report(&self, change: impl FnOnce(&mut TherapyDeviceReport)) {
        // The report is plain counters, valid after a panic elsewhere.
        let mut report = self
            .report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut report);
    }

    fn snapshot(&self) -> TherapyDeviceReport {
        self.report
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
