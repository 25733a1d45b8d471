//! One device tunnel on one connection: handshakes, transport frames, group commit and
//! acknowledgements. This module does no socket I/O: the connection task feeds it the
//! frames of one batch and sends the frames it returns.
//!
//! Ordering guarantees, each checked before the bytes leave:
//! - a handshake response is returned only after the initiation counter is committed;
//! - an acknowledgement is returned only after the readings, lost ranges and rejected
//!   records it covers are committed.
//!
//! NOTE: revocation reaches an open tunnel at its next handshake or its next database
//! commit; a tunnel that carries only heartbeats stays open until then.

use std::sync::Arc;

use medtunnel_proto::channel::CloudChannel;
use medtunnel_proto::error::{Blame, Error as ChannelError};
use medtunnel_proto::stream::{Incoming, StreamState};
use medtunnel_proto::wire::{self, FrameKind, MAX_FRAME_LEN};
use medtunnel_records::Record;
use medtunnel_store::lost::SkipReason;
use medtunnel_store::{ChannelState, DeviceRecord, IncomingReading, StoreError};
use rand::rngs::OsRng;
use tracing::{debug, info, trace, warn};

use crate::delivery::TherapyLink;
use crate::shared::{unix_now_ms, Shared};
use crate::stats::HandshakeRejection;
use crate::{GatewayError, Provider};

/// Consecutive rejected frames after which the connection is closed. A working relay
/// sends at most a few damaged frames in a row; a long run means garbage or an attack.
pub(crate) const MAX_CONSECUTIVE_REJECTED: u32 = 64;

/// Reason a tunnel ends.
#[derive(Debug)]
pub(crate) enum Close {
    /// The initiation named a key id that is not registered.
    UnknownKeyId,
    /// The device is revoked.
    Revoked,
    /// The device's handshakes cannot succeed at this gateway.
    WrongCloudKey,
    /// Too many frames in a row were rejected.
    TooManyRejected,
    /// The device sent a sequence number above what the database stores.
    SequenceTooLarge,
    /// The database failed; the error was logged.
    Store,
}

impl Close {
    /// Returns the name used in the close log line.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Close::UnknownKeyId => "unknown key id",
            Close::Revoked => "device revoked",
            Close::WrongCloudKey => "device uses another cloud key",
            Close::TooManyRejected => "too many rejected frames",
            Close::SequenceTooLarge => "sequence number too large",
            Close::Store => "database failure",
        }
    }
}

/// The established (or establishing) tunnel of one device.
pub(crate) struct DeviceTunnel {
    pub(crate) device_id: String,
    pub(crate) key_id: u32,
    pub(crate) channel: CloudChannel<Provider>,
}

/// Durable work of one batch, in sequence order.
pub(crate) enum Step {
    Readings(Vec<IncomingReading>),
    /// A therapy record (status, telemetry or command acknowledgement), handled by the
    /// therapy tables before the store moves the acknowledgement past it.
    Therapy {
        seq: u64,
        record: Box<Record>,
    },
    Skip {
        from: u64,
        to: u64,
        reason: SkipReason,
    },
}

/// Work gathered from the transport frames of one batch, not yet committed.
#[derive(Default)]
struct Pending {
    steps: Vec<Step>,
    ack_due: bool,
    /// Highest acknowledgement of the cloud's own messages that the batch brought.
    cloud_acked: Option<u64>,
}

impl Pending {
    fn push_reading(&mut self, reading: IncomingReading) {
        if let Some(Step::Readings(readings)) = self.steps.last_mut() {
            readings.push(reading);
        } else {
            self.steps.push(Step::Readings(vec![reading]));
        }
    }
}

/// Counts of one tunnel, for the close log line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TunnelCounts {
    pub(crate) frames_accepted: u64,
    pub(crate) frames_rejected: u64,
    pub(crate) readings_stored: u64,
}

/// Protocol state of one connection.
pub(crate) struct Tunnel {
    pub(crate) shared: Arc<Shared>,
    pub(crate) connection: u64,
    pub(crate) relay: String,
    pub(crate) device: Option<DeviceTunnel>,
    consecutive_rejected: u32,
    pub(crate) counts: TunnelCounts,
    pub(crate) therapy: TherapyLink,
}

