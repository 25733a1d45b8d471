//! The medtunnel handshake: the Noise KKpsk0 exchange of [`crate::noise`] wrapped in the
//! frames of [`crate::wire`], with a cheap pre-filter for the responder.
//!
//! The responder handles an initiation in three steps of rising cost, so a flood of
//! bogus initiations costs it no Diffie-Hellman work:
//!
//! 1. [`parse_initiation`](crate::wire::parse_initiation) reads the key id and counter.
//! 2. [`verify_mac1`] checks a keyed BLAKE2s MAC whose key derives from the device's PSK,
//!    which the relay does not have. The caller also rejects a counter that is not above
//!    the last one it accepted from that device (replays of old initiations).
//! 3. [`respond`] runs the three X25519 operations of the responder (`es`, `ee`, `se`;
//!    `ss` is precomputed in [`PeerKeys`]) and writes the response.
//!
//! The prologue binds the protocol version, the key id, the cloud's key id and the
//! initiation counter, so changing any header byte makes the handshake fail.

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::crypto::{
    CryptoProvider, PublicKey, SecretKey, SharedSecret, SymmetricKey, DH_LEN, HASH_LEN,
};
use crate::error::Error;
use crate::noise::{self, HandshakeOutput, InitiatorAwaitingResponse, StaticKeys};
use crate::wire::{
    self, FrameKind, InitiationHeader, INITIATION_LEN, INITIATION_MAC1_OFFSET, MAC1_LEN,
    RESPONSE_LEN,
};

/// Label hashed with the PSK to derive the mac1 key, so the key never equals the PSK.
const MAC1_LABEL: &[u8] = b"medtunnel mac1 v1";
/// Fixed start of the prologue.
const PROLOGUE_LABEL: &[u8] = b"medtunnel";
/// Prologue length: label, version, key id, cloud key id, initiation counter.
const PROLOGUE_LEN: usize = PROLOGUE_LABEL.len() + 1 + 4 + 4 + 4;

/// Everything the device needs to start a handshake with its cloud.
pub struct DeviceKeys {
    /// Key id under which the cloud registered this device.
    pub key_id: u32,
    /// Id of the cloud static key this device was provisioned with.
    pub cloud_key_id: u32,
    /// Device static secret key.
    pub static_secret: SecretKey,
    /// Device static public key.
    pub static_public: PublicKey,
    /// Cloud static public key.
    pub cloud_public: PublicKey,
    /// Per-device pre-shared key.
    pub psk: SymmetricKey,
}

impl DeviceKeys {
    /// Builds the device keys, deriving the public key from the secret.
    pub fn new<P: CryptoProvider>(
        provider: &P,
        key_id: u32,
        cloud_key_id: u32,
        static_secret: SecretKey,
        cloud_public: PublicKey,
        psk: SymmetricKey,
    ) -> Self {
        let static_public = provider.x25519_public(&static_secret);
        DeviceKeys {
            key_id,
            cloud_key_id,
            static_secret,
            static_public,
            cloud_public,
            psk,
        }
    }
}

/// Keys the cloud keeps about one device to respond to its initiations.
pub struct PeerKeys {
    /// Key id of the device.
    pub key_id: u32,
    /// Id of the cloud static key the device uses.
    pub cloud_key_id: u32,
    /// Device static public key.
    pub device_public: PublicKey,
    psk: SymmetricKey,
    mac1_key: SymmetricKey,
    static_static: SharedSecret,
}

impl PeerKeys {
    /// Precomputes the mac1 key and DH(cloud static, device static).
    ///
    /// Fails with [`Error::Handshake`] if the device's public key is a low-order point,
    /// which provisioning must never produce.
    pub fn new<P: CryptoProvider>(
        provider: &P,
        cloud_secret: &SecretKey,
        key_id: u32,
        cloud_key_id: u32,
        device_public: PublicKey,
        psk: SymmetricKey,
    ) -> Result<Self, Error> {
        let static_static = provider
            .x25519(cloud_secret, &device_public)
            .map_err(noise::NoiseError::from)?;
        Ok(PeerKeys {
            key_id,
            cloud_key_id,
            device_public,
            mac1_key: mac1_key(provider, &psk),
            psk,
            static_static,
        })
    }
}

