//! Bluetooth LE fragmentation of tunnel frames.
//!
//! A tunnel frame can be longer than one Bluetooth LE packet, so the sender splits it
//! with a [`Fragmenter`] and the receiver joins the pieces with a [`Reassembler`]. Each
//! packet is a two-byte header followed by a non-empty chunk of the frame:
//!
//! ```text
//! byte 0    message id, the same for all fragments of one frame
//! byte 1    bit 7: set on the last fragment; bits 0..=6: fragment index, from 0
//! byte 2..  chunk of the frame
//! ```
//!
//! Fragments of one message must arrive in order and without gaps. A fragment with index
//! 0 always starts a new message and drops an incomplete one. Any other deviation rejects
//! the packet and drops the partial message as well. Bluetooth LE links deliver in order,
//! so a deviation means loss or tampering. A sender that retransmits a frame starts again
//! at index 0.
//!
//! This layer adds no integrity of its own. The reassembled frame is authenticated as a
//! whole by the AEAD tag of the transport layer above, so a relay that truncates, splices,
//! reorders or replays fragments produces either no frame at all or a frame that fails
//! authentication. The message id only separates consecutive frames; it is not a secret
//! and not a sequence number.

use core::fmt;

/// Length in bytes of the header in front of every fragment.
pub const FRAGMENT_HEADER_LEN: usize = 2;
/// Smallest packet length the link must carry: the notification payload under the
/// default ATT_MTU of 23 bytes (23 minus the 3-byte ATT header).
pub const MIN_LINK_MTU: usize = 20;
/// Largest packet length the link can carry: a 251-byte link-layer payload with data
/// length extension, minus the 4-byte L2CAP and 3-byte ATT headers.
pub const MAX_LINK_MTU: usize = 244;
/// Maximum number of fragments per frame, fixed by the 7-bit fragment index.
pub const MAX_FRAGMENTS: usize = 128;

/// Header bit that marks the last fragment of a message.
const LAST_FLAG: u8 = 0x80;
/// Header bits that carry the fragment index.
const INDEX_MASK: u8 = 0x7f;

const _: () = assert!(MAX_FRAGMENTS == INDEX_MASK as usize + 1);
const _: () = assert!(MIN_LINK_MTU > FRAGMENT_HEADER_LEN);
const _: () = assert!(MIN_LINK_MTU <= MAX_LINK_MTU);

/// Reason a frame could not be fragmented or a packet could not be reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentError {
    /// Caller misuse: the link MTU given to [`Fragmenter::new`] is outside
    /// [`MIN_LINK_MTU`]`..=`[`MAX_LINK_MTU`].
    MtuOutOfRange {
        /// Link MTU that was passed, in bytes.
        mtu: usize,
    },
    /// Caller misuse: the frame needs more than [`MAX_FRAGMENTS`] fragments at this MTU.
    FrameTooLarge {
        /// Frame length in bytes.
        len: usize,
        /// Maximum frame length in bytes at this MTU.
        max: usize,
    },
    /// Caller misuse: the frame to fragment is empty.
    EmptyFrame,
    /// Caller misuse: the output buffer is shorter than the next packet. Nothing was
    /// written, so the call can be repeated with a larger buffer.
    BufferTooSmall {
        /// Length in bytes of the next packet.
        needed: usize,
    },
    /// Peer or relay input: the packet is shorter than the header, carries an empty
    /// chunk, or is longer than [`MAX_LINK_MTU`].
    Malformed,
    /// Peer or relay input: the fragment does not continue the message in progress. Its
    /// index is not the next one, its message id differs, or no message is in progress.
    UnexpectedFragment,
    /// Peer or relay input: the message is longer than the reassembly buffer, or it has
    /// more than [`MAX_FRAGMENTS`] fragments.
    MessageTooLarge,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::MtuOutOfRange { mtu } => write!(
                f,
                "link MTU {mtu} is outside {MIN_LINK_MTU}..={MAX_LINK_MTU} bytes"
            ),
            FragmentError::FrameTooLarge { len, max } => write!(
                f,
                "frame of {len} bytes exceeds the maximum of {max} bytes at this MTU"
            ),
            FragmentError::EmptyFrame => f.write_str("frame to fragment is empty"),
            FragmentError::BufferTooSmall { needed } => {
                write!(f, "output buffer is too small, {needed} bytes needed")
            }
            FragmentError::Malformed => f.write_str("malformed fragment packet"),
            FragmentError::UnexpectedFragment => {
                f.write_str("fragment does not continue the message in progress")
            }
            FragmentError::MessageTooLarge => {
                f.write_str("reassembled message exceeds the buffer or fragment limit")
            }
        }
    }
}

