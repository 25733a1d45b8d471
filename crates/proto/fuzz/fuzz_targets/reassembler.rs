//! Feeds arbitrary packets to a `Reassembler` and checks every completed frame against a
//! reference model, then fragments the input itself and checks the round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtunnel_proto::fragment::{
    FragmentError, Fragmenter, Reassembler, FRAGMENT_HEADER_LEN, MAX_FRAGMENTS, MAX_LINK_MTU,
    MIN_LINK_MTU,
};

/// Maximum frame length the reassembler under test holds, in bytes.
const CAPACITY: usize = 1100;

fuzz_target!(|data: &[u8]| {
    check_packet_stream(data);
    check_round_trip(data);
});

/// Expected state of the reassembler: the message in progress and its bytes so far.
#[derive(Default)]
struct Model {
    /// Message id and next expected index, or `None` between messages.
    current: Option<(u8, u8)>,
    frame: Vec<u8>,
}

impl Model {
    /// Applies one packet and returns the expected outcome.
    fn push(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        let outcome = self.try_push(packet);
        if outcome.is_err() {
            self.current = None;
            self.frame.clear();
        }
        outcome
    }

    fn try_push(&mut self, packet: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        if packet.len() <= FRAGMENT_HEADER_LEN || packet.len() > MAX_LINK_MTU {
            return Err(());
        }
        let (id, index, last) = (packet[0], packet[1] & 0x7f, packet[1] & 0x80 != 0);
        if index == 0 {
            self.current = Some((id, 0));
            self.frame.clear();
        }
        if self.current != Some((id, index)) {
            return Err(());
        }
        if !last && usize::from(index) == MAX_FRAGMENTS - 1 {
            return Err(());
        }
        self.frame.extend_from_slice(&packet[FRAGMENT_HEADER_LEN..]);
        if self.frame.len() > CAPACITY {
            return Err(());
        }
        if last {
            self.current = None;
            return Ok(Some(std::mem::take(&mut self.frame)));
        }
        self.current = Some((id, index + 1));
        Ok(None)
    }
}

/// Splits `data` into packets, each prefixed by a one-byte length, and pushes them.
fn check_packet_stream(data: &[u8]) {
    let mut reassembler = Reassembler::<CAPACITY>::new();
    let mut model = Model::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;

        let discarded_before = reassembler.discarded();
        let outcome = reassembler.push(packet);
        let expected = model.push(packet);
        match (outcome, expected) {
            (Ok(Some(frame)), Ok(Some(expected))) => {
                assert!(!frame.is_empty());
                assert!(frame.len() <= CAPACITY);
                assert_eq!(frame, &expected[..]);
            }
            (Ok(None), Ok(None)) | (Err(_), Err(())) => {}
            (outcome, expected) => panic!("reassembler {outcome:?}, model {expected:?}"),
        }
        assert!(reassembler.discarded() - discarded_before <= 1);
    }
}

/// Fragments the input after two parameter bytes and reassembles the packets.
fn check_round_trip(data: &[u8]) {
    let [mtu_byte, message_id, frame @ ..] = data else {
        return;
    };
    let mtu = MIN_LINK_MTU + usize::from(*mtu_byte) % (MAX_LINK_MTU - MIN_LINK_MTU + 1);
    let max = (mtu - FRAGMENT_HEADER_LEN) * MAX_FRAGMENTS;
    let mut fragmenter = match Fragmenter::new(frame, mtu, *message_id) {
        Ok(fragmenter) => fragmenter,
        Err(FragmentError::EmptyFrame) => return assert!(frame.is_empty()),
        Err(FragmentError::FrameTooLarge { len, max: limit }) => {
            assert_eq!(len, frame.len());
            assert_eq!(limit, max);
            return assert!(frame.len() > max);
        }
        Err(error) => panic!("unexpected error {error:?}"),
    };

    let mut reassembler = Reassembler::<CAPACITY>::new();
    let mut out = [0u8; MAX_LINK_MTU];
    let mut packets = 0;
    let mut completed = None;
    while let Some(len) = fragmenter
        .next_packet(&mut out)
        .expect("buffer fits any packet")
    {
        assert!(len <= mtu);
        packets += 1;
        match reassembler.push(&out[..len]) {
            Ok(Some(joined)) => completed = Some(joined.to_vec()),
            Ok(None) => {}
            Err(error) => {
                assert_eq!(error, FragmentError::MessageTooLarge);
                assert!(frame.len() > CAPACITY);
                return;
            }
        }
    }
    assert_eq!(packets, fragmenter.packet_count());
    assert_eq!(completed.as_deref(), Some(frame));
    assert_eq!(reassembler.discarded(), 0);
}
