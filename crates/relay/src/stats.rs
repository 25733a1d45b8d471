//! Counters of a running relay, readable from other tasks.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::fault::{FaultHandle, FaultKind};

/// Live counters of one relay. Every field is read and written with relaxed atomics, so
/// a snapshot taken while the relay runs can mix values from slightly different moments.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub(crate) frames_from_device: AtomicU64,
    pub(crate) bytes_from_device: AtomicU64,
    pub(crate) frames_to_cloud: AtomicU64,
    pub(crate) bytes_to_cloud: AtomicU64,
    pub(crate) frames_from_cloud: AtomicU64,
    pub(crate) bytes_from_cloud: AtomicU64,
    pub(crate) frames_to_device: AtomicU64,
    pub(crate) bytes_to_device: AtomicU64,
    pub(crate) frames_buffered: AtomicU64,
    pub(crate) bytes_buffered: AtomicU64,
    pub(crate) frames_dropped_overflow: AtomicU64,
    pub(crate) cloud_connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) fragments_rejected: AtomicU64,
    pub(crate) cloud_messages_ignored: AtomicU64,
    pub(crate) faults: FaultHandle,
}

/// Copy of [`RelayStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStatsSnapshot {
    /// Frames received from the device.
    pub frames_from_device: u64,
    /// Bytes of frames received from the device.
    pub bytes_from_device: u64,
    /// Frames written to the cloud connection.
    pub frames_to_cloud: u64,
    /// Bytes of frames written to the cloud connection.
    pub bytes_to_cloud: u64,
    /// Frames received from the cloud.
    pub frames_from_cloud: u64,
    /// Bytes of frames received from the cloud.
    pub bytes_from_cloud: u64,
    /// Frames sent to the device.
    pub frames_to_device: u64,
    /// Bytes of frames sent to the device.
    pub bytes_to_device: u64,
    /// Frames waiting in the buffer for the cloud now.
    pub frames_buffered: u64,
    /// Bytes waiting in the buffer for the cloud now.
    pub bytes_buffered: u64,
    /// Oldest frames dropped because the buffer was full.
    pub frames_dropped_overflow: u64,
    /// Successful cloud connections, the first one included.
    pub cloud_connects: u64,
    /// Successful cloud connections after a failed attempt or a lost connection.
    pub reconnects: u64,
    /// Failed cloud connection attempts.
    pub connect_failures: u64,
    /// Cloud connections that closed or failed while open.
    pub disconnects: u64,
    /// Device packets that the reassembler rejected.
    pub fragments_rejected: u64,
    /// Cloud messages ignored because they were text, empty or too long.
    pub cloud_messages_ignored: u64,
    /// Injected faults, indexed in the order of [`FaultKind::ALL`].
    pub faults_injected: [u64; FaultKind::ALL.len()],
}

impl RelayStatsSnapshot {
    /// Returns the number of injected faults of `kind`.
    pub fn faults(&self, kind: FaultKind) -> u64 {
        let index = FaultKind::ALL.iter().position(|&k| k == kind);
        index.map_or(0, |index| self.faults_injected[index])
    }
}

impl RelayStats {
    pub(crate) fn new(faults: FaultHandle) -> Self {
        RelayStats {
            faults,
            ..RelayStats::default()
        }
    }

    /// Copies every counter.
    pub fn snapshot(&self) -> RelayStatsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RelayStatsSnapshot {
            frames_from_device: load(&self.frames_from_device),
            bytes_from_device: load(&self.bytes_from_device),
            frames_to_cloud: load(&self.frames_to_cloud),
            bytes_to_cloud: load(&self.bytes_to_cloud),
            frames_from_cloud: load(&self.frames_from_cloud),
            bytes_from_cloud: load(&self.bytes_from_cloud),
            frames_to_device: load(&self.frames_to_device),
            bytes_to_device: load(&self.bytes_to_device),
            frames_buffered: load(&self.frames_buffered),
            bytes_buffered: load(&self.bytes_buffered),
            frames_dropped_overflow: load(&self.frames_dropped_overflow),
            cloud_connects: load(&self.cloud_connects),
            reconnects: load(&self.reconnects),
            connect_failures: load(&self.connect_failures),
            disconnects: load(&self.disconnects),
            fragments_rejected: load(&self.fragments_rejected),
            cloud_messages_ignored: load(&self.cloud_messages_ignored),
            faults_injected: FaultKind::ALL.map(|kind| self.faults.counters().get(kind)),
        }
    }
}

/// Adds `amount` to `counter`.
pub(crate) fn add(counter: &AtomicU64, amount: u64) {
    counter.fetch_add(amount, Ordering::Relaxed);
}

/// Counts one frame of `len` bytes.
pub(crate) fn count_frame(frames: &AtomicU64, bytes: &AtomicU64, len: usize) {
    add(frames, 1);
    add(bytes, len as u64);
}

pub(crate) fn set(counter: &AtomicU64, value: u64) {
    counter.store(value, Ordering::Relaxed);
}
