//! A continuous glucose monitor that replays a trace through the tunnel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use medtunnel_proto::channel::DeviceChannel;
use medtunnel_proto::crypto::RustCrypto;
use medtunnel_proto::error::Error as ChannelError;
use medtunnel_proto::queue::RetransmitQueue;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use medtunnel_records::CgmMeasurement;
use medtunnel_relay::{BleError, BleLink, FrameLink};
use rand::rngs::OsRng;
use tokio::time::{sleep, Instant};
use tracing::{debug, info, warn};

use crate::keystore::KeyStore;
use crate::state::{PersistentState, StateError};

/// Maximum number of unacknowledged readings in the device's queue: its send window.
pub const QUEUE_SLOTS: usize = 128;
/// Largest encoded record the queue holds.
const QUEUE_RECORD_LEN: usize = 64;
/// Interval of the device's timer checks.
const TICK: Duration = Duration::from_millis(10);
/// Retransmission timeouts in a row after which the device assumes the cloud lost its
/// session (for example after the relay reconnected) and starts a new handshake.
const TIMEOUTS_BEFORE_HANDSHAKE: u32 = 2;

/// Settings of one simulated CGM.
#[derive(Debug, Clone)]
pub struct CgmConfig {
    /// Address where the relay accepts the emulated Bluetooth LE link.
    pub relay_addr: SocketAddr,
    /// Link MTU in bytes, 20 to 244.
    pub mtu: usize,
    /// Readings to send, in order.
    pub readings: Vec<CgmMeasurement>,
    /// Trace seconds replayed per real second; 0 sends as fast as acknowledgements allow.
    pub speed: f64,
    /// Time without acknowledgement progress after which held readings are resent.
    pub retransmit_timeout: Duration,
    /// Time to wait for a handshake response before starting over.
    pub handshake_timeout: Duration,
    /// Idle time after which the device sends a heartbeat.
    pub heartbeat_interval: Duration,
    /// Wait between attempts to connect to the relay.
    pub reconnect_delay: Duration,
    /// Overall time limit. When it passes, the report marks the replay as not completed.
    pub deadline: Duration,
    /// Key limits of the tunnel.
    pub limits: Limits,
}

impl CgmConfig {
    /// Settings for a replay as fast as possible with timeouts suited to loopback.
    pub fn new(relay_addr: SocketAddr, readings: Vec<CgmMeasurement>) -> Self {
        CgmConfig {
            relay_addr,
            mtu: 185,
            readings,
            speed: 0.0,
            retransmit_timeout: Duration::from_millis(500),
            handshake_timeout: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(5),
            reconnect_delay: Duration::from_millis(200),
            deadline: Duration::from_secs(600),
            limits: Limits::default(),
        }
    }
}

