//! Forwarding between one device link and one cloud connection.
//!
//! [`Relay::run`] receives frames from the device, passes them through the upstream
//! fault injector into a bounded buffer and sends the buffer to the cloud in order.
//! Frames from the cloud pass through the downstream fault injector to the device. When
//! the cloud is unreachable or the connection drops, device frames stay in the buffer and
//! the relay reconnects with capped exponential backoff.
//!
//! A frame written to a WebSocket that drops before delivery is lost. The device
//! retransmits every frame that the cloud has not acknowledged end to end.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};

use crate::ble::{BleError, FrameLink};
use crate::buffer::FrameBuffer;
use crate::cloud::{duration_ms, CaCertificate, CloudConnector, CloudError, CloudLink};
use crate::fault::{
    Direction, FaultConfig, FaultConfigError, FaultHandle, FaultInjector, Released,
};
use crate::stats::{self, count_frame};
use crate::MAX_FRAME_LEN;

pub use crate::stats::{RelayStats, RelayStatsSnapshot};

/// Settings of one relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Cloud gateway URL, `wss://` on a loopback host.
    pub cloud_url: String,
    /// CA certificate that the gateway's certificate must chain to.
    pub ca: CaCertificate,
    /// Maximum number of frames buffered for the cloud, at least 1.
    pub buffer_max_frames: usize,
    /// Maximum total bytes buffered for the cloud, at least [`MAX_FRAME_LEN`].
    pub buffer_max_bytes: usize,
    /// Time limit of one connection attempt, handshakes included.
    pub connect_timeout: Duration,
    /// Wait before the first reconnect attempt. Each failed attempt doubles it.
    pub reconnect_initial_delay: Duration,
    /// Maximum wait between reconnect attempts.
    pub reconnect_max_delay: Duration,
    /// Failed attempts after which the relay stops reconnecting until the device sends
    /// the next frame, so a silent device does not make the relay retry forever.
    pub max_attempts_without_device_traffic: u32,
    /// Minimum time between two buffer overflow warnings.
    pub overflow_warn_interval: Duration,
    /// Fault injection, off when `None`.
    pub faults: Option<FaultConfig>,
}

impl RelayConfig {
    /// Creates a configuration with defaults for everything but the cloud endpoint: a
    /// buffer of 4096 frames or 4 MiB, a 5 s connect timeout, reconnect delays from
    /// 100 ms doubling up to 5 s, at most 60 attempts without device traffic, overflow
    /// warnings at most every 10 s, and no fault injection.
    pub fn new(cloud_url: impl Into<String>, ca: CaCertificate) -> Self {
        RelayConfig {
            cloud_url: cloud_url.into(),
            ca,
            buffer_max_frames: 4096,
            buffer_max_bytes: 4 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            reconnect_initial_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            max_attempts_without_device_traffic: 60,
            overflow_warn_interval: Duration::from_secs(10),
            faults: None,
        }
    }
}

/// Failure to start or to keep running a relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Configuration error in the cloud endpoint or CA certificate.
    #[error("invalid cloud configuration: {0}")]
    Cloud(#[from] CloudError),
    /// Configuration error in fault injection.
    #[error("invalid fault configuration: {0}")]
    Faults(#[from] FaultConfigError),
    /// Configuration error: a buffer limit is too small to hold one frame.
    #[error(
        "invalid buffer limits {max_frames} frames, {max_bytes} bytes: expected at least 1 \
         frame and {MAX_FRAME_LEN} bytes"
    )]
    InvalidBufferLimits {
        /// Configured maximum frame count.
        max_frames: usize,
        /// Configured maximum byte count.
        max_bytes: usize,
    },
    /// Caller misuse: [`Relay::run`] was called while another call is running.
    #[error("relay is already running")]
    AlreadyRunning,
    /// The device link failed, by peer fault or I/O error.
    #[error("device link failed: {0}")]
    Device(#[from] BleError),
}

/// Reason [`Relay::run`] returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The device closed its link.
    DeviceClosed,
    /// The shutdown future completed.
    Shutdown,
}

/// Relay between one device and the cloud, with counters and a buffer that other tasks
/// can read while it runs.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    connector: Arc<CloudConnector>,
    stats: Arc<RelayStats>,
    buffer: Arc<Mutex<FrameBuffer>>,
    faults: FaultHandle,
    running: AtomicBool,
}

