//! The Noise `SymmetricState` and the `Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s` handshake,
//! as raw Noise messages without medtunnel's framing.
//!
//! This layer is byte-compatible with any Noise implementation (the cacophony vectors
//! and `snow` check it). The medtunnel wire format in [`crate::handshake`] wraps it with
//! a header and a pre-filter MAC.
//!
//! Message pattern (Noise specification revision 34, sections 7.5 and 9):
//!
//! ```text
//! KKpsk0:
//!   -> s
//!   <- s
//!   ...
//!   -> psk, e, es, ss
//!   <- e, ee, se
//! ```
//!
//! Each handshake state is its own type and is consumed by the next step, so a message
//! cannot be processed twice and keys cannot be used before the handshake completed.

use zeroize::Zeroize;

use crate::crypto::{
    Cipher, CryptoError, CryptoProvider, PublicKey, SecretKey, SharedSecret, SymmetricKey, DH_LEN,
    HASH_LEN, TAG_LEN,
};

/// Noise protocol name, hashed into the initial handshake hash.
pub const PROTOCOL_NAME: &[u8] = b"Noise_KKpsk0_25519_ChaChaPoly_BLAKE2s";

/// Length of the first handshake message with an empty payload: `e` plus a tag.
pub const MESSAGE1_LEN: usize = DH_LEN + TAG_LEN;
/// Length of the second handshake message with an empty payload: `e` plus a tag.
pub const MESSAGE2_LEN: usize = DH_LEN + TAG_LEN;

/// Failure while processing a Noise handshake message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseError {
    /// The message is shorter than its fixed part, so it cannot be a handshake message.
    MessageTooShort,
    /// The output buffer cannot hold the message or the payload.
    BufferTooSmall,
    /// The payload's authentication tag did not verify: wrong keys, wrong PSK, wrong
    /// prologue, or a modified message.
    Decrypt,
    /// A Diffie-Hellman result was all zeros because a public key is a low-order point.
    LowOrderPoint,
}

impl From<CryptoError> for NoiseError {
    fn from(error: CryptoError) -> Self {
        match error {
            CryptoError::TagMismatch => NoiseError::Decrypt,
            CryptoError::LowOrderPoint => NoiseError::LowOrderPoint,
        }
    }
}

/// Keys and handshake hash produced by a completed handshake.
///
/// Holding this value means the peer proved possession of its static key, of the
/// pre-shared key and (for the initiator only, until it receives a transport message)
/// of the ephemeral key it sent.
pub struct HandshakeOutput {
    /// Key for messages this side sends.
    pub send: SymmetricKey,
    /// Key for messages this side receives.
    pub receive: SymmetricKey,
    /// Final handshake hash, a unique identifier of this handshake (channel binding).
    pub handshake_hash: [u8; HASH_LEN],
}

/// Static keys of one side of a KKpsk0 handshake.
pub struct StaticKeys<'a> {
    /// This side's static secret key.
    pub local_secret: &'a SecretKey,
    /// This side's static public key.
    pub local_public: &'a PublicKey,
    /// The peer's static public key, known in advance.
    pub remote_public: &'a PublicKey,
    /// The pre-shared key.
    pub psk: &'a SymmetricKey,
    /// DH(local static, remote static), if the caller keeps it; saves one X25519.
    pub static_static: Option<&'a SharedSecret>,
}

/// Noise `SymmetricState`: chaining key, handshake hash and the current cipher key.
struct SymmetricState {
    chaining_key: [u8; HASH_LEN],
    hash: [u8; HASH_LEN],
    key: Option<SymmetricKey>,
    nonce: u64,
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.chaining_key.zeroize();
    }
}

impl SymmetricState {
    /// InitializeSymmetric: a name longer than `HASHLEN` is hashed, a shorter one padded.
    fn new<P: CryptoProvider>(provider: &P, protocol_name: &[u8]) -> Self {
        let mut hash = [0u8; HASH_LEN];
        if protocol_name.len() <= HASH_LEN {
            hash[..protocol_name.len()].copy_from_slice(protocol_name);
        } else {
            hash = provider.hash(&[protocol_name]);
        }
        SymmetricState {
            chaining_key: hash,
            hash,
            key: None,
            nonce: 0,
        }
    }