impl core::fmt::Debug for PeerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerKeys")
            .field("key_id", &self.key_id)
            .field("cloud_key_id", &self.cloud_key_id)
            .field("device_public", &self.device_public)
            .finish_non_exhaustive()
    }
}

/// Derives the mac1 key from the PSK.
fn mac1_key<P: CryptoProvider>(provider: &P, psk: &SymmetricKey) -> SymmetricKey {
    SymmetricKey::from_bytes(provider.hash(&[MAC1_LABEL, psk.expose_secret()]))
}

fn compute_mac1<P: CryptoProvider>(
    provider: &P,
    key: &SymmetricKey,
    covered: &[u8],
) -> [u8; MAC1_LEN] {
    let full = provider.mac(key.expose_secret(), covered);
    let mut truncated = [0u8; MAC1_LEN];
    truncated.copy_from_slice(&full[..MAC1_LEN]);
    truncated
}

fn prologue(key_id: u32, cloud_key_id: u32, counter: u32) -> [u8; PROLOGUE_LEN] {
    let mut out = [0u8; PROLOGUE_LEN];
    let mut at = PROLOGUE_LABEL.len();
    out[..at].copy_from_slice(PROLOGUE_LABEL);
    out[at] = wire::VERSION;
    at += 1;
    for value in [key_id, cloud_key_id, counter] {
        out[at..at + 4].copy_from_slice(&value.to_le_bytes());
        at += 4;
    }
    out
}

fn random_secret(rng: &mut impl CryptoRngCore) -> SecretKey {
    let mut bytes = [0u8; DH_LEN];
    rng.fill_bytes(&mut bytes);
    let secret = SecretKey::from_bytes(bytes);
    bytes.zeroize();
    secret
}

/// Device state between sending an initiation and receiving the response.
pub struct PendingInitiation {
    noise: InitiatorAwaitingResponse,
    counter: u32,
}

impl PendingInitiation {
    /// Initiation counter this handshake used.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Completes the handshake with the cloud's response frame.
    ///
    /// Costs two X25519 operations, and runs only on a response to an initiation this
    /// device sent. The caller drops this value on failure and starts over.
    pub fn complete<P: CryptoProvider>(
        self,
        provider: &P,
        frame: &[u8],
    ) -> Result<HandshakeOutput, Error> {
        if wire::frame_kind(frame)? != FrameKind::Response {
            return Err(Error::UnexpectedFrame);
        }
        let mut payload = [0u8; 0];
        let (output, _) =
            self.noise
                .read_message2(provider, &frame[1..RESPONSE_LEN], &mut payload)?;
        Ok(output)
    }
}

/// Writes an initiation frame into `out` (at least [`INITIATION_LEN`] bytes).
///
/// `counter` must be larger than every counter this device used before, across reboots:
/// the caller persists it before sending the frame. The first message carries no
/// payload, because Noise gives it weaker guarantees than transport messages.
pub fn initiate<P: CryptoProvider>(
    provider: &P,
    keys: &DeviceKeys,
    counter: u32,
    rng: &mut impl CryptoRngCore,
    out: &mut [u8],
) -> Result<(PendingInitiation, usize), Error> {
    if out.len() < INITIATION_LEN {
        return Err(Error::BufferTooSmall {
            needed: INITIATION_LEN,
        });
    }
    out[0] = wire::type_byte(wire::TYPE_INITIATION);
    out[1..5].copy_from_slice(&keys.key_id.to_le_bytes());
    out[5..9].copy_from_slice(&counter.to_le_bytes());
    let static_keys = StaticKeys {
        local_secret: &keys.static_secret,
        local_public: &keys.static_public,
        remote_public: &keys.cloud_public,
        psk: &keys.psk,
        static_static: None,
    };
    let prologue = prologue(keys.key_id, keys.cloud_key_id, counter);
    let (noise, _) = noise::write_message1(
        provider,
        &static_keys,
        &prologue,
        random_secret(rng),
        &[],
        &mut out[9..INITIATION_MAC1_OFFSET],
    )?;
    let mac1 = compute_mac1(
        provider,
        &mac1_key(provider, &keys.psk),
        &out[..INITIATION_MAC1_OFFSET],
    );
    out[INITIATION_MAC1_OFFSET..INITIATION_LEN].copy_from_slice(&mac1);
    Ok((PendingInitiation { noise, counter }, INITIATION_LEN))
}

