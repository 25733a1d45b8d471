//! Sizes that the protocol document states: frames on the wire and a device session in
//! RAM.

use medtunnel_proto::channel::DeviceChannel;
use medtunnel_proto::crypto::RustCrypto;
use medtunnel_proto::wire::{INITIATION_LEN, RESPONSE_LEN, TRANSPORT_OVERHEAD};

#[test]
fn handshake_fits_120_bytes() {
    println!("initiation {INITIATION_LEN} bytes, response {RESPONSE_LEN} bytes");
    const { assert!(INITIATION_LEN + RESPONSE_LEN <= 120) };
}

#[test]
fn transport_overhead_at_most_24_bytes() {
    println!("transport overhead {TRANSPORT_OVERHEAD} bytes");
    const { assert!(TRANSPORT_OVERHEAD <= 24) };
}

#[test]
fn device_session_fits_1_kib() {
    let size = core::mem::size_of::<DeviceChannel<RustCrypto>>();
    println!("DeviceChannel<RustCrypto>: {size} bytes");
    assert!(size <= 1024, "device session takes {size} bytes");
}