impl Relay {
    /// Validates `config` and prepares the TLS client. Opens no connection.
    pub fn new(config: RelayConfig) -> Result<Self, RelayError> {
        if config.buffer_max_frames == 0 || config.buffer_max_bytes < MAX_FRAME_LEN {
            return Err(RelayError::InvalidBufferLimits {
                max_frames: config.buffer_max_frames,
                max_bytes: config.buffer_max_bytes,
            });
        }
        if let Some(faults) = &config.faults {
            faults.validate()?;
        }
        let connector = CloudConnector::new(&config.cloud_url, &config.ca)?
            .with_connect_timeout(config.connect_timeout);
        let faults = FaultHandle::new();
        let buffer = FrameBuffer::new(config.buffer_max_frames, config.buffer_max_bytes);
        Ok(Relay {
            stats: Arc::new(RelayStats::new(faults.clone())),
            connector: Arc::new(connector),
            buffer: Arc::new(Mutex::new(buffer)),
            faults,
            running: AtomicBool::new(false),
            config,
        })
    }

    /// Returns the live counters.
    pub fn stats(&self) -> &Arc<RelayStats> {
        &self.stats
    }

    /// Returns the switch and counters of fault injection.
    pub fn fault_handle(&self) -> &FaultHandle {
        &self.faults
    }

    /// Copies the frames waiting for the cloud, oldest first. They are the device's
    /// ciphertext frames as received, after upstream fault injection.
    pub fn buffered_frames_snapshot(&self) -> Vec<Vec<u8>> {
        lock(&self.buffer).snapshot()
    }

    /// Forwards frames between `device` and the cloud until the device closes its link,
    /// the device link fails, or `shutdown` completes. Frames still buffered stay in
    /// the buffer.
    pub async fn run<S>(&self, device: FrameLink, shutdown: S) -> Result<StopReason, RelayError>
    where
        S: Future<Output = ()>,
    {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(RelayError::AlreadyRunning);
        }
        let span = tracing::info_span!(
            "relay",
            device = %device.link().peer_addr(),
            url = %self.connector.url(),
        );
        let result = self.run_session(device, shutdown).instrument(span).await;
        self.running.store(false, Ordering::Release);
        result
    }

    async fn run_session<S>(&self, device: FrameLink, shutdown: S) -> Result<StopReason, RelayError>
    where
        S: Future<Output = ()>,
    {
        info!(
            mtu = device.link().mtu(),
            buffer_max_frames = self.config.buffer_max_frames,
            buffer_max_bytes = self.config.buffer_max_bytes,
            faults = self.config.faults.is_some(),
            "relay started"
        );
        let mut session = Session::new(self, device)?;
        let result = session.run(shutdown).await;
        session.close_cloud().await;

        let stats = self.stats.snapshot();
        match &result {
            Ok(reason) => info!(
                ?reason,
                frames_to_cloud = stats.frames_to_cloud,
                frames_to_device = stats.frames_to_device,
                frames_buffered = stats.frames_buffered,
                frames_dropped_overflow = stats.frames_dropped_overflow,
                "relay stopped"
            ),
            Err(error) => info!(%error, frames_buffered = stats.frames_buffered, "relay stopped"),
        }
        result
    }
}

/// Connection attempt in progress: a backoff wait followed by the connect.
type Connecting = Pin<Box<dyn Future<Output = Result<Box<CloudLink>, CloudError>> + Send>>;

enum CloudState {
    Connected(Box<CloudLink>),
    Connecting(Connecting),
    /// No attempt until the device sends the next frame.
    Paused,
}

enum Event {
    Shutdown,
    Device(Result<Option<Vec<u8>>, BleError>),
    CloudFrame(Result<Option<Vec<u8>>, CloudError>),
    CloudConnected(Result<Box<CloudLink>, CloudError>),
    DelayElapsed,
}

/// Frame held back by a delay fault until `due`.
struct Delayed {
    due: Instant,
    /// Arrival order, so frames with the same `due` keep their order.
    sequence: u64,
    upstream: bool,
    frame: Vec<u8>,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.sequence) == (other.due, other.sequence)
    }
}

impl Eq for Delayed {}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.sequence).cmp(&(other.due, other.sequence))
    }
}

/// State of one [`Relay::run`] call.
struct Session<'r> {
    relay: &'r Relay,
    device: FrameLink,
    cloud: CloudState,
    upstream_faults: Option<FaultInjector>,
    downstream_faults: Option<FaultInjector>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    delayed_sequence: u64,
    /// Failed attempts since the last successful connection.
    failed_attempts: u32,
    /// Failed attempts since the device last sent a frame.
    attempts_without_device_traffic: u32,
    /// Whether a connection existed or failed before, so the next success counts as a
    /// reconnect.
    next_connect_is_reconnect: bool,
    last_overflow_warning: Option<Instant>,
    dropped_since_warning: u64,
    cloud_messages_ignored_seen: u64,
}

