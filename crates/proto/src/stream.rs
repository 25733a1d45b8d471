//! Per-direction sequence numbers and cumulative acknowledgements above the transport.
//!
//! The transport rejects replays of a frame. This layer also detects a message that the
//! relay withholds (a gap), reports to the sender which messages arrived so it can drop them
//! from its retransmission queue, and lets the receiver acknowledge only what it handled
//! durably (the cloud acknowledges a reading after its database commit).

use crate::error::Error;
use crate::record::Record;

/// Sequence-number state of both directions of one tunnel. It outlives sessions: the
/// device persists it across reboots and the cloud across restarts, so a new handshake
/// never resets what was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamState {
    /// Next sequence number this side assigns to a message it sends.
    pub tx_next: u64,
    /// The peer acknowledged every sequence number below this.
    pub tx_acked: u64,
    /// This side gave up retransmitting every sequence number below this (at least
    /// `tx_acked`). A device that lost its queue in a reboot raises it to `tx_next`.
    pub tx_oldest: u64,
    /// Next sequence number expected from the peer: every one below was delivered.
    pub rx_next: u64,
    /// Every sequence number below this was handled durably; this is the value sent as
    /// the acknowledgement.
    pub rx_committed: u64,
}

/// Contents of one authenticated frame. Several fields can be set at once: a data
/// record also carries an acknowledgement, and a sender's declaration of lost messages
/// comes with the first message after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Incoming<'a> {
    /// The handshake completed with this frame (a response on the device).
    pub handshake_completed: bool,
    /// The peer acknowledged new messages: every sequence number below this value.
    pub acked: Option<u64>,
    /// A new message, in order: its sequence number and payload. Call `acknowledge`
    /// with `seq + 1` once it is handled durably.
    pub data: Option<(u64, &'a [u8])>,
    /// A message delivered before arrived again (a retransmission); only an
    /// acknowledgement is due.
    pub duplicate: Option<u64>,
    /// A message arrived ahead of the expected one, so messages in between were dropped,
    /// delayed or withheld on the way. The early message is not delivered; the sender
    /// retransmits from its last acknowledgement.
    pub gap: Option<Gap>,
    /// The sender declared that it gave up the messages `from..to` (for example after a
    /// reboot that lost its queue): they will never arrive.
    pub lost: Option<Lost>,
    /// An acknowledgement should be sent soon (data or a duplicate arrived, or the
    /// handshake completed and the peer waits for a first frame under the new keys).
    pub ack_due: bool,
}

/// A detected gap in the peer's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Sequence number expected.
    pub expected: u64,
    /// Sequence number received.
    pub received: u64,
}

/// Sequence numbers the peer gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// First lost sequence number.
    pub from: u64,
    /// One past the last lost sequence number.
    pub to: u64,
}

impl StreamState {
    /// Applies one decoded record and reports what it brought.
    pub(crate) fn on_record<'a>(&mut self, record: Record<'a>) -> Result<Incoming<'a>, Error> {
        let mut incoming = Incoming::default();
        let ack = match record {
            Record::Ack { ack } | Record::Data { ack, .. } => ack,
        };
        if ack > self.tx_next {
            return Err(Error::AckBeyondSent {
                acked: ack,
                next: self.tx_next,
            });
        }
        if ack > self.tx_acked {
            self.tx_acked = ack;
            self.tx_oldest = self.tx_oldest.max(ack);
            incoming.acked = Some(ack);
        }
        if let Record::Data {
            seq,
            oldest,
            payload,
            ..
        } = record
        {
            self.on_data(seq, oldest, payload, &mut incoming);
        }
        Ok(incoming)
    }

    fn on_data<'a>(
        &mut self,
        seq: u64,
        oldest: u64,
        payload: &'a [u8],
        incoming: &mut Incoming<'a>,
    ) {
        if oldest > self.rx_next && oldest <= seq {
            incoming.lost = Some(Lost {
                from: self.rx_next,
                to: oldest,
            });
            self.rx_next = oldest;
            self.rx_committed = self.rx_committed.max(oldest);
        }
        incoming.ack_due = true;
        if seq < self.rx_next {
            incoming.duplicate = Some(seq);
        } else if seq == self.rx_next {
            self.rx_next += 1;
            incoming.data = Some((seq, payload));
        } else {
            incoming.gap = Some(Gap {
                expected: self.rx_next,
                received: seq,
            });
        }
    }

    /// Records that every message below `next` was handled durably; the value is sent
    /// as the acknowledgement from now on. Values beyond delivery are clamped.
    pub fn acknowledge(&mut self, next: u64) {
        let next = next.min(self.rx_next);
        self.rx_committed = self.rx_committed.max(next);
    }

    /// Assigns the next sequence number.
    pub(crate) fn allocate(&mut self) -> u64 {
        let seq = self.tx_next;
        self.tx_next += 1;
        seq
    }
}