/// Proof that an initiation's mac1 verified under a registered device's key.
///
/// It shows that someone with the device's PSK built the frame at some time. It does
/// not show freshness or that the Noise handshake will succeed.
pub struct Mac1Verified<'a> {
    frame: &'a [u8],
    header: InitiationHeader,
}

impl Mac1Verified<'_> {
    /// Header of the verified initiation.
    pub fn header(&self) -> InitiationHeader {
        self.header
    }
}

/// Checks the mac1 of `frame` under `peer`'s key: one BLAKE2s hash, no Diffie-Hellman.
pub fn verify_mac1<'a, P: CryptoProvider>(
    provider: &P,
    peer: &PeerKeys,
    frame: &'a [u8],
) -> Result<Mac1Verified<'a>, Error> {
    let header = wire::parse_initiation(frame)?;
    if header.key_id != peer.key_id {
        return Err(Error::UnknownKeyId {
            key_id: header.key_id,
        });
    }
    let expected = compute_mac1(provider, &peer.mac1_key, &frame[..INITIATION_MAC1_OFFSET]);
    let received = &frame[INITIATION_MAC1_OFFSET..INITIATION_LEN];
    if !bool::from(expected.ct_eq(received)) {
        return Err(Error::Mac1Mismatch);
    }
    Ok(Mac1Verified { frame, header })
}

/// Cloud static key pair.
pub struct CloudKeys {
    /// Id of this key, as recorded for each device provisioned with it.
    pub key_id: u32,
    /// Cloud static secret key.
    pub static_secret: SecretKey,
    /// Cloud static public key.
    pub static_public: PublicKey,
}

impl CloudKeys {
    /// Builds the cloud keys, deriving the public key from the secret.
    pub fn new<P: CryptoProvider>(provider: &P, key_id: u32, static_secret: SecretKey) -> Self {
        let static_public = provider.x25519_public(&static_secret);
        CloudKeys {
            key_id,
            static_secret,
            static_public,
        }
    }
}

/// Completes the responder's side of a handshake whose mac1 verified and writes the
/// response frame into `out` (at least [`RESPONSE_LEN`] bytes).
///
/// `last_counter` is the largest initiation counter accepted from this device before, as
/// the caller persisted it. The caller persists the new counter once this returns `Ok`.
pub fn respond<P: CryptoProvider>(
    provider: &P,
    cloud: &CloudKeys,
    peer: &PeerKeys,
    verified: Mac1Verified<'_>,
    last_counter: Option<u32>,
    rng: &mut impl CryptoRngCore,
    out: &mut [u8],
) -> Result<(HandshakeOutput, usize), Error> {
    let header = verified.header;
    if let Some(last) = last_counter {
        if header.counter <= last {
            return Err(Error::StaleInitiation {
                counter: header.counter,
                last,
            });
        }
    }
    if out.len() < RESPONSE_LEN {
        return Err(Error::BufferTooSmall {
            needed: RESPONSE_LEN,
        });
    }
    let static_keys = StaticKeys {
        local_secret: &cloud.static_secret,
        local_public: &cloud.static_public,
        remote_public: &peer.device_public,
        psk: &peer.psk,
        static_static: Some(&peer.static_static),
    };
    let prologue = prologue(header.key_id, peer.cloud_key_id, header.counter);
    let mut payload = [0u8; 0];
    let (ready, _) = noise::read_message1(
        provider,
        &static_keys,
        &prologue,
        &verified.frame[9..INITIATION_MAC1_OFFSET],
        &mut payload,
    )?;
    out[0] = wire::type_byte(wire::TYPE_RESPONSE);
    let (output, _) =
        ready.write_message2(provider, random_secret(rng), &[], &mut out[1..RESPONSE_LEN])?;
    Ok((output, RESPONSE_LEN))
}

const _: () = assert!(HASH_LEN == 32);
