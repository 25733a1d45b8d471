//! Therapy commands on a tunnel: status, telemetry and acknowledgements from the device
//! into the therapy tables, and queued signed commands from the outbox to the device.
//!
//! A device gets commands only after its handshake and a status report on this
//! connection, so every command is signed for the epoch and challenge the device
//! reported. Each command travels as one application message, is kept until the tunnel
//! acknowledges it, and is sealed again under its sequence number after
//! [`RETRANSMIT_TIMEOUT`]. A command sent on an earlier connection that the device did
//! not confirm is sent again on the next one as a new message; the device's executor
//! runs it at most once either way.

use std::time::{Duration, Instant};

use medtunnel_proto::wire::MAX_FRAME_LEN;
use medtunnel_records::Record;
use medtunnel_therapy::{OutboxCommand, TherapyError};
use tracing::{debug, error};

use crate::shared::unix_now_ms;
use crate::tunnel::{Close, Step, Tunnel};

/// Time after which an unacknowledged command or status request is sealed again.
pub(crate) const RETRANSMIT_TIMEOUT: Duration = Duration::from_secs(1);
/// Shortest time between two status requests on one connection.
const STATUS_REQUEST_INTERVAL: Duration = Duration::from_secs(2);

/// Therapy state of one connection.
#[derive(Default)]
pub(crate) struct TherapyLink {
    /// Whether the device is enrolled, once a therapy record showed it.
    enrolled: bool,
    /// Whether a status report arrived on this connection.
    status_seen: bool,
    /// Messages sent and not yet acknowledged by the tunnel, in sequence order.
    in_flight: Vec<InFlight>,
    last_status_request: Option<Instant>,
}

struct InFlight {
    seq: u64,
    /// Outbox row of a command; `None` for a status request.
    outbox_id: Option<i64>,
    payload: Vec<u8>,
    sent_at: Instant,
}

impl Tunnel {
    /// Whether the connection loop should call [`Tunnel::poll`] on its timer.
    pub(crate) fn wants_poll(&self) -> bool {
        self.therapy.enrolled && self.therapy.status_seen
    }

    /// Sends newly queued commands and retransmits unacknowledged ones. Returns the
    /// frames to send.
    pub(crate) async fn poll(&mut self) -> Result<Vec<Vec<u8>>, Close> {
        let mut outgoing = Vec::new();
        self.retransmit(&mut outgoing);
        self.deliver_due(&mut outgoing).await?;
        Ok(outgoing)
    }