impl Tunnel {
    pub(crate) fn new(shared: Arc<Shared>, connection: u64, relay: String) -> Self {
        Tunnel {
            shared,
            connection,
            relay,
            device: None,
            consecutive_rejected: 0,
            counts: TunnelCounts::default(),
            therapy: TherapyLink::default(),
        }
    }

    /// Returns the device id once a handshake was accepted on this connection.
    pub(crate) fn device_id(&self) -> Option<&str> {
        self.device.as_ref().map(|device| device.device_id.as_str())
    }

    /// Processes the frames of one batch in order and returns the frames to send, in
    /// order. Every store call has returned when this returns.
    pub(crate) async fn handle_batch(
        &mut self,
        frames: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, Close> {
        let mut outgoing = Vec::new();
        let mut pending = Pending::default();
        for mut frame in frames {
            let now_ms = self.shared.now_ms();
            match wire::frame_kind(&frame) {
                Ok(FrameKind::Initiation) => {
                    // Commit what came before, so its acknowledgement goes out under the
                    // keys it arrived with.
                    self.commit(std::mem::take(&mut pending), &mut outgoing)
                        .await?;
                    if let Some(response) = self.handle_initiation(now_ms, &frame).await? {
                        outgoing.push(response);
                    }
                }
                Ok(_) => self.handle_transport(now_ms, &mut frame, &mut pending)?,
                Err(error) => self.reject_frame(ChannelError::from(error))?,
            }
        }
        self.commit(pending, &mut outgoing).await?;
        Ok(outgoing)
    }

    /// Counts a message that is not a frame at all (a WebSocket text message).
    pub(crate) fn reject_non_frame(&mut self, kind: &'static str, len: usize) -> Result<(), Close> {
        debug!(
            connection = self.connection,
            kind, len, "rejected WebSocket message that is not a binary frame"
        );
        self.count_rejected(Blame::Malformed)
    }

    async fn handle_initiation(
        &mut self,
        now_ms: u64,
        frame: &[u8],
    ) -> Result<Option<Vec<u8>>, Close> {
        // Step 1: the cleartext header. The kind and length were checked by the caller.
        let header = match wire::parse_initiation(frame) {
            Ok(header) => header,
            Err(error) => return self.reject_frame(ChannelError::from(error)).map(|()| None),
        };
        if let Some(device) = &self.device {
            if device.key_id != header.key_id {
                debug!(
                    connection = self.connection,
                    device_id = %device.device_id,
                    key_id = header.key_id,
                    "rejected initiation for another key id on an open tunnel"
                );
                return self
                    .reject_handshake(HandshakeRejection::Failed)
                    .map(|()| None);
            }
        }

        // Step 2: the registry and the committed channel state.
        let key_id = header.key_id;
        let (record, state) = self
            .store_call(move |store| {
                let Some(record) = store.device_by_key_id(key_id)? else {
                    return Ok((None, None));
                };
                if !record.is_active() {
                    return Ok((Some(record), None));
                }
                let state = store.channel_state(&record.device_id)?;
                Ok((Some(record), Some(state)))
            })
            .await?;
        let (record, state) = match (record, state) {
            (Some(record), Some(state)) => (record, state),
            (Some(record), None) => return Err(self.revoked(&record)),
            (None, _) => {
                debug!(
                    connection = self.connection,
                    key_id, "rejected initiation for unknown key id"
                );
                self.shared
                    .stats
                    .handshake_rejected(HandshakeRejection::UnknownKeyId);
                return Err(Close::UnknownKeyId);
            }
        };
        if record.cloud_key_id != self.shared.cloud.key_id {
            debug!(
                connection = self.connection,
                device_id = %record.device_id,
                key_id,
                device_cloud_key_id = record.cloud_key_id,
                gateway_cloud_key_id = self.shared.cloud.key_id,
                "rejected initiation for another cloud key"
            );
            self.shared
                .stats
                .handshake_rejected(HandshakeRejection::Failed);
            return Err(Close::WrongCloudKey);
        }

        // Step 3: mac1, counter and Noise, on the existing channel or a new one.
        let response = self.accept(now_ms, &record, state, frame)?;
        let Some((response, counter)) = response else {
            return Ok(None);
        };

        // Step 4: commit the counter before the response leaves, so a replay of this
        // initiation is stale even after a restart.
        let device_id = record.device_id.clone();
        let stored = self
            .store_call(move |store| store.record_initiation_counter(&device_id, counter))
            .await?;
        if !stored {
            debug!(
                connection = self.connection,
                device_id = %record.device_id,
                key_id,
                counter,
                "rejected initiation whose counter another connection committed first"
            );
            return self
                .reject_handshake(HandshakeRejection::StaleCounter)
                .map(|()| None);
        }
        self.consecutive_rejected = 0;
        self.shared.stats.handshake_completed();
        debug!(
            connection = self.connection,
            device_id = %record.device_id,
            key_id,
            counter,
            "accepted handshake"
        );
        Ok(Some(response))
    }

    /// Runs `accept_initiation` and returns the response and counter, or `None` after
    /// counting a rejection.
    fn accept(
        &mut self,
        now_ms: u64,
        record: &DeviceRecord,
        state: ChannelState,
        frame: &[u8],
    ) -> Result<Option<(Vec<u8>, u32)>, Close> {
        let peer = match self.shared.peers.get(&self.shared.cloud, record) {
            Ok(peer) => peer,
            Err(error) => {
                // PeerKeys fails only for a low-order public key. Provisioning derives
                // public keys from random secrets, which never yields one, so the
                // registry entry was damaged or written by other means.
                tracing::warn!(device_id = %record.device_id, %error, "device public key unusable; check the registry entry");
                return self
                    .reject_handshake(HandshakeRejection::Failed)
                    .map(|()| None);
            }
        };
        let had_tunnel = self.device.is_some();
        let mut device = self.device.take().unwrap_or_else(|| DeviceTunnel {
            device_id: record.device_id.clone(),
            key_id: record.key_id,
            channel: CloudChannel::new(
                Provider::default(),
                record.key_id,
                self.shared.limits,
                stream_from(state),
            ),
        });
        let mut response = vec![0u8; MAX_FRAME_LEN];
        let result = device.channel.accept_initiation(
            now_ms,
            &self.shared.cloud,
            &peer,
            frame,
            state.last_initiation_counter,
            &mut OsRng,
            &mut response,
        );
        let accepted = match result {
            Ok(accepted) => accepted,
            Err(error) => {
                let reason = match error {
                    ChannelError::Mac1Mismatch => HandshakeRejection::Mac1,
                    ChannelError::StaleInitiation { .. } => HandshakeRejection::StaleCounter,
                    _ => HandshakeRejection::Failed,
                };
                debug!(
                    connection = self.connection,
                    device_id = %record.device_id,
                    key_id = record.key_id,
                    reason = reason.as_str(),
                    %error,
                    "rejected initiation"
                );
                // A channel created for this initiation carries nothing worth keeping.
                if had_tunnel {
                    self.device = Some(device);
                }
                return self.reject_handshake(reason).map(|()| None);
            }
        };
        self.device = Some(device);
        response.truncate(accepted.len);
        Ok(Some((response, accepted.counter)))
    }

    fn handle_transport(
        &mut self,
        now_ms: u64,
        frame: &mut [u8],
        pending: &mut Pending,
    ) -> Result<(), Close> {
        let Some(device) = self.device.as_mut() else {
            trace!(
                connection = self.connection,
                len = frame.len(),
                "rejected frame on a connection without a session"
            );
            self.shared.stats.frame_without_session();
            return self.count_rejected_counted();
        };
        let incoming = match device.channel.handle_frame(now_ms, frame) {
            Ok(incoming) => incoming,
            Err(error) => return self.reject_frame(error),
        };
        if let Some(acked) = incoming.acked {
            pending.cloud_acked = Some(pending.cloud_acked.map_or(acked, |a| a.max(acked)));
        }
        let reading = gather(&self.shared, device, &self.relay, incoming, pending);
        if let Some(reading) = reading {
            pending.push_reading(reading);
        }
        self.consecutive_rejected = 0;
        self.counts.frames_accepted += 1;
        // Every authenticated frame gets an acknowledgement: data and duplicates need
        // one, and an acknowledgement-only record is the device's heartbeat.
        pending.ack_due = true;
        Ok(())
    }

    /// Commits the batch's steps in order, then seals one acknowledgement if due.
    async fn commit(&mut self, pending: Pending, outgoing: &mut Vec<Vec<u8>>) -> Result<(), Close> {
        let Some(device) = self.device.as_ref() else {
            return Ok(());
        };
        if !pending.ack_due && pending.steps.is_empty() {
            return Ok(());
        }
        let device_id = device.device_id.clone();
        self.handle_therapy_records(&pending.steps).await?;
        let steps = pending.steps;
        let (acked, stored, duplicates) = if steps.is_empty() {
            (None, 0, 0)
        } else {
            self.store_call(move |store| {
                let mut acked = None;
                let (mut stored, mut duplicates) = (0usize, 0usize);
                for step in &steps {
                    acked = match *step {
                        Step::Readings(ref readings) => {
                            let outcome = store.ingest(&device_id, readings)?;
                            stored += outcome.stored;
                            duplicates += outcome.duplicates;
                            if outcome.conflicting_duplicates > 0 {
                                // Different readings under sequence numbers already stored
                                // come from a second device with the same identity or from
                                // a device whose counters were rolled back.
                                warn!(
                                    device_id = %device_id,
                                    conflicting = outcome.conflicting_duplicates,
                                    "device reused sequence numbers with different readings: \
                                     possible cloned identity or restored device state; \
                                     the first stored readings are kept"
                                );
                            }
                            outcome.rx_acked_seq
                        }
                        Step::Skip {
                            from,
                            to,
                            reason: SkipReason::Lost,
                        } => store.record_lost(&device_id, from, to)?,
                        Step::Skip {
                            from,
                            reason: SkipReason::Rejected,
                            ..
                        } => store.record_rejected(&device_id, from)?,
                        // NOTE: the store has no skip reason for "handled by the therapy
                        // tables", so these sequence numbers are recorded as rejected
                        // records; a dedicated reason in the store is to replace this.
                        Step::Therapy { seq, .. } => store.record_rejected(&device_id, seq)?,
                    };
                }
                Ok((acked, stored, duplicates))
            })
            .await?
        };
        self.shared.stats.readings_stored(stored as u64);
        self.shared.stats.duplicates_suppressed(duplicates as u64);
        self.counts.readings_stored += stored as u64;

        let now_ms = self.shared.now_ms();
        let Some(device) = self.device.as_mut() else {
            return Ok(());
        };
        if let Some(acked) = acked {
            device.channel.acknowledge(acked.saturating_add(1));
        }
        let mut ack = vec![0u8; MAX_FRAME_LEN];
        match device.channel.send_ack(now_ms, &mut ack) {
            Ok(len) => {
                ack.truncate(len);
                outgoing.push(ack);
            }
            Err(error) => debug!(
                connection = self.connection,
                device_id = %device.device_id,
                %error,
                "acknowledgement not sent"
            ),
        }
        if let Some(acked) = pending.cloud_acked {
            self.release_delivered(acked).await?;
        }
        self.deliver_due(outgoing).await
    }

    fn revoked(&mut self, record: &DeviceRecord) -> Close {
        self.shared.peers.remove(record.key_id);
        self.shared
            .stats
            .handshake_rejected(HandshakeRejection::Revoked);
        info!(
            connection = self.connection,
            device_id = %record.device_id,
            key_id = record.key_id,
            "rejected initiation of a revoked device"
        );
        Close::Revoked
    }

    fn reject_handshake(&mut self, reason: HandshakeRejection) -> Result<(), Close> {
        self.shared.stats.handshake_rejected(reason);
        self.count_rejected_counted()
    }

    fn reject_frame(&mut self, error: ChannelError) -> Result<(), Close> {
        let blame = error.blame();
        debug!(
            connection = self.connection,
            device_id = self.device_id().unwrap_or(""),
            blame = ?blame,
            %error,
            "rejected frame"
        );
        self.count_rejected(blame)
    }

    fn count_rejected(&mut self, blame: Blame) -> Result<(), Close> {
        self.shared.stats.frame_rejected(blame);
        self.count_rejected_counted()
    }

    /// Advances the run of rejected frames, whose counter was already updated.
    fn count_rejected_counted(&mut self) -> Result<(), Close> {
        self.counts.frames_rejected += 1;
        self.consecutive_rejected += 1;
        if self.consecutive_rejected >= MAX_CONSECUTIVE_REJECTED {
            return Err(Close::TooManyRejected);
        }
        Ok(())
    }

    async fn store_call<T, F>(&self, work: F) -> Result<T, Close>
    where
        T: Send + 'static,
        F: FnOnce(&mut medtunnel_store::Store) -> Result<T, StoreError> + Send + 'static,
    {
        match self.shared.with_store(work).await {
            Ok(value) => Ok(value),
            Err(GatewayError::Store(StoreError::DeviceRevoked(device_id))) => {
                info!(
                    connection = self.connection,
                    device_id, "closing tunnel of a device revoked while connected"
                );
                Err(Close::Revoked)
            }
            Err(GatewayError::Store(StoreError::SequenceTooLarge(seq))) => {
                debug!(
                    connection = self.connection,
                    seq, "closing tunnel whose sequence number exceeds the storable maximum"
                );
                Err(Close::SequenceTooLarge)
            }
            Err(error) => {
                tracing::error!(
                    connection = self.connection,
                    device_id = self.device_id().unwrap_or(""),
                    %error,
                    "database call failed; closing the tunnel without acknowledging"
                );
                Err(Close::Store)
            }
        }
    }
}

/// Turns one authenticated frame's events into counters and pending steps, and returns
/// the reading it carried, if any.
fn gather(
    shared: &Shared,
    device: &DeviceTunnel,
    relay: &str,
    incoming: Incoming<'_>,
    pending: &mut Pending,
) -> Option<IncomingReading> {
    let stats = &shared.stats;
    if let Some(lost) = incoming.lost {
        stats.messages_lost(lost.to.saturating_sub(lost.from));
        debug!(device_id = %device.device_id, from = lost.from, to = lost.to, "device declared messages lost");
        pending.steps.push(Step::Skip {
            from: lost.from,
            to: lost.to,
            reason: SkipReason::Lost,
        });
    }
    if let Some(gap) = incoming.gap {
        stats.gap_detected();
        debug!(device_id = %device.device_id, expected = gap.expected, received = gap.received, "sequence gap");
    }
    if incoming.duplicate.is_some() {
        stats.duplicates_suppressed(1);
    }
    let (seq, payload) = incoming.data?;
    match Record::decode(payload) {
        Ok(Record::CgmMeasurement(measurement)) => Some(IncomingReading {
            seq,
            measurement,
            key_id: device.key_id,
            received_at_ms: unix_now_ms(),
            relay: relay.to_owned(),
        }),
        Ok(
            record @ (Record::DeviceStatus(_)
            | Record::PumpTelemetry(_)
            | Record::PacemakerTelemetry(_)
            | Record::CommandAck(_)),
        ) => {
            pending.steps.push(Step::Therapy {
                seq,
                record: Box::new(record),
            });
            None
        }
        Ok(other) => {
            stats.record_malformed();
            debug!(device_id = %device.device_id, seq, record_type = ?other.record_type(), "record type not stored by this gateway");
            pending.steps.push(Step::Skip {
                from: seq,
                to: seq.saturating_add(1),
                reason: SkipReason::Rejected,
            });
            None
        }
        Err(error) => {
            stats.record_malformed();
            debug!(device_id = %device.device_id, seq, len = payload.len(), %error, "authenticated record is malformed");
            pending.steps.push(Step::Skip {
                from: seq,
                to: seq.saturating_add(1),
                reason: SkipReason::Rejected,
            });
            None
        }
    }
}

/// Builds the channel's stream state from the committed one. The cloud keeps no
/// retransmission queue across restarts, so nothing below `tx_next` is held.
fn stream_from(state: ChannelState) -> StreamState {
    let rx_committed = state.rx_acked_seq.map_or(0, |seq| seq.saturating_add(1));
    StreamState {
        tx_next: state.tx_next_seq,
        tx_acked: 0,
        tx_oldest: state.tx_next_seq,
        rx_next: rx_committed,
        rx_committed,
    }
}
