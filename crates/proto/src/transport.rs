//! Transport keys of an established tunnel: counters, the replay window, key limits and
//! the brief overlap of old and new keys after a rekey.
//!
//! Order of checks on receive, for every candidate key of the frame's phase: reconstruct
//! the 64-bit counter and check the replay window, without decrypting. Then open the
//! AEAD, and only after that check the message limit and record the counter. A
//! forged frame with a huge counter therefore never moves the window and is reported as
//! a decryption failure, not as exhausted keys.

use crate::crypto::{Cipher, CryptoProvider, TAG_LEN};
use crate::error::Error;
use crate::noise::HandshakeOutput;
use crate::replay::{reconstruct_counter, ReplayWindow};
use crate::wire::{self, FrameKind, TRANSPORT_HEADER_LEN, TRANSPORT_OVERHEAD};

/// Limits on one set of transport keys. Times are milliseconds on the caller's
/// monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages sent under one key after which the device starts a rekey.
    pub rekey_after_messages: u64,
    /// Messages after which a key is no longer used in either direction.
    pub reject_after_messages: u64,
    /// Key age in ms after which the device starts a rekey.
    pub rekey_after_ms: u64,
    /// Key age in ms after which a key is no longer used in either direction.
    pub reject_after_ms: u64,
    /// Time in ms that the previous keys still open frames after a rekey, so frames in
    /// flight survive it.
    pub keep_previous_ms: u64,
}

impl Default for Limits {
    /// Rekey after 2^32 messages or 30 minutes, stop using keys after 2^32 + 2^20
    /// messages or 45 minutes, and keep the previous keys for 60 seconds. The message
    /// limits sit far below ChaCha20-Poly1305's safe use of one key (2^64 messages)
    /// and below the 2^31 ambiguity of the truncated counter within one replay window.
    fn default() -> Self {
        Limits {
            rekey_after_messages: 1 << 32,
            reject_after_messages: (1 << 32) + (1 << 20),
            rekey_after_ms: 30 * 60 * 1000,
            reject_after_ms: 45 * 60 * 1000,
            keep_previous_ms: 60 * 1000,
        }
    }
}

/// One direction pair of keys, with its counters.
struct KeySet<C> {
    phase: u8,
    send: C,
    receive: C,
    send_counter: u64,
    window: ReplayWindow,
    established_ms: u64,
}

impl<C: Cipher> KeySet<C> {
    fn new<P: CryptoProvider<Cipher = C>>(
        provider: &P,
        keys: &HandshakeOutput,
        phase: u8,
        now_ms: u64,
    ) -> Self {
        KeySet {
            phase,
            send: provider.cipher(&keys.send),
            receive: provider.cipher(&keys.receive),
            send_counter: 0,
            window: ReplayWindow::new(),
            established_ms: now_ms,
        }
    }

    fn expired(&self, limits: &Limits, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.established_ms) >= limits.reject_after_ms
    }

    /// Opens `frame` in place if it authenticates under this key set.
    fn open(&mut self, limits: &Limits, now_ms: u64, frame: &mut [u8]) -> Result<(), Error> {
        if self.expired(limits, now_ms) {
            return Err(Error::KeysExhausted);
        }
        let counter = reconstruct_counter(wire::transport_counter(frame), self.window.highest());
        self.window.check(counter)?;
        let tag_at = frame.len() - TAG_LEN;
        let (body, tag) = frame.split_at_mut(tag_at);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let ciphertext = &mut body[TRANSPORT_HEADER_LEN..];
        if self
            .receive
            .open(counter, &[], ciphertext, &tag_bytes)
            .is_err()
        {
            return Err(Error::TransportDecrypt);
        }
        // The limit is checked only on an authenticated counter, so a relay that rewrites
        // the counter gets a decryption failure, not a report of exhausted keys.
        if counter >= limits.reject_after_messages {
            return Err(Error::KeysExhausted);
        }
        self.window.accept(counter)?;
        Ok(())
    }
}

/// Key set that opened a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenedWith {
    /// The current keys.
    Current,
    /// The keys of a rekey the responder had not confirmed yet; they are now current.
    Confirmed,
    /// The previous keys, still inside their grace period.
    Previous,
}

/// Transport state of one tunnel: current keys, the previous keys for a short while
/// after a rekey, and on the responder the keys of a rekey not yet confirmed.
///
/// Call [`Session::open`] for every received transport frame and [`Session::seal`] to
/// send; check [`Session::needs_rekey`] after each send (device side).
pub struct Session<C> {
    limits: Limits,
    current: Option<KeySet<C>>,
    previous: Option<(KeySet<C>, u64)>,
    pending: Option<KeySet<C>>,
}

impl<C: Cipher> Session<C> {
    /// Creates a session with no keys.
    pub const fn new(limits: Limits) -> Self {
        Session {
            limits,
            current: None,
            previous: None,
            pending: None,
        }
    }

    /// Limits this session enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// True when keys are installed that this side may send with.
    pub fn is_established(&self) -> bool {
        self.current.is_some()
    }

