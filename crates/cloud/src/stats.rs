//! Counters of the gateway, shared by every connection and read without locks.

use std::sync::atomic::{AtomicU64, Ordering};

use medtunnel_proto::error::Blame;
use serde::Serialize;

/// Live counters of one gateway. Every field only grows, except `connections_open`.
///
/// The counters are independent relaxed atomics, so a [`GatewayStats::snapshot`] taken
/// while connections are busy may mix values from slightly different instants.
#[derive(Debug, Default)]
pub struct GatewayStats {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    connections_rejected: AtomicU64,
    handshakes_completed: AtomicU64,
    handshakes_rejected: [AtomicU64; HandshakeRejection::COUNT],
    frames_rejected: [AtomicU64; 4],
    frames_without_session: AtomicU64,
    readings_stored: AtomicU64,
    duplicates_suppressed: AtomicU64,
    gaps_detected: AtomicU64,
    messages_lost: AtomicU64,
    records_malformed: AtomicU64,
}

/// Reason the gateway rejected a handshake initiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRejection {
    /// No device is registered under the key id.
    UnknownKeyId,
    /// The device is revoked.
    Revoked,
    /// The mac1 pre-filter did not verify under the device's PSK.
    Mac1,
    /// The initiation counter is not above the last accepted one: a replay.
    StaleCounter,
    /// The Noise handshake failed, or the initiation does not fit this gateway or
    /// connection (another cloud key, another device on an open tunnel).
    Failed,
}

impl HandshakeRejection {
    const COUNT: usize = 5;

    fn index(self) -> usize {
        match self {
            HandshakeRejection::UnknownKeyId => 0,
            HandshakeRejection::Revoked => 1,
            HandshakeRejection::Mac1 => 2,
            HandshakeRejection::StaleCounter => 3,
            HandshakeRejection::Failed => 4,
        }
    }

    /// Returns the name used in logs and in the snapshot.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeRejection::UnknownKeyId => "unknown_key_id",
            HandshakeRejection::Revoked => "revoked",
            HandshakeRejection::Mac1 => "mac1",
            HandshakeRejection::StaleCounter => "stale_counter",
            HandshakeRejection::Failed => "failed",
        }
    }
}

fn blame_index(blame: Blame) -> usize {
    match blame {
        Blame::Malformed => 0,
        Blame::Peer => 1,
        Blame::Caller => 2,
        Blame::Exhausted => 3,
    }
}

/// Copy of the counters at one instant, for reports and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GatewayStatsSnapshot {
    /// TCP connections accepted, including those that later failed their handshakes.
    pub connections_accepted: u64,
    /// Connections open now.
    pub connections_open: u64,
    /// TCP connections closed at once because `max_connections` were open.
    pub connections_rejected: u64,
    /// Initiations accepted, each followed by a response.
    pub handshakes_completed: u64,
    /// Initiations rejected, by reason.
    pub handshakes_rejected: HandshakeRejections,
    /// Frames and messages rejected, by who is to blame.
    pub frames_rejected: FrameRejections,
    /// Of the rejected frames, transport frames that arrived before any handshake on
    /// their connection (also counted under `frames_rejected.peer`).
    pub frames_without_session: u64,
    /// Readings committed to the database.
    pub readings_stored: u64,
    /// Readings received again after they were delivered or stored.
    pub duplicates_suppressed: u64,
    /// Messages that arrived ahead of the expected sequence number.
    pub gaps_detected: u64,
    /// Sequence numbers the devices declared lost.
    pub messages_lost: u64,
    /// Authenticated messages whose record did not decode or is not a CGM measurement;
    /// they are acknowledged and never stored.
    pub records_malformed: u64,
}

/// Rejected initiations by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HandshakeRejections {
    /// See [`HandshakeRejection::UnknownKeyId`].
    pub unknown_key_id: u64,
    /// See [`HandshakeRejection::Revoked`].
    pub revoked: u64,
    /// See [`HandshakeRejection::Mac1`].
    pub mac1: u64,
    /// See [`HandshakeRejection::StaleCounter`].
    pub stale_counter: u64,
    /// See [`HandshakeRejection::Failed`].
    pub failed: u64,
}

/// Rejected frames by [`Blame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct FrameRejections {
    /// Bytes that are not a frame, including WebSocket text messages.
    pub malformed: u64,
    /// Frames that failed authentication or a protocol check (replays, bit flips,
    /// truncated ciphertext, frames without a session).
    pub peer: u64,
    /// Frames this gateway could not process because of its own state.
    pub caller: u64,
    /// Frames under keys that reached their message or age limit.
    pub exhausted: u64,
}

impl GatewayStats {
    /// Copies every counter.
    pub fn snapshot(&self) -> GatewayStatsSnapshot {
        let handshake =
            |reason: HandshakeRejection| load(&self.handshakes_rejected[reason.index()]);
        let frame = |blame: Blame| load(&self.frames_rejected[blame_index(blame)]);
        GatewayStatsSnapshot {
            connections_accepted: load(&self.connections_accepted),
            connections_open: load(&self.connections_open),
            connections_rejected: load(&self.connections_rejected),
            handshakes_completed: load(&self.handshakes_completed),
            handshakes_rejected: HandshakeRejections {
                unknown_key_id: handshake(HandshakeRejection::UnknownKeyId),
                revoked: handshake(HandshakeRejection::Revoked),
                mac1: handshake(HandshakeRejection::Mac1),
                stale_counter: handshake(HandshakeRejection::StaleCounter),
                failed: handshake(HandshakeRejection::Failed),
            },
            frames_rejected: FrameRejections {
                malformed: frame(Blame::Malformed),
                peer: frame(Blame::Peer),
                caller: frame(Blame::Caller),
                exhausted: frame(Blame::Exhausted),
            },
            frames_without_session: load(&self.frames_without_session),
            readings_stored: load(&self.readings_stored),
            duplicates_suppressed: load(&self.duplicates_suppressed),
            gaps_detected: load(&self.gaps_detected),
            messages_lost: load(&self.messages_lost),
            records_malformed: load(&self.records_malformed),
        }
    }

    pub(crate) fn connection_accepted(&self) {
        add(&self.connections_accepted, 1);
        add(&self.connections_open, 1);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_rejected(&self) {
        add(&self.connections_rejected, 1);
    }

    pub(crate) fn handshake_completed(&self) {
        add(&self.handshakes_completed, 1);
    }

    pub(crate) fn handshake_rejected(&self, reason: HandshakeRejection) {
        add(&self.handshakes_rejected[reason.index()], 1);
    }

    pub(crate) fn frame_rejected(&self, blame: Blame) {
        add(&self.frames_rejected[blame_index(blame)], 1);
    }

    pub(crate) fn frame_without_session(&self) {
        add(&self.frames_without_session, 1);
        self.frame_rejected(Blame::Peer);
    }

    pub(crate) fn readings_stored(&self, count: u64) {
        add(&self.readings_stored, count);
    }

    pub(crate) fn duplicates_suppressed(&self, count: u64) {
        add(&self.duplicates_suppressed, count);
    }

    pub(crate) fn gap_detected(&self) {
        add(&self.gaps_detected, 1);
    }

    pub(crate) fn messages_lost(&self, count: u64) {
        add(&self.messages_lost, count);
    }

    pub(crate) fn record_malformed(&self) {
        add(&self.records_malformed, 1);
    }
}

fn add(counter: &AtomicU64, count: u64) {
    counter.fetch_add(count, Ordering::Relaxed);
}

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
