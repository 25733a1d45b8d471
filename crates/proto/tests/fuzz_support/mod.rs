//! Fixed keys, a deterministic RNG and channel setups shared by the fuzz targets in
//! `fuzz/` and the generator of their seed corpora in `fuzz_seeds.rs`. Both build the
//! same sessions from the same seeds, so the seeded frames authenticate inside the fuzz
//! targets and reach the paths behind the AEAD and mac1 checks.

use medtunnel_proto::channel::{CloudChannel, DeviceChannel, DeviceResume};
use medtunnel_proto::crypto::{CryptoProvider, RustCrypto, SecretKey, SymmetricKey, HASH_LEN};
use medtunnel_proto::handshake::{CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::stream::StreamState;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::{INITIATION_MAC1_OFFSET, MAC1_LEN, MAX_FRAME_LEN};
use rand_core::{CryptoRng, RngCore};

/// Key id of the test device.
pub const DEVICE_KEY_ID: u32 = 42;
/// Id of the test cloud key.
pub const CLOUD_KEY_ID: u32 = 7;
const CLOUD_SECRET: [u8; 32] = [0x11; 32];
const DEVICE_SECRET: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0x33; 32];
/// Label of the mac1 key derivation, as the handshake module defines it.
const MAC1_LABEL: &[u8] = b"medtunnel mac1 v1";
/// Seed of the device's RNG.
pub const DEVICE_SEED: u64 = 1;
/// Seed of the cloud's RNG.
pub const CLOUD_SEED: u64 = 2;
/// Payload of the device's data frame.
pub const READING: &[u8] = b"glucose 153 mg/dL";
/// Payload of the cloud's data frame.
pub const COMMAND: &[u8] = b"set basal 0.8 U/h";

/// SplitMix64: deterministic and NOT cryptographically secure, for tests only.
pub struct TestRng(u64);

impl TestRng {
    /// Creates the generator with `seed`.
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }
}

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// Device keys of the test pair.
pub fn device_keys() -> DeviceKeys {
    let cloud_public = RustCrypto.x25519_public(&SecretKey::from_bytes(CLOUD_SECRET));
    DeviceKeys::new(
        &RustCrypto,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        SecretKey::from_bytes(DEVICE_SECRET),
        cloud_public,
        SymmetricKey::from_bytes(PSK),
    )
}

/// Cloud keys and the cloud's record of the test device.
pub fn cloud_keys() -> (CloudKeys, PeerKeys) {
    let keys = CloudKeys::new(
        &RustCrypto,
        CLOUD_KEY_ID,
        SecretKey::from_bytes(CLOUD_SECRET),
    );
    let device_public = RustCrypto.x25519_public(&SecretKey::from_bytes(DEVICE_SECRET));
    let peer = PeerKeys::new(
        &RustCrypto,
        &keys.static_secret,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        device_public,
        SymmetricKey::from_bytes(PSK),
    )
    .expect("device public key is a valid point");
    (keys, peer)
}

/// Computes the mac1 of an initiation under the test PSK, the way the device does:
/// keyed BLAKE2s over bytes `..INITIATION_MAC1_OFFSET` with the key BLAKE2s(label ‖ PSK),
/// truncated to [`MAC1_LEN`] bytes.
pub fn mac1(frame: &[u8]) -> [u8; MAC1_LEN] {
    let key: [u8; HASH_LEN] = RustCrypto.hash(&[MAC1_LABEL, &PSK]);
    let full = RustCrypto.mac(&key, &frame[..INITIATION_MAC1_OFFSET]);
    let mut truncated = [0u8; MAC1_LEN];
    truncated.copy_from_slice(&full[..MAC1_LEN]);
    truncated
}

/// Creates the test device channel.
pub fn device_channel() -> DeviceChannel<RustCrypto> {
    DeviceChannel::new(
        RustCrypto,
        device_keys(),
        Limits::default(),
        DeviceResume::default(),
    )
}

/// Creates the test cloud channel.
pub fn cloud_channel() -> CloudChannel<RustCrypto> {
    CloudChannel::new(
        RustCrypto,
        DEVICE_KEY_ID,
        Limits::default(),
        StreamState::default(),
    )
}

/// A device that sent its first initiation and waits for the response.
pub struct PendingDevice {
    /// The device channel.
    pub device: DeviceChannel<RustCrypto>,
    /// The initiation it sent.
    pub initiation: Vec<u8>,
}

/// Starts the test device's first handshake.
pub fn pending_device() -> PendingDevice {
    let mut device = device_channel();
    let mut frame = [0u8; MAX_FRAME_LEN];
    let initiation = device
        .start_handshake(&mut TestRng::new(DEVICE_SEED), &mut frame)
        .expect("device starts a handshake");
    PendingDevice {
        device,
        initiation: frame[..initiation.len].to_vec(),
    }
}

/// Writes the cloud's response to `initiation`, as a new cloud channel would.
pub fn response_to(cloud: &mut CloudChannel<RustCrypto>, initiation: &[u8]) -> Vec<u8> {
    let (keys, peer) = cloud_keys();
    let mut frame = [0u8; MAX_FRAME_LEN];
    let accepted = cloud
        .accept_initiation(
            0,
            &keys,
            &peer,
            initiation,
            None,
            &mut TestRng::new(CLOUD_SEED),
            &mut frame,
        )
        .expect("cloud accepts the initiation");
    frame[..accepted.len].to_vec()
}

/// An established pair and one valid data frame in each direction, not yet delivered.
pub struct Established {
    /// The device channel.
    pub device: DeviceChannel<RustCrypto>,
    /// The cloud channel.
    pub cloud: CloudChannel<RustCrypto>,
    /// A data frame from the device carrying [`READING`].
    pub device_frame: Vec<u8>,
    /// A data frame from the cloud carrying [`COMMAND`].
    pub cloud_frame: Vec<u8>,
}

/// Runs the test handshake at time 0 and seals one data frame each way at time 1.
pub fn established() -> Established {
    let PendingDevice {
        mut device,
        initiation,
    } = pending_device();
    let mut cloud = cloud_channel();
    let mut response = response_to(&mut cloud, &initiation);
    device
        .handle_frame(0, &mut response)
        .expect("device completes the handshake");
    let mut frame = [0u8; MAX_FRAME_LEN];
    let len = device.send_ack(0, &mut frame).expect("device seals");
    cloud
        .handle_frame(0, &mut frame[..len])
        .expect("cloud confirms the keys");
    let sent = device.send(1, READING, &mut frame).expect("device seals");
    let device_frame = frame[..sent.len].to_vec();
    let sent = cloud.send(1, COMMAND, &mut frame).expect("cloud seals");
    let cloud_frame = frame[..sent.len].to_vec();
    Established {
        device,
        cloud,
        device_frame,
        cloud_frame,
    }
}
