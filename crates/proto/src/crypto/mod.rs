//! Cryptographic primitives behind a provider interface.
//!
//! The protocol code calls primitives only through [`CryptoProvider`], so the device can
//! use the pure-Rust [`RustCrypto`] provider while the cloud plugs in an
//! assembly-optimized one ([`AwsLc`], feature `aws-lc`). Both must produce identical
//! bytes for identical inputs; the known-answer tests run against each of them.
//!
//! The primitives are the ones fixed by the protocol name
//! `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s`: X25519 (RFC 7748), ChaCha20-Poly1305
//! (RFC 8439) with the Noise nonce layout, and BLAKE2s-256 (RFC 7693) with HMAC.

mod keys;
mod rustcrypto;

#[cfg(feature = "aws-lc")]
mod awslc;

#[cfg(feature = "aws-lc")]
pub use awslc::AwsLc;
pub use keys::{PublicKey, SecretKey, SharedSecret, SymmetricKey};
pub use rustcrypto::RustCrypto;

/// Length in bytes of an X25519 public key, secret key and shared secret.
pub const DH_LEN: usize = 32;
/// Length in bytes of a ChaCha20-Poly1305 key.
pub const KEY_LEN: usize = 32;
/// Length in bytes of a Poly1305 authentication tag.
pub const TAG_LEN: usize = 16;
/// Length in bytes of a BLAKE2s-256 digest, the Noise `HASHLEN`.
pub const HASH_LEN: usize = 32;
/// Length in bytes of a keyed BLAKE2s-128 MAC, as used by the initiation pre-filter.
pub const MAC_LEN: usize = 16;

/// Failure of a primitive. Callers map it to a protocol error that says who is to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoError {
    /// The authentication tag did not verify: the ciphertext, the associated data, the
    /// nonce or the key differs from what the sender used.
    TagMismatch,
    /// The X25519 result is all zeros, so the peer's public key is a low-order point.
    LowOrderPoint,
}

impl core::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CryptoError::TagMismatch => f.write_str("authentication tag mismatch"),
            CryptoError::LowOrderPoint => f.write_str("X25519 public key is a low-order point"),
        }
    }
}

/// ChaCha20-Poly1305 keyed with one key, ready to seal and open many messages.
///
/// The 96-bit nonce is laid out as Noise requires for ChaChaPoly: four zero bytes
/// followed by the 64-bit counter `nonce` in little-endian order.
pub trait Cipher {
    /// Encrypts `buf` in place and returns the tag over `ad` and the ciphertext.
    fn seal(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN];

    /// Decrypts `buf` in place if `tag` verifies over `ad` and the ciphertext.
    ///
    /// On [`CryptoError::TagMismatch`] the content of `buf` is unspecified and must be
    /// discarded by the caller.
    fn open(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// The set of primitives that the protocol needs.
///
/// Implementations hold no secret state of their own, so one value can serve every
/// session; keys come in as arguments.
pub trait CryptoProvider {
    /// Cipher type returned by [`CryptoProvider::cipher`].
    type Cipher: Cipher;

    /// Keys a ChaCha20-Poly1305 instance with `key`.
    fn cipher(&self, key: &SymmetricKey) -> Self::Cipher;

    /// Computes the X25519 public key of `secret` (RFC 7748, section 6.1).
    fn x25519_public(&self, secret: &SecretKey) -> PublicKey;

    /// Computes X25519(`secret`, `public`); rejects an all-zero result.
    fn x25519(&self, secret: &SecretKey, public: &PublicKey) -> Result<SharedSecret, CryptoError>;

    /// Computes BLAKE2s-256 over the concatenation of `parts`.
    fn hash(&self, parts: &[&[u8]]) -> [u8; HASH_LEN];

    /// Computes HMAC-BLAKE2s-256 (RFC 2104, 64-byte block) with `key` over the
    /// concatenation of `parts`.
    fn hmac(&self, key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN];

    /// Computes keyed BLAKE2s with a 16-byte output (RFC 7693 keyed mode) over `data`.
    fn mac(&self, key: &[u8; HASH_LEN], data: &[u8]) -> [u8; MAC_LEN];
}