    fn mix_hash<P: CryptoProvider>(&mut self, provider: &P, data: &[u8]) {
        self.hash = provider.hash(&[&self.hash, data]);
    }

    /// MixKey: `ck, k = HKDF(ck, ikm, 2)`.
    fn mix_key<P: CryptoProvider>(&mut self, provider: &P, input_key_material: &[u8]) {
        let [chaining_key, key, _] = hkdf(provider, &self.chaining_key, input_key_material, 2);
        self.chaining_key = chaining_key;
        self.key = Some(SymmetricKey::from_bytes(key));
        self.nonce = 0;
    }

    /// MixKeyAndHash, used for the PSK: `ck, h', k = HKDF(ck, ikm, 3)`, then MixHash(h').
    fn mix_key_and_hash<P: CryptoProvider>(&mut self, provider: &P, input_key_material: &[u8]) {
        let [chaining_key, hash_input, key] =
            hkdf(provider, &self.chaining_key, input_key_material, 3);
        self.chaining_key = chaining_key;
        self.mix_hash(provider, &hash_input);
        self.key = Some(SymmetricKey::from_bytes(key));
        self.nonce = 0;
    }

    fn mix_dh<P: CryptoProvider>(
        &mut self,
        provider: &P,
        secret: &SecretKey,
        public: &PublicKey,
    ) -> Result<(), NoiseError> {
        let shared = provider.x25519(secret, public)?;
        self.mix_key(provider, shared.expose_secret());
        Ok(())
    }