/// Splitter of one frame into link packets of at most `mtu` bytes each.
///
/// All packets but the last carry `mtu - FRAGMENT_HEADER_LEN` bytes of the frame.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    frame: &'a [u8],
    chunk_len: usize,
    message_id: u8,
    /// Index of the next fragment to write.
    next_index: usize,
    packet_count: usize,
}

impl<'a> Fragmenter<'a> {
    /// Creates a fragmenter for `frame` on a link that carries packets of up to `mtu`
    /// bytes, header included.
    ///
    /// # Errors
    ///
    /// [`FragmentError::MtuOutOfRange`] when `mtu` is outside
    /// [`MIN_LINK_MTU`]`..=`[`MAX_LINK_MTU`], [`FragmentError::EmptyFrame`] for an empty
    /// frame, and [`FragmentError::FrameTooLarge`] when the frame needs more than
    /// [`MAX_FRAGMENTS`] packets.
    pub fn new(frame: &'a [u8], mtu: usize, message_id: u8) -> Result<Self, FragmentError> {
        if !(MIN_LINK_MTU..=MAX_LINK_MTU).contains(&mtu) {
            return Err(FragmentError::MtuOutOfRange { mtu });
        }
        if frame.is_empty() {
            return Err(FragmentError::EmptyFrame);
        }
        let chunk_len = mtu - FRAGMENT_HEADER_LEN;
        let max = chunk_len * MAX_FRAGMENTS;
        if frame.len() > max {
            return Err(FragmentError::FrameTooLarge {
                len: frame.len(),
                max,
            });
        }
        Ok(Fragmenter {
            frame,
            chunk_len,
            message_id,
            next_index: 0,
            packet_count: frame.len().div_ceil(chunk_len),
        })
    }

    /// Writes the next packet, header and chunk, to the front of `out` and returns its
    /// length, or `None` once every packet was written.
    ///
    /// # Errors
    ///
    /// [`FragmentError::BufferTooSmall`] when `out` is shorter than the packet. Nothing
    /// is written and the fragmenter stays at the same packet.
    pub fn next_packet(&mut self, out: &mut [u8]) -> Result<Option<usize>, FragmentError> {
        if self.next_index >= self.packet_count {
            return Ok(None);
        }
        let start = self.next_index * self.chunk_len;
        let end = usize::min(start + self.chunk_len, self.frame.len());
        let chunk = &self.frame[start..end];
        let packet_len = FRAGMENT_HEADER_LEN + chunk.len();
        let Some(packet) = out.get_mut(..packet_len) else {
            return Err(FragmentError::BufferTooSmall { needed: packet_len });
        };

        let last = self.next_index + 1 == self.packet_count;
        // `next_index` is below `packet_count`, which is at most MAX_FRAGMENTS (128), so
        // it fits in the 7 index bits.
        let mut flags = self.next_index as u8;
        if last {
            flags |= LAST_FLAG;
        }
        packet[0] = self.message_id;
        packet[1] = flags;
        packet[FRAGMENT_HEADER_LEN..].copy_from_slice(chunk);
        self.next_index += 1;
        Ok(Some(packet_len))
    }

    /// Returns the total number of packets for this frame, between 1 and
    /// [`MAX_FRAGMENTS`].
    pub fn packet_count(&self) -> usize {
        self.packet_count
    }
}

/// Joiner of fragments back into frames of at most `N` bytes, in a fixed buffer.
///
/// Feed every packet from the link to [`push`](Self::push). A returned frame is only as
/// trustworthy as the relay that delivered its fragments: pass it to the transport layer,
/// which authenticates it.
#[derive(Debug, Clone)]
pub struct Reassembler<const N: usize> {
    buf: [u8; N],
    /// Number of frame bytes in `buf` for the message in progress.
    len: usize,
    /// Message in progress, or `None` between messages.
    current: Option<Progress>,
    discarded: u64,
}

