//! Seed corpora of the fuzz targets `handshake_initiation` and `transport_frame`: valid
//! frames of the deterministic sessions in `fuzz_support`, which the fuzz targets rebuild
//! identically, plus a few edited ones. Regenerate them after a change of the wire format
//! or of `fuzz_support` with
//! `cargo test -p medtunnel-proto --test fuzz_seeds -- --ignored`.

mod fuzz_support;

use std::fs;
use std::path::PathBuf;

use fuzz_support::{Established, PendingDevice};

/// Mode bytes of `handshake_initiation`.
const RAW_INITIATION: u8 = 0;
const FORCED_MAC1: u8 = 1;
const RESPONSE: u8 = 2;
/// Mode bytes of `transport_frame`.
const TO_CLOUD: u8 = 0;
const TO_DEVICE: u8 = 1;
const EDIT_DEVICE_FRAME: u8 = 2;
const EDIT_CLOUD_FRAME: u8 = 3;

fn with_mode(mode: u8, frame: &[u8]) -> Vec<u8> {
    let mut input = vec![mode];
    input.extend_from_slice(frame);
    input
}

fn handshake_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let PendingDevice { initiation, .. } = fuzz_support::pending_device();
    let response = fuzz_support::response_to(&mut fuzz_support::cloud_channel(), &initiation);
    let mut wrong_mac1 = initiation.clone();
    *wrong_mac1.last_mut().expect("initiation is not empty") ^= 0x01;
    let mut flipped_response = response.clone();
    flipped_response[10] ^= 0x80;
    vec![
        (
            "raw-valid-initiation",
            with_mode(RAW_INITIATION, &initiation),
        ),
        ("raw-wrong-mac1", with_mode(RAW_INITIATION, &wrong_mac1)),
        (
            "forced-mac1-valid-initiation",
            with_mode(FORCED_MAC1, &initiation),
        ),
        ("valid-response", with_mode(RESPONSE, &response)),
        ("flipped-response", with_mode(RESPONSE, &flipped_response)),
    ]
}

fn transport_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let Established {
        device_frame,
        cloud_frame,
        ..
    } = fuzz_support::established();
    let tag_byte = (device_frame.len() - 1) as u8;
    vec![
        ("device-frame", with_mode(TO_CLOUD, &device_frame)),
        ("cloud-frame", with_mode(TO_DEVICE, &cloud_frame)),
        ("device-frame-unchanged", vec![EDIT_DEVICE_FRAME]),
        (
            "device-frame-flipped-tag",
            vec![EDIT_DEVICE_FRAME, 0, tag_byte, 0x01],
        ),
        ("device-frame-truncated", vec![EDIT_DEVICE_FRAME, 40]),
        ("cloud-frame-phase-bit", vec![EDIT_CLOUD_FRAME, 0, 0, 0x01]),
        ("cloud-frame-counter", vec![EDIT_CLOUD_FRAME, 0, 4, 0x80]),
    ]
}

#[test]
fn seeded_frames_open() {
    let mut pending = fuzz_support::pending_device();
    let mut response =
        fuzz_support::response_to(&mut fuzz_support::cloud_channel(), &pending.initiation);
    let incoming = pending
        .device
        .handle_frame(0, &mut response)
        .expect("response verifies");
    assert!(incoming.handshake_completed);

    let mut pair = fuzz_support::established();
    let mut frame = pair.device_frame.clone();
    let incoming = pair
        .cloud
        .handle_frame(2, &mut frame)
        .expect("device frame opens");
    assert_eq!(incoming.data, Some((0, fuzz_support::READING)));
    let mut frame = pair.cloud_frame.clone();
    let incoming = pair
        .device
        .handle_frame(2, &mut frame)
        .expect("cloud frame opens");
    assert_eq!(incoming.data, Some((0, fuzz_support::COMMAND)));
}

#[test]
fn forced_mac1_matches_device() {
    let PendingDevice { initiation, .. } = fuzz_support::pending_device();
    assert_eq!(fuzz_support::mac1(&initiation)[..], initiation[57..]);
}

#[test]
#[ignore = "writes the seed corpora into fuzz/corpus"]
fn write_seed_corpora() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, seeds) in [
        ("handshake_initiation", handshake_seeds()),
        ("transport_frame", transport_seeds()),
    ] {
        let folder = corpus.join(target);
        fs::create_dir_all(&folder).expect("corpus folder can be created");
        for (name, input) in seeds {
            fs::write(folder.join(name), input).expect("seed can be written");
        }
    }
}
