//! Signed checkpoints: a statement, signed with the checkpoint key, of which hash the
//! chain had at a given entry.

use serde::{Deserialize, Serialize};

use crate::entry::{hex_hash, Hash};
use crate::key::{CheckpointKey, CheckpointPublicKey};

/// Domain-separation label of the signed checkpoint message.
const CHECKPOINT_LABEL: &str = "medtunnel-audit-checkpoint-v1";

/// A signed statement that entry `upto_seq` of the log had hash `hash_at_upto` at time
/// `at_ms`.
///
/// Holding a `Checkpoint` read from a database guarantees nothing: only
/// [`crate::verify`] checks its signature and compares it with the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Last entry covered; 0 for a checkpoint of the empty log.
    pub upto_seq: u64,
    /// Hash of entry `upto_seq`, or the genesis hash when `upto_seq` is 0.
    #[serde(with = "hex_hash")]
    pub hash_at_upto: Hash,
    /// Signing time in Unix milliseconds, from the caller's clock.
    pub at_ms: i64,
    /// Id of the key that signed, see [`CheckpointPublicKey::key_id`].
    pub key_id: String,
    /// Ed25519 signature over [`checkpoint_message`].
    #[serde(with = "hex_signature")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Signs a checkpoint of the log `log_id` at entry `upto_seq`.
    pub(crate) fn sign(
        key: &CheckpointKey,
        log_id: &str,
        upto_seq: u64,
        hash_at_upto: Hash,
        at_ms: i64,
    ) -> Self {
        let key_id = key.public_key().key_id().to_owned();
        let message = checkpoint_message(log_id, upto_seq, &hash_at_upto, at_ms, &key_id);
        Checkpoint {
            upto_seq,
            hash_at_upto,
            at_ms,
            key_id,
            signature: key.sign(&message),
        }
    }

    /// Checks the signature with `key`, for the log `log_id`. Does not check that
    /// `key.key_id()` equals `self.key_id`.
    pub fn signature_is_valid(&self, key: &CheckpointPublicKey, log_id: &str) -> bool {
        let message = checkpoint_message(
            log_id,
            self.upto_seq,
            &self.hash_at_upto,
            self.at_ms,
            &self.key_id,
        );
        key.verify(&message, &self.signature)
    }
}

/// Encodes the message that a checkpoint signature covers, as described in the crate
/// documentation. The log id binds a checkpoint to one log, so a checkpoint cannot be
/// copied into another log signed by the same key.
pub fn checkpoint_message(
    log_id: &str,
    upto_seq: u64,
    hash_at_upto: &Hash,
    at_ms: i64,
    key_id: &str,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(128);
    put_text(&mut message, CHECKPOINT_LABEL);
    put_text(&mut message, log_id);
    message.extend_from_slice(&upto_seq.to_be_bytes());
    message.extend_from_slice(hash_at_upto);
    message.extend_from_slice(&at_ms.to_be_bytes());
    put_text(&mut message, key_id);
    message
}

fn put_text(message: &mut Vec<u8>, text: &str) {
    // Labels, log ids and key ids are short; a longer text read from a tampered database
    // saturates the prefix, which makes the signature fail.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(text.as_bytes());
}

/// Serde helpers that write a signature as 128 lowercase hex digits.
mod hex_signature {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}
