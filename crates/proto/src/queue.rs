//! A fixed-capacity retransmission queue for a sender without a heap.
//!
//! The sender pushes each message with its sequence number after sealing it, drops the
//! acknowledged ones when an acknowledgement arrives, and seals the rest again after a
//! reconnect or a timeout. Capacity and message size are fixed at compile time, so a
//! full queue is an explicit [`Error::QueueFull`] that the application must handle
//! (a CGM keeps the reading in its own history and raises "data not sent").

use crate::error::Error;

/// One held message.
#[derive(Clone, Copy)]
struct Slot<const LEN: usize> {
    seq: u64,
    len: usize,
    bytes: [u8; LEN],
}

/// Up to `SLOTS` unacknowledged messages of at most `LEN` bytes each, oldest first.
pub struct RetransmitQueue<const SLOTS: usize, const LEN: usize> {
    slots: [Slot<LEN>; SLOTS],
    head: usize,
    count: usize,
}

impl<const SLOTS: usize, const LEN: usize> Default for RetransmitQueue<SLOTS, LEN> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const SLOTS: usize, const LEN: usize> RetransmitQueue<SLOTS, LEN> {
    /// Creates an empty queue.
    pub const fn new() -> Self {
        RetransmitQueue {
            slots: [Slot {
                seq: 0,
                len: 0,
                bytes: [0u8; LEN],
            }; SLOTS],
            head: 0,
            count: 0,
        }
    }

    /// Appends a message. Sequence numbers must increase from one push to the next.
    pub fn push(&mut self, seq: u64, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > LEN {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: LEN,
            });
        }
        if self.count == SLOTS {
            return Err(Error::QueueFull);
        }
        let index = (self.head + self.count) % SLOTS;
        let slot = &mut self.slots[index];
        slot.seq = seq;
        slot.len = payload.len();
        slot.bytes[..payload.len()].copy_from_slice(payload);
        self.count += 1;
        Ok(())
    }

    /// Drops every message whose sequence number is below `acked`.
    pub fn release_below(&mut self, acked: u64) {
        while self.count > 0 && self.slots[self.head].seq < acked {
            self.head = (self.head + 1) % SLOTS;
            self.count -= 1;
        }
    }

    /// Messages held, oldest first, as (sequence number, payload).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        (0..self.count).map(move |offset| {
            let slot = &self.slots[(self.head + offset) % SLOTS];
            (slot.seq, &slot.bytes[..slot.len])
        })
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no message is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// True when another push would fail.
    pub fn is_full(&self) -> bool {
        self.count == SLOTS
    }

    /// Sequence number of the oldest message held.
    pub fn oldest_seq(&self) -> Option<u64> {
        (self.count > 0).then(|| self.slots[self.head].seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_release_and_iterate_in_order() {
        let mut queue: RetransmitQueue<3, 8> = RetransmitQueue::new();
        queue.push(5, b"a").unwrap();
        queue.push(6, b"bb").unwrap();
        queue.push(7, b"ccc").unwrap();
        assert_eq!(queue.push(8, b"d"), Err(Error::QueueFull));
        queue.release_below(7);
        assert_eq!(queue.len(), 1);
        queue.push(8, b"d").unwrap();
        let held: [(u64, usize); 2] = [(7, 3), (8, 1)];
        for ((seq, payload), (expected_seq, expected_len)) in queue.iter().zip(held) {
            assert_eq!(seq, expected_seq);
            assert_eq!(payload.len(), expected_len);
        }
        assert_eq!(queue.oldest_seq(), Some(7));
    }

    #[test]
    fn oversized_payload_is_rejected() {
        let mut queue: RetransmitQueue<2, 4> = RetransmitQueue::new();
        assert_eq!(
            queue.push(0, b"12345"),
            Err(Error::PayloadTooLarge { len: 5, max: 4 })
        );
        assert!(queue.is_empty());
    }
}
