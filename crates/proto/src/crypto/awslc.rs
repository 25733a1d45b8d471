//! Assembly-optimized provider for the cloud, built on aws-lc-rs.
//!
//! X25519 and ChaCha20-Poly1305 run in aws-lc. aws-lc has no BLAKE2s, so `hash`, `hmac`
//! and `mac` call the pure-Rust [`RustCrypto`] provider, which keeps the bytes identical
//! between the two providers by construction.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use aws_lc_rs::agreement::{self, UnparsedPublicKey, X25519};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::rustcrypto::noise_nonce;
use super::{
    Cipher, CryptoError, CryptoProvider, PublicKey, RustCrypto, SecretKey, SharedSecret,
    SymmetricKey, DH_LEN, HASH_LEN, MAC_LEN, TAG_LEN,
};

/// The aws-lc-rs provider. Holds no state.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLc;

/// ChaCha20-Poly1305 from aws-lc, keyed once: the aws-lc AEAD context is built in
/// [`AwsLc::cipher`], so sealing and opening do no key setup.
///
/// On drop, aws-lc frees the context with `OPENSSL_free`, which with aws-lc's default
/// allocator overwrites the memory first, so the key does not outlive this value.
pub struct AwsLcCipher(LessSafeKey);

impl Cipher for AwsLcCipher {
    fn seal(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = Nonce::assume_unique_for_key(noise_nonce(nonce));
        // The only errors of `seal_in_place_separate_tag` are a buffer longer than
        // ChaCha20's 256 GiB keystream, which no caller can hand over, and an internal
        // aws-lc failure. Either way the all-zero tag cannot verify at the receiver.
        match self.0.seal_in_place_separate_tag(nonce, Aad::from(ad), buf) {
            Ok(tag) => tag_to_array(tag.as_ref()),
            Err(_) => [0u8; TAG_LEN],
        }
    }

    fn open(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let nonce = Nonce::assume_unique_for_key(noise_nonce(nonce));
        self.0
            .open_in_place_separate_tag(nonce, Aad::from(ad), tag, buf)
            .map(|_plaintext| ())
            .map_err(|_| CryptoError::TagMismatch)
    }
}

impl CryptoProvider for AwsLc {
    type Cipher = AwsLcCipher;

    fn cipher(&self, key: &SymmetricKey) -> AwsLcCipher {
        // Invariant: ChaCha20-Poly1305 accepts every 32-byte key, and `SymmetricKey` has
        // exactly 32 bytes. The remaining failure is an allocation failure inside aws-lc,
        // which the Rust allocator would turn into an abort anyway.
        let key = UnboundKey::new(&CHACHA20_POLY1305, key.expose_secret())
            .expect("aws-lc rejected a 32-byte ChaCha20-Poly1305 key");
        AwsLcCipher(LessSafeKey::new(key))
    }

    fn x25519_public(&self, secret: &SecretKey) -> PublicKey {
        // Invariant: aws-lc imports every 32-byte string as an X25519 private key (the
        // scalar is clamped when used) and derives its public key without a failure
        // path other than allocation, so neither step returns an error for our input.
        let private = agreement::PrivateKey::from_private_key(&X25519, secret.expose_secret())
            .expect("aws-lc rejected a 32-byte X25519 private key");
        let public = private
            .compute_public_key()
            .expect("aws-lc failed to derive an X25519 public key");

        let mut bytes = [0u8; DH_LEN];
        // Invariant: an X25519 public key has `DH_LEN` bytes.
        bytes.copy_from_slice(public.as_ref());
        PublicKey::from_bytes(bytes)
    }

    fn x25519(&self, secret: &SecretKey, public: &PublicKey) -> Result<SharedSecret, CryptoError> {
        // aws-lc returns an error for an all-zero result (RFC 7748, section 6.1) and for
        // any key it does not accept. The check below repeats the all-zero test, so this
        // function rejects an all-zero output whatever the aws-lc version does.
        let private = agreement::PrivateKey::from_private_key(&X25519, secret.expose_secret())
            .map_err(|_| CryptoError::LowOrderPoint)?;
        let peer = UnparsedPublicKey::new(&X25519, public.as_bytes());
        let shared = agreement::agree(&private, peer, CryptoError::LowOrderPoint, copy_secret)?;

        if bool::from(shared.expose_secret().ct_eq(&[0u8; DH_LEN])) {
            return Err(CryptoError::LowOrderPoint);
        }
        Ok(shared)
    }

    fn hash(&self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        RustCrypto.hash(parts)
    }

    fn hmac(&self, key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
        RustCrypto.hmac(key, parts)
    }

    fn mac(&self, key: &[u8; HASH_LEN], data: &[u8]) -> [u8; MAC_LEN] {
        RustCrypto.mac(key, data)
    }
}

/// Copies the raw X25519 output into a [`SharedSecret`] and wipes the stack copy.
fn copy_secret(raw: &[u8]) -> Result<SharedSecret, CryptoError> {
    let mut bytes: [u8; DH_LEN] = raw.try_into().map_err(|_| CryptoError::LowOrderPoint)?;
    let shared = SharedSecret::from_bytes(bytes);
    bytes.zeroize();
    Ok(shared)
}

/// Copies a Poly1305 tag. aws-lc returns exactly `TAG_LEN` bytes for ChaCha20-Poly1305.
fn tag_to_array(tag: &[u8]) -> [u8; TAG_LEN] {
    let mut out = [0u8; TAG_LEN];
    if tag.len() == TAG_LEN {
        out.copy_from_slice(tag);
    }
    out
}
