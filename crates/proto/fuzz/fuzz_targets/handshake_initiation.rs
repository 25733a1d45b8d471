//! Feeds arbitrary bytes to the cloud's initiation path and to a device that waits for a
//! response. The first input byte selects the mode:
//!
//! - 0: the rest is an initiation for `parse_initiation`, `verify_mac1` and
//!   `CloudChannel::accept_initiation`.
//! - 1: the rest is an initiation whose type byte, key id and mac1 are overwritten with
//!   valid values under the test PSK, so `respond` runs the Noise processing on it.
//! - 2: the rest is the response to a device's pending handshake.
//!
//! Nothing may panic, and no error may change the stream state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medtunnel_proto::crypto::RustCrypto;
use medtunnel_proto::error::Error;
use medtunnel_proto::handshake;
use medtunnel_proto::wire::{
    self, FrameKind, INITIATION_LEN, INITIATION_MAC1_OFFSET, MAX_FRAME_LEN, RESPONSE_LEN,
};

#[path = "../../tests/fuzz_support/mod.rs"]
#[allow(
    dead_code,
    reason = "the fuzz targets use different parts of the support module"
)]
mod support;

use support::{TestRng, CLOUD_SEED, DEVICE_KEY_ID};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check_raw_initiation(rest),
        1 => check_forced_mac1(rest),
        _ => check_response(rest),
    }
});

/// Runs the three responder steps on `frame` as it came from the relay.
fn check_raw_initiation(frame: &[u8]) {
    let (keys, peer) = support::cloud_keys();
    let parsed = wire::parse_initiation(frame);
    let verified = handshake::verify_mac1(&RustCrypto, &peer, frame);
    if let Ok(verified) = &verified {
        assert_eq!(parsed, Ok(verified.header()));
        assert_eq!(verified.header().key_id, DEVICE_KEY_ID);
    }

    let mut cloud = support::cloud_channel();
    let before = *cloud.stream();
    let mut out = [0u8; MAX_FRAME_LEN];
    let mut rng = TestRng::new(CLOUD_SEED);
    let accepted = cloud.accept_initiation(0, &keys, &peer, frame, None, &mut rng, &mut out);
    if let Ok(accepted) = accepted {
        assert!(
            verified.is_ok(),
            "accepted an initiation with an invalid mac1"
        );
        assert_eq!(accepted.len, RESPONSE_LEN);
        assert_eq!(Ok(accepted.counter), parsed.map(|header| header.counter));
    }
    // The new keys wait for the device's confirmation either way.
    assert!(!cloud.is_established());
    assert_eq!(*cloud.stream(), before);
}

/// Gives `body` a valid header and mac1, so only the Noise message can fail.
fn check_forced_mac1(body: &[u8]) {
    let mut frame = [0u8; INITIATION_LEN];
    let len = body.len().min(INITIATION_LEN);
    frame[..len].copy_from_slice(&body[..len]);
    frame[0] = wire::type_byte(wire::TYPE_INITIATION);
    frame[1..5].copy_from_slice(&DEVICE_KEY_ID.to_le_bytes());
    let mac1 = support::mac1(&frame);
    frame[INITIATION_MAC1_OFFSET..].copy_from_slice(&mac1);

    let (keys, peer) = support::cloud_keys();
    let verified = handshake::verify_mac1(&RustCrypto, &peer, &frame)
        .expect("mac1 computed under the test PSK verifies");
    let counter = verified.header().counter;
    let mut out = [0u8; MAX_FRAME_LEN];
    let mut rng = TestRng::new(CLOUD_SEED);
    match handshake::respond(
        &RustCrypto,
        &keys,
        &peer,
        verified,
        None,
        &mut rng,
        &mut out,
    ) {
        Ok((_, len)) => assert_eq!(len, RESPONSE_LEN),
        Err(Error::Handshake(_)) => {}
        Err(error) => panic!("respond failed with {error:?} on a verified initiation"),
    }

    // A counter that is not above the last accepted one is rejected before any X25519.
    let verified = handshake::verify_mac1(&RustCrypto, &peer, &frame).expect("verifies again");
    let stale = handshake::respond(
        &RustCrypto,
        &keys,
        &peer,
        verified,
        Some(counter),
        &mut rng,
        &mut out,
    );
    assert_eq!(
        stale.err(),
        Some(Error::StaleInitiation {
            counter,
            last: counter
        })
    );
}

/// Delivers `frame` to a device whose initiation is pending.
fn check_response(frame: &[u8]) {
    let mut pending = support::pending_device();
    let device = &mut pending.device;
    let before = *device.stream();
    let kind = wire::frame_kind(frame);
    let mut frame = frame.to_vec();
    match device.handle_frame(0, &mut frame) {
        Ok(incoming) => {
            assert!(incoming.handshake_completed);
            assert!(incoming.data.is_none());
            assert!(device.is_established());
        }
        Err(_) => assert!(!device.is_established()),
    }
    assert_eq!(*device.stream(), before);
    if kind == Ok(FrameKind::Response) {
        // A response ends the attempt whether it verified or not.
        assert!(!device.is_handshaking());
    }
}
