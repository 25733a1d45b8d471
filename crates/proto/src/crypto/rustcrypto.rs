//! Pure-Rust provider: x25519-dalek, chacha20poly1305 and blake2 from RustCrypto.
//! Works without `std` and without `alloc`, so the device uses it.

use blake2::digest::consts::U16;
use blake2::digest::{Digest, FixedOutput, KeyInit, Mac, Update};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::ChaCha20Poly1305;
use hmac::SimpleHmac;

use super::{
    Cipher, CryptoError, CryptoProvider, PublicKey, SecretKey, SharedSecret, SymmetricKey,
    HASH_LEN, MAC_LEN, TAG_LEN,
};

/// The pure-Rust provider. Holds no state.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// ChaCha20-Poly1305 from the `chacha20poly1305` crate, keyed once.
pub struct RustCryptoCipher(ChaCha20Poly1305);

/// Lays out a Noise ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
pub(crate) fn noise_nonce(counter: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

impl Cipher for RustCryptoCipher {
    fn seal(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let nonce = noise_nonce(nonce);
        // The only error of `encrypt_in_place_detached` is a buffer longer than
        // ChaCha20's 256 GiB keystream, which no caller can hand over.
        match self.0.encrypt_in_place_detached(&nonce.into(), ad, buf) {
            Ok(tag) => tag.into(),
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
        let nonce = noise_nonce(nonce);
        self.0
            .decrypt_in_place_detached(&nonce.into(), ad, buf, tag.into())
            .map_err(|_| CryptoError::TagMismatch)
    }
}

impl CryptoProvider for RustCrypto {
    type Cipher = RustCryptoCipher;

    fn cipher(&self, key: &SymmetricKey) -> RustCryptoCipher {
        RustCryptoCipher(ChaCha20Poly1305::new(key.expose_secret().into()))
    }

    fn x25519_public(&self, secret: &SecretKey) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(*secret.expose_secret());
        PublicKey::from_bytes(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    fn x25519(&self, secret: &SecretKey, public: &PublicKey) -> Result<SharedSecret, CryptoError> {
        let secret = x25519_dalek::StaticSecret::from(*secret.expose_secret());
        let public = x25519_dalek::PublicKey::from(*public.as_bytes());
        let shared = secret.diffie_hellman(&public);
        if !shared.was_contributory() {
            return Err(CryptoError::LowOrderPoint);
        }
        Ok(SharedSecret::from_bytes(shared.to_bytes()))
    }

    fn hash(&self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        let mut hasher = Blake2s256::new();
        for part in parts {
            Digest::update(&mut hasher, part);
        }
        hasher.finalize().into()
    }

    fn hmac(&self, key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
        // `new_from_slice` only fails for key lengths that HMAC cannot take; HMAC takes
        // every length, and this key has 32 bytes.
        let mut mac = match <SimpleHmac<Blake2s256> as KeyInit>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable_hmac_key(),
        };
        for part in parts {
            Mac::update(&mut mac, part);
        }
        mac.finalize_fixed().into()
    }

    fn mac(&self, key: &[u8; HASH_LEN], data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = <Blake2sMac<U16> as KeyInit>::new(key.into());
        Update::update(&mut mac, data);
        mac.finalize_fixed().into()
    }
}

#[cold]
fn unreachable_hmac_key() -> ! {
    // Invariant: HMAC accepts keys of any length (RFC 2104, section 2).
    unreachable!("HMAC rejected a 32-byte key")
}