/// Live counters that a progress display reads while the device runs.
#[derive(Debug, Default)]
pub struct CgmProgress {
    /// Readings sent at least once.
    pub sent: AtomicU64,
    /// Readings the cloud acknowledged.
    pub acked: AtomicU64,
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CgmReport {
    /// Readings in the trace.
    pub readings: u64,
    /// Readings sent at least once.
    pub sent: u64,
    /// Readings the cloud acknowledged as durably stored.
    pub acked: u64,
    /// True when every reading was acknowledged before the deadline.
    pub completed: bool,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Bytes of initiation frames sent.
    pub handshake_bytes_sent: u64,
    /// Bytes of response frames received.
    pub handshake_bytes_received: u64,
    /// Transport frames sent, data and acknowledgements.
    pub transport_frames_sent: u64,
    /// Bytes of transport frames sent.
    pub transport_bytes_sent: u64,
    /// Data frames sent again after a timeout or a reconnect.
    pub retransmissions: u64,
    /// Frames from the relay that the channel rejected.
    pub frames_rejected: u64,
    /// Connections made to the relay.
    pub connections: u64,
    /// Last problem that kept readings from being acknowledged, for a person to read.
    pub last_problem: Option<String>,
}

/// Failure that stops the device.
#[derive(Debug, thiserror::Error)]
pub enum CgmError {
    /// The persistent state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// A reading does not fit the record format.
    #[error("reading {index} cannot be encoded: {message}")]
    Encode {
        /// Index in the trace.
        index: usize,
        /// Encoder message.
        message: String,
    },
    /// The channel core reported caller misuse, a bug of this simulator.
    #[error("channel misuse: {0}")]
    Channel(ChannelError),
}

/// Replays `config.readings` through the relay until every reading is acknowledged or
/// the deadline passes.
pub async fn run_cgm<K: KeyStore>(
    keystore: &K,
    state: &PersistentState,
    config: CgmConfig,
    progress: Arc<CgmProgress>,
) -> Result<CgmReport, CgmError> {
    let encoded = encode_readings(&config.readings)?;
    let resume = state.load()?;
    let channel = DeviceChannel::new(
        RustCrypto,
        keystore.device_keys(&RustCrypto),
        config.limits,
        resume,
    );
    let mut device = Device {
        device_id: keystore.device_id().to_owned(),
        channel,
        queue: RetransmitQueue::new(),
        state,
        encoded,
        next_index: 0,
        first_seq: resume.stream.tx_next,
        report: CgmReport {
            readings: config.readings.len() as u64,
            ..CgmReport::default()
        },
        progress,
        start: Instant::now(),
        config,
    };
    device.run().await?;
    Ok(device.report)
}

fn encode_readings(readings: &[CgmMeasurement]) -> Result<Vec<Vec<u8>>, CgmError> {
    readings
        .iter()
        .enumerate()
        .map(|(index, reading)| {
            let mut bytes = Vec::new();
            medtunnel_records::Record::CgmMeasurement(*reading)
                .encode_into(&mut bytes)
                .map(|()| bytes)
                .map_err(|error| CgmError::Encode {
                    index,
                    message: error.to_string(),
                })
        })
        .collect()
}

/// Reason a connection to the relay ended.
enum LinkEnd {
    /// The link closed or failed; reconnect.
    Lost,
    /// Every reading was acknowledged, or the deadline passed.
    Finished,
}

/// Timers of one connection.
struct Timers {
    handshake_started: Option<Instant>,
    last_progress: Instant,
    last_sent: Instant,
    timeouts_in_a_row: u32,
}

struct Device<'a> {
    device_id: String,
    channel: DeviceChannel<RustCrypto>,
    queue: RetransmitQueue<QUEUE_SLOTS, QUEUE_RECORD_LEN>,
    state: &'a PersistentState,
    encoded: Vec<Vec<u8>>,
    next_index: usize,
    first_seq: u64,
    report: CgmReport,
    progress: Arc<CgmProgress>,
    start: Instant,
    config: CgmConfig,
}

