//! Feeds arbitrary frames and edited valid frames to an established pair. The first input
//! byte selects the mode:
//!
//! - 0: the rest is a frame to `CloudChannel::handle_frame`.
//! - 1: the rest is a frame to `DeviceChannel::handle_frame`.
//! - 2: the rest edits a valid data frame of the device, which then goes to the cloud.
//! - 3: the rest edits a valid data frame of the cloud, which then goes to the device.
//!
//! An edit list starts with a length byte (0 keeps the whole frame, any other value cuts
//! the frame to that value modulo its length plus one) followed by (position, XOR mask)
//! pairs. Nothing may panic, an error must leave the stream state unchanged, only the
//! unchanged valid frame may open, and the valid frame must still open afterwards unless
//! it was accepted already.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtunnel_proto::error::Error;

#[path = "../../tests/fuzz_support/mod.rs"]
#[allow(
    dead_code,
    reason = "the fuzz targets use different parts of the support module"
)]
mod support;

use support::{Established, COMMAND, READING};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut pair = support::established();
    match mode % 4 {
        0 => to_cloud(&mut pair, rest.to_vec()),
        1 => to_device(&mut pair, rest.to_vec()),
        2 => {
            let frame = edit(&pair.device_frame, rest);
            to_cloud(&mut pair, frame);
        }
        _ => {
            let frame = edit(&pair.cloud_frame, rest);
            to_device(&mut pair, frame);
        }
    }
});

fn edit(valid: &[u8], edits: &[u8]) -> Vec<u8> {
    let mut frame = valid.to_vec();
    let Some((&cut, pairs)) = edits.split_first() else {
        return frame;
    };
    if cut != 0 {
        frame.truncate(usize::from(cut) % (valid.len() + 1));
    }
    for pair in pairs.chunks_exact(2) {
        if frame.is_empty() {
            break;
        }
        let at = usize::from(pair[0]) % frame.len();
        frame[at] ^= pair[1];
    }
    frame
}

fn to_cloud(pair: &mut Established, mut frame: Vec<u8>) {
    let unchanged = frame == pair.device_frame;
    let before = *pair.cloud.stream();
    match pair.cloud.handle_frame(2, &mut frame) {
        Ok(incoming) => {
            assert!(unchanged, "a changed frame opened");
            assert_eq!(incoming.data, Some((0, READING)));
        }
        Err(_) => assert_eq!(*pair.cloud.stream(), before, "an error changed the stream"),
    }
    let mut valid = pair.device_frame.clone();
    let again = pair
        .cloud
        .handle_frame(3, &mut valid)
        .map(|incoming| incoming.data);
    check_valid_frame_after(unchanged, again, READING);
}

fn to_device(pair: &mut Established, mut frame: Vec<u8>) {
    let unchanged = frame == pair.cloud_frame;
    let before = *pair.device.stream();
    match pair.device.handle_frame(2, &mut frame) {
        Ok(incoming) => {
            assert!(unchanged, "a changed frame opened");
            assert_eq!(incoming.data, Some((0, COMMAND)));
        }
        Err(_) => assert_eq!(*pair.device.stream(), before, "an error changed the stream"),
    }
    let mut valid = pair.cloud_frame.clone();
    let again = pair
        .device
        .handle_frame(3, &mut valid)
        .map(|incoming| incoming.data);
    check_valid_frame_after(unchanged, again, COMMAND);
}

/// Checks that the valid frame is a replay once accepted and opens otherwise, because a
/// rejected frame never moves the replay window.
fn check_valid_frame_after(
    accepted_before: bool,
    again: Result<Option<(u64, &[u8])>, Error>,
    payload: &[u8],
) {
    if accepted_before {
        assert!(matches!(again, Err(Error::Replay(_))), "{again:?}");
    } else {
        assert_eq!(again, Ok(Some((0, payload))));
    }
}