    /// EncryptAndHash: `buf[..len]` is the plaintext; the tag is written after it.
    /// Returns the ciphertext length.
    fn encrypt_and_hash<P: CryptoProvider>(
        &mut self,
        provider: &P,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, NoiseError> {
        let Some(key) = &self.key else {
            // Unreachable in KKpsk0: the PSK sets a key before the first payload.
            self.mix_hash(provider, &buf[..len]);
            return Ok(len);
        };
        if buf.len() < len + TAG_LEN {
            return Err(NoiseError::BufferTooSmall);
        }
        let (body, rest) = buf.split_at_mut(len);
        let tag = provider.cipher(key).seal(self.nonce, &self.hash, body);
        rest[..TAG_LEN].copy_from_slice(&tag);
        self.nonce += 1;
        self.mix_hash(provider, &buf[..len + TAG_LEN]);
        Ok(len + TAG_LEN)
    }

    /// DecryptAndHash of `ciphertext` into `out`. Returns the plaintext length.
    fn decrypt_and_hash<P: CryptoProvider>(
        &mut self,
        provider: &P,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        let Some(key) = &self.key else {
            return Err(NoiseError::Decrypt);
        };
        let Some(len) = ciphertext.len().checked_sub(TAG_LEN) else {
            return Err(NoiseError::MessageTooShort);
        };
        if out.len() < len {
            return Err(NoiseError::BufferTooSmall);
        }
        let (body, tag) = ciphertext.split_at(len);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        out[..len].copy_from_slice(body);
        let opened = provider
            .cipher(key)
            .open(self.nonce, &self.hash, &mut out[..len], &tag_bytes);
        if opened.is_err() {
            out[..len].zeroize();
            return Err(NoiseError::Decrypt);
        }
        self.nonce += 1;
        self.mix_hash(provider, ciphertext);
        Ok(len)
    }

    /// Split: the first key is the initiator's sending key.
    fn split<P: CryptoProvider>(&self, provider: &P) -> (SymmetricKey, SymmetricKey) {
        let [first, second, _] = hkdf(provider, &self.chaining_key, &[], 2);
        (
            SymmetricKey::from_bytes(first),
            SymmetricKey::from_bytes(second),
        )
    }
}

/// HKDF as Noise defines it over HMAC-BLAKE2s; returns `outputs` (2 or 3) keys and
/// zeros in the unused slot.
fn hkdf<P: CryptoProvider>(
    provider: &P,
    chaining_key: &[u8; HASH_LEN],
    input_key_material: &[u8],
    outputs: usize,
) -> [[u8; HASH_LEN]; 3] {
    let mut temp_key = provider.hmac(chaining_key, &[input_key_material]);
    let first = provider.hmac(&temp_key, &[&[1u8]]);
    let second = provider.hmac(&temp_key, &[&first, &[2u8]]);
    let third = if outputs == 3 {
        provider.hmac(&temp_key, &[&second, &[3u8]])
    } else {
        [0u8; HASH_LEN]
    };
    temp_key.zeroize();
    [first, second, third]
}

/// Common start of both roles: protocol name, prologue and the two pre-messages.
fn initialize<P: CryptoProvider>(
    provider: &P,
    prologue: &[u8],
    initiator_static: &PublicKey,
    responder_static: &PublicKey,
) -> SymmetricState {
    let mut state = SymmetricState::new(provider, PROTOCOL_NAME);
    state.mix_hash(provider, prologue);
    state.mix_hash(provider, initiator_static.as_bytes());
    state.mix_hash(provider, responder_static.as_bytes());
    state
}

fn static_static<P: CryptoProvider>(
    provider: &P,
    keys: &StaticKeys<'_>,
) -> Result<SharedSecret, NoiseError> {
    match keys.static_static {
        Some(cached) => Ok(cached.clone()),
        None => Ok(provider.x25519(keys.local_secret, keys.remote_public)?),
    }
}

/// Initiator after sending the first message, waiting for the second.
pub struct InitiatorAwaitingResponse {
    state: SymmetricState,
    ephemeral: SecretKey,
    local_secret: SecretKey,
}

/// Writes the first message `-> psk, e, es, ss` with `payload` into `out`.
///
/// `ephemeral` must be a fresh secret key from a cryptographic RNG; it is taken as an
/// argument so that tests can reproduce fixed vectors. Returns the next state and the
/// message length (`MESSAGE1_LEN + payload.len()`).
pub fn write_message1<P: CryptoProvider>(
    provider: &P,
    keys: &StaticKeys<'_>,
    prologue: &[u8],
    ephemeral: SecretKey,
    payload: &[u8],
    out: &mut [u8],
) -> Result<(InitiatorAwaitingResponse, usize), NoiseError> {
    let len = MESSAGE1_LEN + payload.len();
    if out.len() < len {
        return Err(NoiseError::BufferTooSmall);
    }
    let mut state = initialize(provider, prologue, keys.local_public, keys.remote_public);
    // psk
    state.mix_key_and_hash(provider, keys.psk.expose_secret());
    // e: with a PSK in the pattern, the ephemeral public key is also mixed into the key.
    let ephemeral_public = provider.x25519_public(&ephemeral);
    out[..DH_LEN].copy_from_slice(ephemeral_public.as_bytes());
    state.mix_hash(provider, ephemeral_public.as_bytes());
    state.mix_key(provider, ephemeral_public.as_bytes());
    // es
    state.mix_dh(provider, &ephemeral, keys.remote_public)?;
    // ss
    let shared = static_static(provider, keys)?;
    state.mix_key(provider, shared.expose_secret());
    // payload
    let body = &mut out[DH_LEN..len];
    body[..payload.len()].copy_from_slice(payload);
    state.encrypt_and_hash(provider, body, payload.len())?;
    let next = InitiatorAwaitingResponse {
        state,
        ephemeral,
        local_secret: keys.local_secret.clone(),
    };
    Ok((next, len))
}

impl InitiatorAwaitingResponse {
    /// Reads the second message `<- e, ee, se`, writes its payload into `payload_out`
    /// and completes the handshake. Returns the transport keys and the payload length.
    pub fn read_message2<P: CryptoProvider>(
        mut self,
        provider: &P,
        message: &[u8],
        payload_out: &mut [u8],
    ) -> Result<(HandshakeOutput, usize), NoiseError> {
        if message.len() < MESSAGE2_LEN {
            return Err(NoiseError::MessageTooShort);
        }
        let (remote_ephemeral, ciphertext) = message.split_at(DH_LEN);
        let mut remote_ephemeral_bytes = [0u8; DH_LEN];
        remote_ephemeral_bytes.copy_from_slice(remote_ephemeral);
        let remote_ephemeral = PublicKey::from_bytes(remote_ephemeral_bytes);
        // e
        self.state.mix_hash(provider, remote_ephemeral.as_bytes());
        self.state.mix_key(provider, remote_ephemeral.as_bytes());
        // ee
        self.state
            .mix_dh(provider, &self.ephemeral, &remote_ephemeral)?;
        // se: the initiator's static key with the responder's ephemeral key.
        self.state
            .mix_dh(provider, &self.local_secret, &remote_ephemeral)?;
        let len = self
            .state
            .decrypt_and_hash(provider, ciphertext, payload_out)?;
        let (send, receive) = self.state.split(provider);
        let output = HandshakeOutput {
            send,
            receive,
            handshake_hash: self.state.hash,
        };
        Ok((output, len))
    }
}

/// Responder after reading and authenticating the first message.
///
/// Holding this value means the first message decrypted under the initiator's static
/// key and the PSK. It does not prove freshness: a replayed first message reaches this
/// state too, which is why the medtunnel header carries an initiation counter.
pub struct ResponderReady {
    state: SymmetricState,
    remote_ephemeral: PublicKey,
    remote_public: PublicKey,
}

/// Reads the first message, writes its payload into `payload_out`, and returns the
/// next state with the payload length.
pub fn read_message1<P: CryptoProvider>(
    provider: &P,
    keys: &StaticKeys<'_>,
    prologue: &[u8],
    message: &[u8],
    payload_out: &mut [u8],
) -> Result<(ResponderReady, usize), NoiseError> {
    if message.len() < MESSAGE1_LEN {
        return Err(NoiseError::MessageTooShort);
    }
    let mut state = initialize(provider, prologue, keys.remote_public, keys.local_public);
    // psk
    state.mix_key_and_hash(provider, keys.psk.expose_secret());
    // e
    let (remote_ephemeral, ciphertext) = message.split_at(DH_LEN);
    let mut remote_ephemeral_bytes = [0u8; DH_LEN];
    remote_ephemeral_bytes.copy_from_slice(remote_ephemeral);
    let remote_ephemeral = PublicKey::from_bytes(remote_ephemeral_bytes);
    state.mix_hash(provider, remote_ephemeral.as_bytes());
    state.mix_key(provider, remote_ephemeral.as_bytes());
    // es: the responder's static key with the initiator's ephemeral key.
    state.mix_dh(provider, keys.local_secret, &remote_ephemeral)?;
    // ss
    let shared = static_static(provider, keys)?;
    state.mix_key(provider, shared.expose_secret());
    let len = state.decrypt_and_hash(provider, ciphertext, payload_out)?;
    let next = ResponderReady {
        state,
        remote_ephemeral,
        remote_public: *keys.remote_public,
    };
    Ok((next, len))
}

impl ResponderReady {
    /// Writes the second message `<- e, ee, se` with `payload` into `out` and completes
    /// the handshake. Returns the transport keys and the message length.
    pub fn write_message2<P: CryptoProvider>(
        mut self,
        provider: &P,
        ephemeral: SecretKey,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(HandshakeOutput, usize), NoiseError> {
        let len = MESSAGE2_LEN + payload.len();
        if out.len() < len {
            return Err(NoiseError::BufferTooSmall);
        }
        // e
        let ephemeral_public = provider.x25519_public(&ephemeral);
        out[..DH_LEN].copy_from_slice(ephemeral_public.as_bytes());
        self.state.mix_hash(provider, ephemeral_public.as_bytes());
        self.state.mix_key(provider, ephemeral_public.as_bytes());
        // ee
        self.state
            .mix_dh(provider, &ephemeral, &self.remote_ephemeral)?;
        // se: the responder's ephemeral key with the initiator's static key.
        self.state
            .mix_dh(provider, &ephemeral, &self.remote_public)?;
        let body = &mut out[DH_LEN..len];
        body[..payload.len()].copy_from_slice(payload);
        self.state.encrypt_and_hash(provider, body, payload.len())?;
        let (initiator_send, responder_send) = self.state.split(provider);
        let output = HandshakeOutput {
            send: responder_send,
            receive: initiator_send,
            handshake_hash: self.state.hash,
        };
        Ok((output, len))
    }
}
