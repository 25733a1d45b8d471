//! Direct exchanges between a device and a cloud channel, without a simulated link.

use medtunnel_proto::channel::{CloudChannel, DeviceChannel, DeviceResume};
use medtunnel_proto::crypto::{CryptoProvider, PublicKey, RustCrypto, SecretKey, SymmetricKey};
use medtunnel_proto::error::Error;
use medtunnel_proto::handshake::{CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::stream::StreamState;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use rand::rngs::StdRng;
use rand::SeedableRng;

struct Pair {
    device: DeviceChannel<RustCrypto>,
    cloud: CloudChannel<RustCrypto>,
    cloud_keys: CloudKeys,
    peer: PeerKeys,
    rng: StdRng,
    last_counter: Option<u32>,
}

fn pair() -> Pair {
    let provider = RustCrypto;
    let cloud_keys = CloudKeys::new(&provider, 7, SecretKey::from_bytes([1u8; 32]));
    let device_secret = SecretKey::from_bytes([2u8; 32]);
    let device_public = provider.x25519_public(&device_secret);
    let psk = [3u8; 32];
    let device_keys = DeviceKeys::new(
        &provider,
        42,
        7,
        device_secret,
        PublicKey::from_bytes(*cloud_keys.static_public.as_bytes()),
        SymmetricKey::from_bytes(psk),
    );
    let peer = PeerKeys::new(
        &provider,
        &cloud_keys.static_secret,
        42,
        7,
        device_public,
        SymmetricKey::from_bytes(psk),
    )
    .unwrap();
    Pair {
        device: DeviceChannel::new(
            provider,
            device_keys,
            Limits::default(),
            DeviceResume::default(),
        ),
        cloud: CloudChannel::new(provider, 42, Limits::default(), StreamState::default()),
        cloud_keys,
        peer,
        rng: StdRng::seed_from_u64(1),
        last_counter: None,
    }
}

impl Pair {
    fn handshake(&mut self, now: u64) {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let initiation = self
            .device
            .start_handshake(&mut self.rng, &mut frame)
            .unwrap();
        let mut response = [0u8; MAX_FRAME_LEN];
        let accepted = self
            .cloud
            .accept_initiation(
                now,
                &self.cloud_keys,
                &self.peer,
                &frame[..initiation.len],
                self.last_counter,
                &mut self.rng,
                &mut response,
            )
            .unwrap();
        self.last_counter = Some(accepted.counter);
        let incoming = self
            .device
            .handle_frame(now, &mut response[..accepted.len])
            .unwrap();
        assert!(incoming.handshake_completed);
        let len = self.device.send_ack(now, &mut frame).unwrap();
        self.cloud.handle_frame(now, &mut frame[..len]).unwrap();
        assert!(self.cloud.is_established());
    }
}

#[test]
fn data_round_trip_and_ack() {
    let mut pair = pair();
    pair.handshake(0);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let sent = pair.device.send(10, b"glucose 153", &mut frame).unwrap();
    assert_eq!(sent.seq, 0);
    let incoming = pair.cloud.handle_frame(10, &mut frame[..sent.len]).unwrap();
    assert_eq!(incoming.data, Some((0, &b"glucose 153"[..])));
    pair.cloud.acknowledge(1);
    let len = pair.cloud.send_ack(11, &mut frame).unwrap();
    let incoming = pair.device.handle_frame(11, &mut frame[..len]).unwrap();
    assert_eq!(incoming.acked, Some(1));
}

#[test]
fn replayed_frame_is_rejected() {
    let mut pair = pair();
    pair.handshake(0);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let sent = pair.device.send(10, b"x", &mut frame).unwrap();
    let copy = frame;
    pair.cloud.handle_frame(10, &mut frame[..sent.len]).unwrap();
    let mut replay = copy;
    let error = pair
        .cloud
        .handle_frame(11, &mut replay[..sent.len])
        .unwrap_err();
    assert!(matches!(error, Error::Replay(_)), "{error:?}");
}

#[test]
fn replayed_initiation_is_stale() {
    let mut pair = pair();
    let mut frame = [0u8; MAX_FRAME_LEN];
    let initiation = pair
        .device
        .start_handshake(&mut pair.rng, &mut frame)
        .unwrap();
    let mut response = [0u8; MAX_FRAME_LEN];
    let accepted = pair
        .cloud
        .accept_initiation(
            0,
            &pair.cloud_keys,
            &pair.peer,
            &frame[..initiation.len],
            None,
            &mut pair.rng,
            &mut response,
        )
        .unwrap();
    let error = pair
        .cloud
        .accept_initiation(
            1,
            &pair.cloud_keys,
            &pair.peer,
            &frame[..initiation.len],
            Some(accepted.counter),
            &mut pair.rng,
            &mut response,
        )
        .unwrap_err();
    assert_eq!(
        error,
        Error::StaleInitiation {
            counter: 0,
            last: 0
        }
    );
}

#[test]
fn flipped_bit_fails_authentication() {
    let mut pair = pair();
    pair.handshake(0);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let sent = pair.device.send(10, b"x", &mut frame).unwrap();
    frame[20] ^= 0x04;
    let error = pair
        .cloud
        .handle_frame(10, &mut frame[..sent.len])
        .unwrap_err();
    assert_eq!(error, Error::TransportDecrypt);
}

#[test]
fn rekey_keeps_frames_in_flight() {
    let mut pair = pair();
    pair.handshake(0);
    let mut old_frame = [0u8; MAX_FRAME_LEN];
    let old = pair.device.send(10, b"old", &mut old_frame).unwrap();
    pair.handshake(20);
    let mut frame = [0u8; MAX_FRAME_LEN];
    let new = pair.device.send(30, b"new", &mut frame).unwrap();
    let incoming = pair.cloud.handle_frame(30, &mut frame[..new.len]).unwrap();
    assert!(incoming.gap.is_some());
    let incoming = pair
        .cloud
        .handle_frame(31, &mut old_frame[..old.len])
        .unwrap();
    assert_eq!(incoming.data, Some((0, &b"old"[..])));
}