impl<'r> Session<'r> {
    fn new(relay: &'r Relay, device: FrameLink) -> Result<Self, RelayError> {
        let (upstream_faults, downstream_faults) = build_injectors(relay)?;
        Ok(Session {
            relay,
            device,
            cloud: CloudState::Connecting(connect_after(&relay.connector, Duration::ZERO)),
            upstream_faults,
            downstream_faults,
            delayed: BinaryHeap::new(),
            delayed_sequence: 0,
            failed_attempts: 0,
            attempts_without_device_traffic: 0,
            next_connect_is_reconnect: false,
            last_overflow_warning: None,
            dropped_since_warning: 0,
            cloud_messages_ignored_seen: 0,
        })
    }

    async fn run<S>(&mut self, shutdown: S) -> Result<StopReason, RelayError>
    where
        S: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let event = self.next_event(shutdown.as_mut()).await;
            match event {
                Event::Shutdown => return Ok(StopReason::Shutdown),
                Event::Device(Ok(Some(frame))) => self.on_device_frame(frame).await?,
                Event::Device(Ok(None)) => return Ok(StopReason::DeviceClosed),
                Event::Device(Err(error)) => {
                    info!(%error, "device link failed");
                    return Err(error.into());
                }
                Event::CloudFrame(Ok(Some(frame))) => self.on_cloud_frame(frame).await?,
                Event::CloudFrame(Ok(None)) => self.on_cloud_lost(None),
                Event::CloudFrame(Err(error)) => self.on_cloud_lost(Some(error)),
                Event::CloudConnected(Ok(link)) => self.on_connected(link).await,
                Event::CloudConnected(Err(error)) => self.on_connect_failed(error),
                Event::DelayElapsed => self.release_due().await?,
            }
        }
    }

    /// Waits for the next event. Every branch is cancel-safe: the device link and the
    /// WebSocket keep partial input, and the connect future stays in `self.cloud`.
    async fn next_event(&mut self, shutdown: Pin<&mut impl Future<Output = ()>>) -> Event {
        let next_due = self.delayed.peek().map(|Reverse(delayed)| delayed.due);
        let cloud = &mut self.cloud;
        let cloud_event = async move {
            match cloud {
                CloudState::Connected(link) => Event::CloudFrame(link.recv_frame().await),
                CloudState::Connecting(attempt) => Event::CloudConnected(attempt.as_mut().await),
                CloudState::Paused => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown => Event::Shutdown,
            frame = self.device.recv_frame() => Event::Device(frame),
            event = cloud_event => event,
            () = sleep_until_due(next_due), if next_due.is_some() => Event::DelayElapsed,
        }
    }

    async fn on_device_frame(&mut self, frame: Vec<u8>) -> Result<(), RelayError> {
        let stats = &self.relay.stats;
        count_frame(
            &stats.frames_from_device,
            &stats.bytes_from_device,
            frame.len(),
        );
        stats::set(&stats.fragments_rejected, self.device.fragments_rejected());
        self.attempts_without_device_traffic = 0;
        if matches!(self.cloud, CloudState::Paused) {
            debug!("device traffic resumes reconnecting");
            self.cloud =
                CloudState::Connecting(connect_after(&self.relay.connector, Duration::ZERO));
        }

        let released = apply_faults(self.upstream_faults.as_mut(), frame);
        for Released { frame, delay } in released {
            if delay.is_zero() {
                self.enqueue_upstream(frame);
            } else {
                self.hold(frame, delay, true);
            }
        }
        self.flush().await;
        Ok(())
    }

    async fn on_cloud_frame(&mut self, frame: Vec<u8>) -> Result<(), RelayError> {
        let stats = &self.relay.stats;
        count_frame(
            &stats.frames_from_cloud,
            &stats.bytes_from_cloud,
            frame.len(),
        );
        self.sync_ignored_count();

        let released = apply_faults(self.downstream_faults.as_mut(), frame);
        for Released { frame, delay } in released {
            if delay.is_zero() {
                self.send_to_device(&frame).await?;
            } else {
                self.hold(frame, delay, false);
            }
        }
        Ok(())
    }

    async fn on_connected(&mut self, link: Box<CloudLink>) {
        let stats = &self.relay.stats;
        stats::add(&stats.cloud_connects, 1);
        if self.next_connect_is_reconnect {
            stats::add(&stats.reconnects, 1);
        }
        info!(
            failed_attempts = self.failed_attempts,
            frames_buffered = lock(&self.relay.buffer).len(),
            "cloud connected"
        );
        self.failed_attempts = 0;
        self.cloud_messages_ignored_seen = 0;
        self.cloud = CloudState::Connected(link);
        self.flush().await;
    }

    fn on_connect_failed(&mut self, error: CloudError) {
        stats::add(&self.relay.stats.connect_failures, 1);
        self.next_connect_is_reconnect = true;
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        self.attempts_without_device_traffic =
            self.attempts_without_device_traffic.saturating_add(1);

        let limit = self.relay.config.max_attempts_without_device_traffic;
        if self.attempts_without_device_traffic >= limit {
            info!(%error, attempts = self.attempts_without_device_traffic, "cloud connect failed; reconnecting paused until the device sends a frame");
            self.cloud = CloudState::Paused;
            return;
        }
        let delay = self.backoff_delay();
        let delay_ms = duration_ms(delay);
        if self.failed_attempts == 1 {
            info!(%error, retry_in_ms = delay_ms, "cloud connect failed");
        } else {
            debug!(%error, attempt = self.failed_attempts, retry_in_ms = delay_ms, "cloud connect failed");
        }
        self.cloud = CloudState::Connecting(connect_after(&self.relay.connector, delay));
    }

    /// Drops the cloud connection after an error or a close by the server, and starts
    /// reconnecting after the initial delay.
    fn on_cloud_lost(&mut self, error: Option<CloudError>) {
        stats::add(&self.relay.stats.disconnects, 1);
        self.sync_ignored_count();
        self.next_connect_is_reconnect = true;
        match error {
            Some(error) => info!(%error, "cloud connection failed"),
            None => info!("cloud connection closed by server"),
        }
        let delay = self.relay.config.reconnect_initial_delay;
        self.cloud = CloudState::Connecting(connect_after(&self.relay.connector, delay));
    }

    /// Returns the wait before the next attempt: the initial delay doubled for each
    /// failed attempt after the first, capped at the maximum.
    fn backoff_delay(&self) -> Duration {
        let config = &self.relay.config;
        let doublings = self.failed_attempts.saturating_sub(1).min(31);
        config
            .reconnect_initial_delay
            .saturating_mul(1 << doublings)
            .min(config.reconnect_max_delay)
    }

    /// Sends buffered frames to the cloud, oldest first, while the connection lasts.
    async fn flush(&mut self) {
        loop {
            let CloudState::Connected(link) = &mut self.cloud else {
                return;
            };
            let Some(frame) = lock(&self.relay.buffer).front().map(<[u8]>::to_vec) else {
                return;
            };
            if let Err(error) = link.send_frame(&frame).await {
                self.on_cloud_lost(Some(error));
                return;
            }
            // Only this task changes the buffer, so the front is still `frame`.
            self.pop_buffered();
            let stats = &self.relay.stats;
            count_frame(&stats.frames_to_cloud, &stats.bytes_to_cloud, frame.len());
        }
    }

    fn enqueue_upstream(&mut self, frame: Vec<u8>) {
        let (dropped, len, bytes) = {
            let mut buffer = lock(&self.relay.buffer);
            let dropped = buffer.push(frame);
            (dropped, buffer.len(), buffer.bytes())
        };
        self.update_buffer_gauges(len, bytes);
        if dropped > 0 {
            self.on_overflow(dropped);
        }
    }

    fn pop_buffered(&mut self) {
        let (len, bytes) = {
            let mut buffer = lock(&self.relay.buffer);
            buffer.pop_front();
            (buffer.len(), buffer.bytes())
        };
        self.update_buffer_gauges(len, bytes);
    }

    fn update_buffer_gauges(&self, len: usize, bytes: usize) {
        let stats = &self.relay.stats;
        stats::set(&stats.frames_buffered, len as u64);
        stats::set(&stats.bytes_buffered, bytes as u64);
    }

    /// Counts dropped frames and warns at most once per `overflow_warn_interval`.
    fn on_overflow(&mut self, dropped: u64) {
        let stats = &self.relay.stats;
        stats::add(&stats.frames_dropped_overflow, dropped);
        self.dropped_since_warning += dropped;

        let now = Instant::now();
        let interval = self.relay.config.overflow_warn_interval;
        let due = self
            .last_overflow_warning
            .is_none_or(|last| now.duration_since(last) >= interval);
        if !due {
            return;
        }
        let snapshot = stats.snapshot();
        warn!(
            dropped = self.dropped_since_warning,
            dropped_total = snapshot.frames_dropped_overflow,
            frames_buffered = snapshot.frames_buffered,
            bytes_buffered = snapshot.bytes_buffered,
            max_frames = self.relay.config.buffer_max_frames,
            max_bytes = self.relay.config.buffer_max_bytes,
            "relay buffer full, dropped oldest frames"
        );
        self.last_overflow_warning = Some(now);
        self.dropped_since_warning = 0;
    }

    fn hold(&mut self, frame: Vec<u8>, delay: Duration, upstream: bool) {
        self.delayed_sequence += 1;
        self.delayed.push(Reverse(Delayed {
            due: Instant::now() + delay,
            sequence: self.delayed_sequence,
            upstream,
            frame,
        }));
    }

    /// Forwards every delayed frame whose time has come.
    async fn release_due(&mut self) -> Result<(), RelayError> {
        let now = Instant::now();
        while let Some(Reverse(next)) = self.delayed.peek() {
            if next.due > now {
                break;
            }
            let Some(Reverse(delayed)) = self.delayed.pop() else {
                break;
            };
            if delayed.upstream {
                self.enqueue_upstream(delayed.frame);
            } else {
                self.send_to_device(&delayed.frame).await?;
            }
        }
        self.flush().await;
        Ok(())
    }

    async fn send_to_device(&mut self, frame: &[u8]) -> Result<(), RelayError> {
        match self.device.send_frame(frame).await {
            Ok(()) => {
                let stats = &self.relay.stats;
                count_frame(&stats.frames_to_device, &stats.bytes_to_device, frame.len());
                Ok(())
            }
            // A fault may have cut the frame to nothing the link carries; the sender
            // retransmits, as for a dropped frame.
            Err(BleError::InvalidFrameLength { len, .. }) => {
                debug!(len, "frame not sendable on the device link, dropped");
                Ok(())
            }
            Err(error) => {
                info!(%error, "device link failed");
                Err(error.into())
            }
        }
    }

    fn sync_ignored_count(&mut self) {
        if let CloudState::Connected(link) = &self.cloud {
            let ignored = link.messages_ignored();
            let new = ignored - self.cloud_messages_ignored_seen;
            self.cloud_messages_ignored_seen = ignored;
            stats::add(&self.relay.stats.cloud_messages_ignored, new);
        }
    }

    /// Closes the cloud connection politely, waiting at most one second.
    async fn close_cloud(&mut self) {
        self.sync_ignored_count();
        let cloud = std::mem::replace(&mut self.cloud, CloudState::Paused);
        if let CloudState::Connected(link) = cloud {
            let _ = tokio::time::timeout(Duration::from_secs(1), link.close()).await;
        }
    }
}