/// Identity and position of the message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    message_id: u8,
    next_index: u8,
}

/// Parsed fragment header and the chunk after it.
struct Fragment<'p> {
    message_id: u8,
    index: u8,
    last: bool,
    chunk: &'p [u8],
}

impl<const N: usize> Reassembler<N> {
    /// Creates a reassembler with no message in progress.
    pub const fn new() -> Self {
        Reassembler {
            buf: [0; N],
            len: 0,
            current: None,
            discarded: 0,
        }
    }

    /// Adds one packet from the link.
    ///
    /// Returns `Ok(Some(frame))` when the packet is the last fragment of a message,
    /// `Ok(None)` when more fragments are needed. The frame borrows the internal buffer
    /// until the next call.
    ///
    /// # Errors
    ///
    /// [`FragmentError::Malformed`], [`FragmentError::UnexpectedFragment`] or
    /// [`FragmentError::MessageTooLarge`] when the packet is rejected. The partial message
    /// is dropped and the reassembler waits for a fragment with index 0.
    pub fn push(&mut self, packet: &[u8]) -> Result<Option<&[u8]>, FragmentError> {
        match self.try_push(packet) {
            Ok(true) => {
                let len = self.len;
                self.len = 0;
                Ok(Some(&self.buf[..len]))
            }
            Ok(false) => Ok(None),
            Err(error) => {
                self.discard();
                Err(error)
            }
        }
    }

    /// Drops the message in progress, if any, without counting it as discarded.
    pub fn reset(&mut self) {
        self.current = None;
        self.len = 0;
    }

    /// Returns the number of messages dropped before completion: each partial message
    /// abandoned by a new fragment with index 0, and each rejected packet together with
    /// the partial message it ends, counted once.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Applies `packet` to the state and returns whether it completed a message. On error
    /// the caller discards the state.
    fn try_push(&mut self, packet: &[u8]) -> Result<bool, FragmentError> {
        let fragment = parse_packet(packet)?;
        if fragment.index == 0 {
            // Checked before `start`, so a rejected first fragment counts as one discard.
            if fragment.chunk.len() > N {
                return Err(FragmentError::MessageTooLarge);
            }
            self.start(fragment.message_id);
        }
        let Some(progress) = self.current else {
            return Err(FragmentError::UnexpectedFragment);
        };
        if fragment.message_id != progress.message_id || fragment.index != progress.next_index {
            return Err(FragmentError::UnexpectedFragment);
        }
        // Index 127 is the last one the header can carry, so it must end the message.
        if !fragment.last && fragment.index == INDEX_MASK {
            return Err(FragmentError::MessageTooLarge);
        }
        self.append(fragment.chunk)?;

        if fragment.last {
            self.current = None;
            return Ok(true);
        }
        self.current = Some(Progress {
            next_index: progress.next_index + 1,
            ..progress
        });
        Ok(false)
    }

    /// Starts a new message, abandoning the one in progress.
    fn start(&mut self, message_id: u8) {
        if self.current.is_some() {
            self.discarded = self.discarded.saturating_add(1);
        }
        self.current = Some(Progress {
            message_id,
            next_index: 0,
        });
        self.len = 0;
    }

    fn append(&mut self, chunk: &[u8]) -> Result<(), FragmentError> {
        let end = self.len + chunk.len();
        let Some(target) = self.buf.get_mut(self.len..end) else {
            return Err(FragmentError::MessageTooLarge);
        };
        target.copy_from_slice(chunk);
        self.len = end;
        Ok(())
    }

    fn discard(&mut self) {
        self.discarded = self.discarded.saturating_add(1);
        self.reset();
    }
}