impl Device<'_> {
    async fn run(&mut self) -> Result<(), CgmError> {
        info!(device_id = %self.device_id, readings = self.encoded.len(), "device started");
        while !self.finished() && !self.past_deadline() {
            let link = match BleLink::connect(self.config.relay_addr, self.config.mtu).await {
                Ok(link) => link,
                Err(error) => {
                    debug!(device_id = %self.device_id, %error, "relay not reachable; retrying");
                    self.report.last_problem = Some(format!(
                        "relay at {} not reachable: {error}",
                        self.config.relay_addr
                    ));
                    sleep(self.config.reconnect_delay).await;
                    continue;
                }
            };
            self.report.connections += 1;
            let mut link = FrameLink::new(link);
            match self.connection(&mut link).await? {
                LinkEnd::Finished => break,
                LinkEnd::Lost => sleep(self.config.reconnect_delay).await,
            }
        }
        self.report.completed = self.finished();
        self.state.save(&self.channel.resume_state(), true)?;
        info!(
            device_id = %self.device_id,
            acked = self.report.acked,
            completed = self.report.completed,
            "device stopped"
        );
        Ok(())
    }

    fn finished(&self) -> bool {
        self.next_index == self.encoded.len() && self.queue.is_empty()
    }

    fn past_deadline(&self) -> bool {
        self.start.elapsed() >= self.config.deadline
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs one connection to the relay: a fresh handshake, then data.
    async fn connection(&mut self, link: &mut FrameLink) -> Result<LinkEnd, CgmError> {
        let mut timers = Timers {
            handshake_started: None,
            last_progress: Instant::now(),
            last_sent: Instant::now(),
            timeouts_in_a_row: 0,
        };
        // The relay opens a new cloud connection for every device link, and the cloud
        // binds a session to its connection, so every link starts with a handshake.
        if self.start_handshake(link, &mut timers).await.is_err() {
            return Ok(LinkEnd::Lost);
        }
        loop {
            tokio::select! {
                received = link.recv_frame() => match received {
                    Ok(Some(mut frame)) => {
                        if self.on_frame(link, &mut frame, &mut timers).await.is_err() {
                            return Ok(LinkEnd::Lost);
                        }
                    }
                    Ok(None) | Err(_) => return Ok(LinkEnd::Lost),
                },
                () = sleep(TICK) => {
                    match self.on_tick(link, &mut timers).await {
                        Ok(true) => return Ok(LinkEnd::Finished),
                        Ok(false) => {}
                        Err(TickError::Link) => return Ok(LinkEnd::Lost),
                        Err(TickError::Fatal(error)) => return Err(error),
                    }
                }
            }
        }
    }

    async fn start_handshake(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), BleError> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let initiation = match self.channel.start_handshake(&mut OsRng, &mut frame) {
            Ok(initiation) => initiation,
            Err(error) => {
                warn!(device_id = %self.device_id, %error, "cannot start a handshake");
                return Ok(());
            }
        };
        // The counter must be on disk before the initiation leaves the device, so a
        // reboot never reuses it.
        if let Err(error) = self.state.save(&self.channel.resume_state(), true) {
            warn!(device_id = %self.device_id, %error, "cannot persist the handshake counter");
            return Ok(());
        }
        link.send_frame(&frame[..initiation.len]).await?;
        self.report.handshake_bytes_sent += initiation.len as u64;
        timers.handshake_started = Some(Instant::now());
        timers.last_sent = Instant::now();
        Ok(())
    }

    async fn on_frame(
        &mut self,
        link: &mut FrameLink,
        frame: &mut [u8],
        timers: &mut Timers,
    ) -> Result<(), BleError> {
        let frame_len = frame.len() as u64;
        let now = self.now_ms();
        let incoming = match self.channel.handle_frame(now, frame) {
            Ok(incoming) => incoming,
            Err(error) => {
                self.report.frames_rejected += 1;
                debug!(device_id = %self.device_id, %error, blame = ?error.blame(), "frame rejected");
                return Ok(());
            }
        };
        if let Some(acked) = incoming.acked {
            self.queue.release_below(acked);
            self.report.acked = acked.saturating_sub(self.first_seq);
            self.progress
                .acked
                .store(self.report.acked, Ordering::Relaxed);
            timers.last_progress = Instant::now();
            timers.timeouts_in_a_row = 0;
        }
        if let Some((seq, _payload)) = incoming.data {
            // Commands to a CGM are not defined yet: accept and acknowledge.
            self.channel.acknowledge(seq + 1);
        }
        if incoming.handshake_completed {
            self.report.handshakes += 1;
            self.report.handshake_bytes_received += frame_len;
            timers.handshake_started = None;
            timers.last_progress = Instant::now();
            self.send_ack(link, timers).await?;
            self.resend_all(link, timers).await?;
        } else if incoming.ack_due {
            self.send_ack(link, timers).await?;
        }
        Ok(())
    }

    async fn send_ack(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), BleError> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        if let Ok(len) = self.channel.send_ack(self.now_ms(), &mut frame) {
            self.send_transport(link, &frame[..len], timers).await?;
        }
        Ok(())
    }

    async fn send_transport(
        &mut self,
        link: &mut FrameLink,
        frame: &[u8],
        timers: &mut Timers,
    ) -> Result<(), BleError> {
        link.send_frame(frame).await?;
        self.report.transport_frames_sent += 1;
        self.report.transport_bytes_sent += frame.len() as u64;
        timers.last_sent = Instant::now();
        Ok(())
    }

    /// Resends every held reading, oldest first.
    async fn resend_all(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), BleError> {
        let now = self.now_ms();
        let mut frames = Vec::with_capacity(self.queue.len());
        for (seq, payload) in self.queue.iter() {
            let mut frame = vec![0u8; MAX_FRAME_LEN];
            match self.channel.resend(now, seq, payload, &mut frame) {
                Ok(len) => {
                    frame.truncate(len);
                    frames.push(frame);
                }
                Err(error) => {
                    debug!(device_id = %self.device_id, %error, "cannot resend; waiting for a new session");
                    break;
                }
            }
        }
        for frame in frames {
            self.report.retransmissions += 1;
            self.send_transport(link, &frame, timers).await?;
        }
        Ok(())
    }

    async fn on_tick(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<bool, TickError> {
        if self.finished() || self.past_deadline() {
            return Ok(true);
        }
        let now = self.now_ms();
        if let Some(started) = timers.handshake_started {
            if started.elapsed() >= self.config.handshake_timeout {
                debug!(device_id = %self.device_id, "handshake timed out; starting over");
                self.report.last_problem = Some(format!(
                    "no handshake response within {} ms: the cloud is unreachable from the relay, \
                     or it rejected this device (unknown or revoked key id)",
                    self.config.handshake_timeout.as_millis()
                ));
                self.start_handshake(link, timers).await?;
            }
            if !self.channel.is_established() {
                return Ok(false);
            }
        }
        if self.channel.needs_rekey(now) && timers.handshake_started.is_none() {
            self.start_handshake(link, timers).await?;
        }
        self.send_due_readings(link, timers).await?;
        if !self.queue.is_empty()
            && timers.last_progress.elapsed() >= self.config.retransmit_timeout
        {
            timers.timeouts_in_a_row += 1;
            timers.last_progress = Instant::now();
            if timers.timeouts_in_a_row >= TIMEOUTS_BEFORE_HANDSHAKE
                && timers.handshake_started.is_none()
            {
                debug!(device_id = %self.device_id, "no acknowledgement progress; new handshake");
                timers.timeouts_in_a_row = 0;
                self.start_handshake(link, timers).await?;
            } else {
                self.resend_all(link, timers).await?;
            }
        }
        if timers.last_sent.elapsed() >= self.config.heartbeat_interval {
            self.send_ack(link, timers).await?;
        }
        Ok(false)
    }

    fn reading_due(&self, index: usize) -> bool {
        if self.config.speed <= 0.0 {
            return true;
        }
        let first = self.config.readings[0].device_time_s();
        let offset_s = (self.config.readings[index].device_time_s() - first) as f64;
        self.start.elapsed().as_secs_f64() * self.config.speed >= offset_s
    }

    async fn send_due_readings(
        &mut self,
        link: &mut FrameLink,
        timers: &mut Timers,
    ) -> Result<(), TickError> {
        let mut sent_any = false;
        while self.next_index < self.encoded.len()
            && !self.queue.is_full()
            && self.reading_due(self.next_index)
        {
            let mut frame = [0u8; MAX_FRAME_LEN];
            let payload = &self.encoded[self.next_index];
            let sent = match self.channel.send(self.now_ms(), payload, &mut frame) {
                Ok(sent) => sent,
                Err(ChannelError::NotConnected | ChannelError::KeysExhausted) => break,
                Err(error) => return Err(TickError::Fatal(CgmError::Channel(error))),
            };
            self.queue
                .push(sent.seq, payload)
                .map_err(|error| TickError::Fatal(CgmError::Channel(error)))?;
            self.next_index += 1;
            self.report.sent += 1;
            self.progress
                .sent
                .store(self.report.sent, Ordering::Relaxed);
            self.send_transport(link, &frame[..sent.len], timers)
                .await?;
            sent_any = true;
        }
        if sent_any {
            self.state.save(&self.channel.resume_state(), false)?;
        }
        Ok(())
    }
}

/// Reason a timer step stopped.
enum TickError {
    /// The link failed; reconnect.
    Link,
    /// The device must stop.
    Fatal(CgmError),
}

impl From<BleError> for TickError {
    fn from(_: BleError) -> Self {
        TickError::Link
    }
}

impl From<StateError> for TickError {
    fn from(error: StateError) -> Self {
        TickError::Fatal(CgmError::State(error))
    }
}