fn build_injectors(
    relay: &Relay,
) -> Result<(Option<FaultInjector>, Option<FaultInjector>), RelayError> {
    let Some(config) = &relay.config.faults else {
        return Ok((None, None));
    };
    let upstream = if config.direction.includes(Direction::Upstream) {
        Some(FaultInjector::new(config.clone(), relay.faults.clone())?)
    } else {
        None
    };
    let downstream = if config.direction.includes(Direction::Downstream) {
        // A different seed gives the downstream injector its own random stream.
        let mut downstream_config = config.clone();
        downstream_config.seed = config.seed ^ 0x5eed_d0e5_0000_0001;
        Some(FaultInjector::new(downstream_config, relay.faults.clone())?)
    } else {
        None
    };
    Ok((upstream, downstream))
}

fn apply_faults(injector: Option<&mut FaultInjector>, frame: Vec<u8>) -> Vec<Released> {
    let mut released = Vec::with_capacity(2);
    match injector {
        Some(injector) => injector.apply(frame, &mut released),
        None => released.push(Released {
            frame,
            delay: Duration::ZERO,
        }),
    }
    released
}

fn connect_after(connector: &Arc<CloudConnector>, delay: Duration) -> Connecting {
    let connector = Arc::clone(connector);
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        connector.connect().await.map(Box::new)
    })
}

async fn sleep_until_due(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

/// Locks the buffer. A panic while it was locked cannot leave it inconsistent, because
/// every update is a single push or pop, so a poisoned lock is used as is.
fn lock(buffer: &Mutex<FrameBuffer>) -> MutexGuard<'_, FrameBuffer> {
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}
