//! Signed command envelopes.
//!
//! The cloud signs every command with a command-signing key (Ed25519) that is kept apart
//! from the tunnel keys, so a gateway that holds only tunnel keys cannot issue commands.
//! The signature covers the domain string [`SIGNATURE_DOMAIN`] followed by every byte of
//! the encoding before the signature, so changing any field invalidates it.
//!
//! # Freshness model
//!
//! The device has no real-time clock. It counts boots in a persisted monotonic counter
//! (the *epoch*) and runs a *session clock*: milliseconds since this boot, starting at 0.
//! The device reports its epoch and session clock to the cloud; the cloud sets
//! `expires_at_ms` on that clock, and `epoch` to the epoch it was reported. After a
//! reboot the clock restarts at 0 and the epoch grows, so a command held back across the
//! reboot is rejected for its epoch instead of looking fresh again. The cloud's estimate
//! of the device clock lags by the one-way delay of the report, which shortens a
//! command's lifetime and never lengthens it.
//!
//! # Encoding (version 1, big-endian)
//!
//! | offset | size | field                                                       |
//! |--------|------|-------------------------------------------------------------|
//! | 0      | 1    | version, `1`                                                |
//! | 1      | 16   | device id                                                   |
//! | 17     | 16   | command id                                                  |
//! | 33     | 8    | sequence, per device, strictly increasing                   |
//! | 41     | 4    | epoch: the device's boot counter                            |
//! | 45     | 8    | expiry in milliseconds on the session clock of that epoch   |
//! | 53     | 1    | challenge flag: `0` absent, `1` present, other values invalid |
//! | 54     | 16   | challenge, only when the flag is `1`                        |
//! | c      | 1    | body length `n` (1..=[`MAX_BODY_LEN`])                      |
//! | c+1    | n    | body (see [`crate::body`])                                  |
//! | c+1+n  | 64   | Ed25519 signature over [`SIGNATURE_DOMAIN`] ‖ bytes `0..c+1+n` |
//!
//! `c` is 54 without a challenge and 70 with one. Decoding rejects any other length, a
//! body that does not fill its length exactly, and unknown versions or tags.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::body::{CommandBody, MAX_BODY_LEN};
use crate::wire::{BufferTooSmall, DecodeError, Reader, Writer};

/// Id of a device.
pub type DeviceId = [u8; 16];
/// Id of a command, chosen by the cloud, unique per command.
pub type CommandId = [u8; 16];
/// A single-use value issued by the device for one high-risk command.
pub type Challenge = [u8; 16];

/// Version byte of the envelope encoding.
pub const ENVELOPE_VERSION: u8 = 1;
/// Domain separation prefix of the signed message.
pub const SIGNATURE_DOMAIN: &[u8] = b"medtunnel command v1";
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Largest encoding before the signature: a challenge and the largest body.
pub const MAX_UNSIGNED_LEN: usize = 54 + 16 + 1 + MAX_BODY_LEN;
/// Largest encoded signed command.
pub const MAX_SIGNED_COMMAND_LEN: usize = MAX_UNSIGNED_LEN + SIGNATURE_LEN;

const _: () = assert!(MAX_BODY_LEN <= u8::MAX as usize);

/// A command before signing: every field the signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandEnvelope {
    /// Device the command is addressed to.
    pub device_id: DeviceId,
    /// Unique id of the command.
    pub command_id: CommandId,
    /// Per-device sequence; the device executes only sequences above the last executed.
    pub sequence: u64,
    /// Boot epoch of the device the expiry refers to.
    pub epoch: u32,
    /// Expiry in milliseconds on the device's session clock of `epoch`; the device
    /// rejects the command once its clock has passed this value.
    pub expires_at_ms: u64,
    /// Device challenge, required for high-risk commands.
    pub challenge: Option<Challenge>,
    /// What to do.
    pub body: CommandBody,
}

/// An envelope with its signature. Holding one guarantees nothing about the signature;
/// [`SignedCommand::verify`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedCommand {
    envelope: CommandEnvelope,
    signature: [u8; SIGNATURE_LEN],
}

/// The signature does not verify under the given key: a forged or modified command, or
/// one signed with another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureInvalid;

impl core::fmt::Display for SignatureInvalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("command signature is invalid")
    }
}