    /// Stores the batch's therapy records in order. Runs before the store commit that
    /// lets the acknowledgement pass them, so an acknowledged record is durable.
    pub(crate) async fn handle_therapy_records(&mut self, steps: &[Step]) -> Result<(), Close> {
        let records: Vec<Record> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Therapy { record, .. } => Some(**record),
                _ => None,
            })
            .collect();
        let Some(device_id) = self.device_id().map(str::to_owned) else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        let source = self.relay.clone();
        let id = device_id.clone();
        let (enrolled, status_seen) = self
            .therapy_call(move |delivery| {
                if !delivery.is_enrolled(&id)? {
                    return Ok((false, false));
                }
                let mut status_seen = false;
                for record in &records {
                    let now_ms = unix_now_ms();
                    match record {
                        Record::DeviceStatus(status) => {
                            delivery.record_status(&id, status, now_ms, &source)?;
                            status_seen = true;
                        }
                        Record::CommandAck(ack) => {
                            delivery.record_ack(&id, ack, now_ms, &source)?
                        }
                        other => delivery.record_telemetry(&id, other, now_ms)?,
                    }
                }
                Ok((true, status_seen))
            })
            .await?;
        if !enrolled {
            debug!(
                connection = self.connection,
                device_id, "therapy records of a device not enrolled; ignored"
            );
        }
        self.therapy.enrolled = enrolled;
        self.therapy.status_seen |= status_seen;
        Ok(())
    }

    /// Drops messages below `acked` from the in-flight list and marks their commands as
    /// delivered.
    pub(crate) async fn release_delivered(&mut self, acked: u64) -> Result<(), Close> {
        let (done, kept): (Vec<InFlight>, Vec<InFlight>) =
            std::mem::take(&mut self.therapy.in_flight)
                .into_iter()
                .partition(|message| message.seq < acked);
        self.therapy.in_flight = kept;
        let outbox_ids: Vec<i64> = done.iter().filter_map(|m| m.outbox_id).collect();
        let Some(device_id) = self.device_id().map(str::to_owned) else {
            return Ok(());
        };
        if outbox_ids.is_empty() {
            return Ok(());
        }
        self.therapy_call(move |delivery| {
            delivery.mark_delivered(&device_id, &outbox_ids, unix_now_ms())
        })
        .await
    }

    /// Seals and queues for sending every command due for the device, and a status
    /// request when the therapy service waits for one.
    pub(crate) async fn deliver_due(&mut self, outgoing: &mut Vec<Vec<u8>>) -> Result<(), Close> {
        if !self.wants_poll() {
            return Ok(());
        }
        let Some(device) = self.device.as_ref() else {
            return Ok(());
        };
        if !device.channel.is_established() {
            return Ok(());
        }
        let device_id = device.device_id.clone();
        let connection = self.relay.clone();
        let id = device_id.clone();
        let due = self
            .therapy_call(move |delivery| delivery.due(&id, &connection, unix_now_ms()))
            .await?;
        let commands: Vec<OutboxCommand> = due
            .commands
            .into_iter()
            .filter(|c| {
                !self
                    .therapy
                    .in_flight
                    .iter()
                    .any(|m| m.outbox_id == Some(c.outbox_id))
            })
            .collect();
        let status_request = due.status_request.filter(|_| self.status_request_due());
        let count = commands.len() + usize::from(status_request.is_some());
        if count == 0 {
            return Ok(());
        }
        let first_seq = self.reserve_sequences(&device_id, count as u64).await?;
        let mut seq = first_seq;
        for command in commands {
            let (id, connection) = (device_id.clone(), self.relay.clone());
            let marked = command.clone();
            self.therapy_call(move |delivery| {
                delivery.mark_sent(&id, &marked, &connection, seq, unix_now_ms())
            })
            .await?;
            let mut payload = Vec::with_capacity(command.command.encoded_len());
            command.command.encode_into(&mut payload);
            self.send_message(seq, Some(command.outbox_id), payload, outgoing);
            seq += 1;
        }
        if let Some(request) = status_request {
            let mut payload = Vec::new();
            request.encode_into(&mut payload);
            self.send_message(seq, None, payload, outgoing);
            self.therapy.last_status_request = Some(Instant::now());
            debug!(
                connection = self.connection,
                device_id,
                challenge = request.challenge_wanted,
                "status requested"
            );
        }
        Ok(())
    }

    fn status_request_due(&self) -> bool {
        let in_flight = self.therapy.in_flight.iter().any(|m| m.outbox_id.is_none());
        let recent = self
            .therapy
            .last_status_request
            .is_some_and(|at| at.elapsed() < STATUS_REQUEST_INTERVAL);
        !in_flight && !recent
    }

    /// Persists the cloud's next sequence number past `count` new messages before any of
    /// them is sealed, so a restarted gateway never reuses one. Returns the first.
    async fn reserve_sequences(&mut self, device_id: &str, count: u64) -> Result<u64, Close> {
        let first = self
            .device
            .as_ref()
            .map_or(0, |device| device.channel.stream().tx_next);
        let id = device_id.to_owned();
        let next = first.saturating_add(count);
        let stored = self
            .shared
            .with_store(move |store| store.record_tx_next_seq(&id, next))
            .await;
        if let Err(error) = stored {
            error!(connection = self.connection, device_id, %error, "storing the next sequence number failed; closing the tunnel");
            return Err(Close::Store);
        }
        Ok(first)
    }

    fn send_message(
        &mut self,
        seq: u64,
        outbox_id: Option<i64>,
        payload: Vec<u8>,
        outgoing: &mut Vec<Vec<u8>>,
    ) {
        let now_ms = self.shared.now_ms();
        let Some(device) = self.device.as_mut() else {
            return;
        };
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        match device.channel.send(now_ms, &payload, &mut frame) {
            Ok(sent) => {
                debug_assert_eq!(sent.seq, seq, "sequence numbers were reserved in order");
                frame.truncate(sent.len);
                outgoing.push(frame);
            }
            Err(error) => {
                debug!(connection = self.connection, device_id = %device.device_id, %error, "message not sealed; it is sent again later");
                return;
            }
        }
        self.therapy.in_flight.push(InFlight {
            seq,
            outbox_id,
            payload,
            sent_at: Instant::now(),
        });
    }

    fn retransmit(&mut self, outgoing: &mut Vec<Vec<u8>>) {
        let now_ms = self.shared.now_ms();
        let Some(device) = self.device.as_mut() else {
            return;
        };
        for message in &mut self.therapy.in_flight {
            if message.sent_at.elapsed() < RETRANSMIT_TIMEOUT {
                continue;
            }
            let mut frame = vec![0u8; MAX_FRAME_LEN];
            match device
                .channel
                .resend(now_ms, message.seq, &message.payload, &mut frame)
            {
                Ok(len) => {
                    frame.truncate(len);
                    outgoing.push(frame);
                    message.sent_at = Instant::now();
                }
                Err(error) => {
                    debug!(connection = self.connection, seq = message.seq, %error, "retransmission not sealed");
                    break;
                }
            }
        }
    }

    async fn therapy_call<T, F>(&self, work: F) -> Result<T, Close>
    where
        T: Send + 'static,
        F: FnOnce(&mut medtunnel_therapy::CommandDelivery) -> Result<T, TherapyError>
            + Send
            + 'static,
    {
        match self.shared.with_delivery(work).await {
            Ok(value) => Ok(value),
            Err(failure) => {
                error!(
                    connection = self.connection,
                    device_id = self.device_id().unwrap_or(""),
                    error = %failure,
                    "therapy database call failed; closing the tunnel without acknowledging"
                );
                Err(Close::Store)
            }
        }
    }
}