    /// Installs the keys of a completed handshake on the initiator: they become current
    /// at once, and the old current keys become the previous ones.
    pub fn install_initiator<P: CryptoProvider<Cipher = C>>(
        &mut self,
        provider: &P,
        keys: &HandshakeOutput,
        phase: u8,
        now_ms: u64,
    ) {
        let next = KeySet::new(provider, keys, phase, now_ms);
        if let Some(old) = self.current.replace(next) {
            self.previous = Some((old, now_ms + self.limits.keep_previous_ms));
        }
    }

    /// Installs the keys of a completed handshake on the responder. They stay pending
    /// until the initiator proves it has them by sending a frame under them. Until then
    /// this side keeps sending with the current keys.
    pub fn install_responder<P: CryptoProvider<Cipher = C>>(
        &mut self,
        provider: &P,
        keys: &HandshakeOutput,
        phase: u8,
        now_ms: u64,
    ) {
        self.pending = Some(KeySet::new(provider, keys, phase, now_ms));
    }

    /// Seals a record: `out[TRANSPORT_HEADER_LEN..][..record_len]` contains the plaintext,
    /// and on success `out[..returned]` is the frame.
    pub fn seal(&mut self, now_ms: u64, out: &mut [u8], record_len: usize) -> Result<usize, Error> {
        let frame_len = TRANSPORT_OVERHEAD + record_len;
        if out.len() < frame_len {
            return Err(Error::BufferTooSmall { needed: frame_len });
        }
        let limits = self.limits;
        let Some(keys) = self.current.as_mut() else {
            return Err(Error::NotConnected);
        };
        if keys.expired(&limits, now_ms) || keys.send_counter >= limits.reject_after_messages {
            return Err(Error::KeysExhausted);
        }
        let counter = keys.send_counter;
        keys.send_counter += 1;
        out[0] = wire::type_byte(wire::TYPE_TRANSPORT | keys.phase);
        // Truncation to the low 32 bits is the wire format; the receiver rebuilds the
        // rest from its replay window.
        out[1..TRANSPORT_HEADER_LEN].copy_from_slice(&(counter as u32).to_le_bytes());
        let body_end = TRANSPORT_HEADER_LEN + record_len;
        let tag = keys
            .send
            .seal(counter, &[], &mut out[TRANSPORT_HEADER_LEN..body_end]);
        out[body_end..frame_len].copy_from_slice(&tag);
        Ok(frame_len)
    }

    /// Opens a transport frame in place. On success the plaintext record is
    /// `frame[TRANSPORT_HEADER_LEN..frame.len() - TAG_LEN]`.
    pub fn open(&mut self, now_ms: u64, frame: &mut [u8]) -> Result<OpenedWith, Error> {
        let FrameKind::Transport { phase } = wire::frame_kind(frame)? else {
            return Err(Error::UnexpectedFrame);
        };
        self.expire_previous(now_ms);
        let limits = self.limits;
        let mut result = Err(Error::NoSessionForPhase { phase });
        // The pending keys come first: a frame under them is the initiator's proof that
        // it completed the newer handshake.
        if let Some(pending) = self.pending.as_mut().filter(|keys| keys.phase == phase) {
            result = pending.open(&limits, now_ms, frame);
            if result.is_ok() {
                self.confirm_pending(now_ms);
                return Ok(OpenedWith::Confirmed);
            }
        }
        if let Some(current) = self.current.as_mut().filter(|keys| keys.phase == phase) {
            result = current.open(&limits, now_ms, frame);
            if result.is_ok() {
                return Ok(OpenedWith::Current);
            }
        }
        if let Some((previous, _)) = self
            .previous
            .as_mut()
            .filter(|(keys, _)| keys.phase == phase)
        {
            result = previous.open(&limits, now_ms, frame);
            if result.is_ok() {
                return Ok(OpenedWith::Previous);
            }
        }
        result.map(|()| OpenedWith::Current)
    }

    fn confirm_pending(&mut self, now_ms: u64) {
        if let Some(pending) = self.pending.take() {
            if let Some(old) = self.current.replace(pending) {
                self.previous = Some((old, now_ms + self.limits.keep_previous_ms));
            }
        }
    }

    fn expire_previous(&mut self, now_ms: u64) {
        if matches!(self.previous, Some((_, until)) if now_ms >= until) {
            self.previous = None;
        }
    }

    /// True when the current keys reached a rekey limit (messages or age). Only the
    /// device starts a rekey; the cloud never does.
    pub fn needs_rekey(&self, now_ms: u64) -> bool {
        match &self.current {
            Some(keys) => {
                keys.send_counter >= self.limits.rekey_after_messages
                    || now_ms.saturating_sub(keys.established_ms) >= self.limits.rekey_after_ms
            }
            None => false,
        }
    }

    /// Drops every key, for a closed or failed tunnel.
    pub fn clear(&mut self) {
        self.current = None;
        self.previous = None;
        self.pending = None;
    }

    /// Messages sent under the current keys.
    pub fn sent_under_current(&self) -> u64 {
        self.current.as_ref().map_or(0, |keys| keys.send_counter)
    }
}