impl<const N: usize> Default for Reassembler<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Splits a packet into header fields and chunk, rejecting impossible lengths.
fn parse_packet(packet: &[u8]) -> Result<Fragment<'_>, FragmentError> {
    if packet.len() > MAX_LINK_MTU {
        return Err(FragmentError::Malformed);
    }
    let [message_id, flags, chunk @ ..] = packet else {
        return Err(FragmentError::Malformed);
    };
    if chunk.is_empty() {
        return Err(FragmentError::Malformed);
    }
    Ok(Fragment {
        message_id: *message_id,
        index: flags & INDEX_MASK,
        last: flags & LAST_FLAG != 0,
        chunk,
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    const MTUS: [usize; 5] = [20, 23, 100, 185, 244];
    const MAX_FRAME: usize = 1100;

    /// Deterministic frame contents that differ at every position of one frame.
    fn test_frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + len) as u8).collect()
    }

    /// Fragments `frame` and returns the packets.
    fn fragment(frame: &[u8], mtu: usize, message_id: u8) -> Vec<Vec<u8>> {
        let mut fragmenter = Fragmenter::new(frame, mtu, message_id).unwrap();
        let mut packets = Vec::new();
        let mut out = [0u8; MAX_LINK_MTU];
        while let Some(len) = fragmenter.next_packet(&mut out).unwrap() {
            packets.push(out[..len].to_vec());
        }
        assert_eq!(packets.len(), fragmenter.packet_count());
        packets
    }

    /// Pushes all packets and returns the completed frame, checking that only the last
    /// packet completes it.
    fn reassemble<const N: usize>(
        reassembler: &mut Reassembler<N>,
        packets: &[Vec<u8>],
    ) -> Vec<u8> {
        let (last, rest) = packets.split_last().unwrap();
        for packet in rest {
            assert_eq!(reassembler.push(packet), Ok(None));
        }
        reassembler.push(last).unwrap().unwrap().to_vec()
    }

    fn frame_lengths() -> impl Iterator<Item = usize> {
        (1..=40).chain((41..=MAX_FRAME).step_by(13)).chain([
            18, 19, 21, 98, 99, 183, 184, 242, 243, 244, 485, 486, 487, 1099, 1100,
        ])
    }

    #[test]
    fn round_trip_across_mtus_and_lengths() {
        let mut reassembler = Reassembler::<MAX_FRAME>::new();
        for mtu in MTUS {
            for len in frame_lengths() {
                let frame = test_frame(len);
                let packets = fragment(&frame, mtu, len as u8);
                let chunk_len = mtu - FRAGMENT_HEADER_LEN;
                assert_eq!(
                    packets.len(),
                    len.div_ceil(chunk_len),
                    "mtu {mtu} len {len}"
                );
                for packet in &packets {
                    assert!(packet.len() <= mtu, "mtu {mtu} len {len}");
                }
                let joined = reassemble(&mut reassembler, &packets);
                assert_eq!(joined, frame, "mtu {mtu} len {len}");
            }
        }
        assert_eq!(reassembler.discarded(), 0);
    }

    #[test]
    fn packet_header_layout() {
        let frame = test_frame(40);
        let packets = fragment(&frame, 20, 0xa5);
        assert_eq!(packets.len(), 3);
        assert_eq!(packets[0][..2], [0xa5, 0x00]);
        assert_eq!(packets[1][..2], [0xa5, 0x01]);
        assert_eq!(packets[2][..2], [0xa5, 0x82]);
        assert_eq!(packets[0].len(), 20);
        assert_eq!(packets[2].len(), 2 + 40 - 36);
        assert_eq!(packets[0][2..], frame[..18]);
    }

    #[test]
    fn max_frame_uses_all_indices() {
        let mtu = 20;
        let max = (mtu - FRAGMENT_HEADER_LEN) * MAX_FRAGMENTS;
        let frame = test_frame(max);
        let packets = fragment(&frame, mtu, 9);
        assert_eq!(packets.len(), MAX_FRAGMENTS);
        assert_eq!(packets[MAX_FRAGMENTS - 1][1], 0xff);
        let mut reassembler = Reassembler::<{ 18 * MAX_FRAGMENTS }>::new();
        assert_eq!(reassemble(&mut reassembler, &packets), frame);
    }

    #[test]
    fn fragmenter_rejects_bad_mtu() {
        let frame = [1u8; 10];
        for mtu in [0, 2, 19, 245, usize::MAX] {
            assert_eq!(
                Fragmenter::new(&frame, mtu, 0).unwrap_err(),
                FragmentError::MtuOutOfRange { mtu }
            );
        }
    }

    #[test]
    fn fragmenter_rejects_empty_frame() {
        assert_eq!(
            Fragmenter::new(&[], 20, 0).unwrap_err(),
            FragmentError::EmptyFrame
        );
    }

    #[test]
    fn fragmenter_rejects_oversized_frame() {
        let frame = test_frame(18 * MAX_FRAGMENTS + 1);
        assert_eq!(
            Fragmenter::new(&frame, 20, 0).unwrap_err(),
            FragmentError::FrameTooLarge {
                len: 18 * MAX_FRAGMENTS + 1,
                max: 18 * MAX_FRAGMENTS
            }
        );
        assert!(Fragmenter::new(&frame, 21, 0).is_ok());
    }

    #[test]
    fn fragmenter_small_buffer_keeps_position() {
        let frame = test_frame(30);
        let mut fragmenter = Fragmenter::new(&frame, 20, 1).unwrap();
        let mut small = [0u8; 19];
        assert_eq!(
            fragmenter.next_packet(&mut small),
            Err(FragmentError::BufferTooSmall { needed: 20 })
        );
        let mut out = [0u8; 20];
        assert_eq!(fragmenter.next_packet(&mut out), Ok(Some(20)));
        assert_eq!(out[1], 0x00);
        // The last packet is shorter, so a 19-byte buffer is enough for it.
        assert_eq!(fragmenter.next_packet(&mut small), Ok(Some(14)));
        assert_eq!(small[1], 0x81);
        assert_eq!(fragmenter.next_packet(&mut small), Ok(None));
        assert_eq!(fragmenter.next_packet(&mut []), Ok(None));
    }

    #[test]
    fn short_packets_are_malformed() {
        let mut reassembler = Reassembler::<64>::new();
        for packet in [&[][..], &[1], &[1, 0x80]] {
            assert_eq!(reassembler.push(packet), Err(FragmentError::Malformed));
        }
        assert_eq!(reassembler.discarded(), 3);
    }

    #[test]
    fn overlong_packet_is_malformed() {
        let mut reassembler = Reassembler::<1024>::new();
        let mut packet = [0u8; MAX_LINK_MTU + 1];
        packet[1] = 0x80;
        assert_eq!(reassembler.push(&packet), Err(FragmentError::Malformed));
        assert_eq!(
            reassembler
                .push(&packet[..MAX_LINK_MTU])
                .unwrap()
                .unwrap()
                .len(),
            242
        );
    }

    #[test]
    fn continuation_without_start_is_rejected() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(
            reassembler.push(&[1, 0x01, 0xaa]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(
            reassembler.push(&[1, 0x81, 0xaa]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 2);
    }

    #[test]
    fn wrong_message_id_is_rejected() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(
            reassembler.push(&[2, 0x81, 0xbb]),
            Err(FragmentError::UnexpectedFragment)
        );
        // The partial message is gone, so its real continuation is rejected too.
        assert_eq!(
            reassembler.push(&[1, 0x81, 0xbb]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 2);
    }

    #[test]
    fn skipped_index_is_rejected() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(
            reassembler.push(&[1, 0x02, 0xbb]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 1);
    }

    #[test]
    fn repeated_index_is_rejected() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(reassembler.push(&[1, 0x01, 0xbb]), Ok(None));
        assert_eq!(
            reassembler.push(&[1, 0x01, 0xbb]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 1);
    }

    #[test]
    fn fragment_after_last_is_rejected() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(
            reassembler.push(&[1, 0x81, 0xbb]).unwrap(),
            Some(&[0xaa, 0xbb][..])
        );
        assert_eq!(
            reassembler.push(&[1, 0x02, 0xcc]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 1);
    }

    #[test]
    fn empty_chunk_is_malformed() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(reassembler.push(&[1, 0x01]), Err(FragmentError::Malformed));
        assert_eq!(
            reassembler.push(&[1, 0x82, 0xcc]),
            Err(FragmentError::UnexpectedFragment)
        );
    }

    #[test]
    fn message_beyond_buffer_is_rejected() {
        let mut reassembler = Reassembler::<4>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 1, 2, 3]), Ok(None));
        assert_eq!(
            reassembler.push(&[1, 0x81, 4, 5]),
            Err(FragmentError::MessageTooLarge)
        );
        assert_eq!(reassembler.discarded(), 1);
        // A message that fits exactly still completes afterwards.
        assert_eq!(reassembler.push(&[2, 0x00, 1, 2, 3]), Ok(None));
        assert_eq!(
            reassembler.push(&[2, 0x81, 4]).unwrap(),
            Some(&[1, 2, 3, 4][..])
        );
        assert_eq!(reassembler.discarded(), 1);
        // An oversized first fragment that abandons a partial message counts once.
        assert_eq!(reassembler.push(&[3, 0x00, 1]), Ok(None));
        assert_eq!(
            reassembler.push(&[4, 0x00, 1, 2, 3, 4, 5]),
            Err(FragmentError::MessageTooLarge)
        );
        assert_eq!(reassembler.discarded(), 2);
        let mut empty = Reassembler::<0>::new();
        assert_eq!(
            empty.push(&[1, 0x80, 1]),
            Err(FragmentError::MessageTooLarge)
        );
    }

    #[test]
    fn index_127_must_be_last() {
        let mut reassembler = Reassembler::<1024>::new();
        for index in 0..127u8 {
            assert_eq!(reassembler.push(&[3, index, index]), Ok(None));
        }
        assert_eq!(
            reassembler.push(&[3, 0x7f, 0xff]),
            Err(FragmentError::MessageTooLarge)
        );
        assert_eq!(reassembler.discarded(), 1);
    }

    #[test]
    fn new_start_abandons_partial_message() {
        let mut reassembler = Reassembler::<64>::new();
        assert_eq!(reassembler.push(&[1, 0x00, 0xaa]), Ok(None));
        assert_eq!(reassembler.push(&[1, 0x01, 0xbb]), Ok(None));
        // The same id starting over abandons the first attempt as well.
        assert_eq!(reassembler.push(&[1, 0x00, 0xcc]), Ok(None));
        assert_eq!(reassembler.discarded(), 1);
        assert_eq!(reassembler.push(&[2, 0x00, 0xdd]), Ok(None));
        assert_eq!(reassembler.discarded(), 2);
        assert_eq!(
            reassembler.push(&[2, 0x81, 0xee]).unwrap(),
            Some(&[0xdd, 0xee][..])
        );
        assert_eq!(reassembler.discarded(), 2);
    }

    #[test]
    fn single_fragment_message_completes() {
        let mut reassembler = Reassembler::<8>::new();
        assert_eq!(reassembler.push(&[0, 0x80, 7]).unwrap(), Some(&[7][..]));
        assert_eq!(
            reassembler.push(&[0, 0x80, 8, 9]).unwrap(),
            Some(&[8, 9][..])
        );
        assert_eq!(reassembler.discarded(), 0);
    }

    #[test]
    fn reset_drops_without_counting() {
        let mut reassembler = Reassembler::<8>::default();
        assert_eq!(reassembler.push(&[0, 0x00, 7]), Ok(None));
        reassembler.reset();
        assert_eq!(
            reassembler.push(&[0, 0x81, 8]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 1);
    }

    #[test]
    fn interleaved_messages_yield_no_frame() {
        let first = fragment(&test_frame(60), 20, 1);
        let second = fragment(&test_frame(60), 20, 2);
        let mut reassembler = Reassembler::<128>::new();
        assert_eq!(reassembler.push(&first[0]), Ok(None));
        assert_eq!(reassembler.push(&second[0]), Ok(None));
        assert_eq!(
            reassembler.push(&first[1]),
            Err(FragmentError::UnexpectedFragment)
        );
        assert_eq!(reassembler.discarded(), 2);
    }

    #[test]
    fn error_display_states_values() {
        assert_eq!(
            FragmentError::MtuOutOfRange { mtu: 300 }.to_string(),
            "link MTU 300 is outside 20..=244 bytes"
        );
        assert_eq!(
            FragmentError::FrameTooLarge {
                len: 5000,
                max: 2304
            }
            .to_string(),
            "frame of 5000 bytes exceeds the maximum of 2304 bytes at this MTU"
        );
        assert_eq!(
            FragmentError::BufferTooSmall { needed: 20 }.to_string(),
            "output buffer is too small, 20 bytes needed"
        );
        assert_eq!(
            FragmentError::Malformed.to_string(),
            "malformed fragment packet"
        );
    }
}