impl CommandEnvelope {
    /// Length of the encoding before the signature.
    pub fn unsigned_len(&self) -> usize {
        let challenge_len = if self.challenge.is_some() { 16 } else { 0 };
        54 + challenge_len + 1 + self.body.encoded_len()
    }

    /// Signs the envelope with the command-signing key.
    pub fn sign(&self, key: &SigningKey) -> SignedCommand {
        let mut message = [0u8; SIGNATURE_DOMAIN.len() + MAX_UNSIGNED_LEN];
        let len = self.signed_message(&mut message);
        let signature = key.sign(&message[..len]).to_bytes();
        SignedCommand {
            envelope: *self,
            signature,
        }
    }

    /// Writes the domain and the unsigned encoding into `out` and returns the length.
    fn signed_message(&self, out: &mut [u8; SIGNATURE_DOMAIN.len() + MAX_UNSIGNED_LEN]) -> usize {
        out[..SIGNATURE_DOMAIN.len()].copy_from_slice(SIGNATURE_DOMAIN);
        let needed = self.unsigned_len();
        let rest = &mut out[SIGNATURE_DOMAIN.len()..];
        // `rest` is MAX_UNSIGNED_LEN long and no envelope encodes longer than that.
        let Ok(mut w) = Writer::new(rest, needed) else {
            unreachable!("envelope longer than MAX_UNSIGNED_LEN")
        };
        self.write_unsigned(&mut w);
        SIGNATURE_DOMAIN.len() + w.position()
    }

    fn write_unsigned(&self, w: &mut Writer<'_>) {
        w.u8(ENVELOPE_VERSION);
        w.bytes(&self.device_id);
        w.bytes(&self.command_id);
        w.u64(self.sequence);
        w.u32(self.epoch);
        w.u64(self.expires_at_ms);
        match &self.challenge {
            None => w.u8(0),
            Some(challenge) => {
                w.u8(1);
                w.bytes(challenge);
            }
        }
        // The body is at most MAX_BODY_LEN bytes, which fits in a u8 (checked above).
        w.u8(self.body.encoded_len() as u8);
        self.body.write(w);
    }
}

impl SignedCommand {
    /// Envelope as received. Its fields are unauthenticated until [`Self::verify`]
    /// succeeds.
    pub fn envelope(&self) -> &CommandEnvelope {
        &self.envelope
    }

    /// Signature bytes.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Verifies the signature with the provisioned command-signing public key and returns
    /// the now authenticated envelope. Uses strict verification, which also rejects
    /// non-canonical signatures and weak keys.
    pub fn verify(&self, key: &VerifyingKey) -> Result<&CommandEnvelope, SignatureInvalid> {
        let mut message = [0u8; SIGNATURE_DOMAIN.len() + MAX_UNSIGNED_LEN];
        let len = self.envelope.signed_message(&mut message);
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&message[..len], &signature)
            .map_err(|_| SignatureInvalid)?;
        Ok(&self.envelope)
    }

    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        self.envelope.unsigned_len() + SIGNATURE_LEN
    }

    /// Encodes the signed command into `out` and returns the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Writer::new(out, self.encoded_len())?;
        self.envelope.write_unsigned(&mut w);
        w.bytes(&self.signature);
        Ok(w.position())
    }

    /// Decodes exactly one signed command that fills `input`. Does not verify the
    /// signature.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input);
        let version = r.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let device_id = r.array()?;
        let command_id = r.array()?;
        let sequence = r.u64()?;
        let epoch = r.u32()?;
        let expires_at_ms = r.u64()?;
        let challenge = match r.u8()? {
            0 => None,
            1 => Some(r.array()?),
            _ => return Err(DecodeError::InvalidField("challenge flag")),
        };
        let body_len = usize::from(r.u8()?);
        if body_len == 0 || body_len > MAX_BODY_LEN {
            return Err(DecodeError::InvalidField("body length"));
        }
        let body = CommandBody::decode(r.bytes(body_len)?)?;
        let signature = r.array()?;
        r.finish()?;
        let envelope = CommandEnvelope {
            device_id,
            command_id,
            sequence,
            epoch,
            expires_at_ms,
            challenge,
            body,
        };
        Ok(Self {
            envelope,
            signature,
        })
    }
}
