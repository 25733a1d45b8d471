//! Audit entries and the canonical encoding that their chain hash covers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuditError;

/// Length of every hash in the chain: SHA-256.
pub const HASH_LEN: usize = 32;

/// A chain hash (SHA-256 output).
pub type Hash = [u8; HASH_LEN];

/// Maximum length in bytes of `actor`, `actor_role`, `action`, `subject`, `target` and
/// `source`.
pub const MAX_FIELD_LEN: usize = 256;

/// Maximum length in bytes of the canonical JSON of `detail`. The detail is a short
/// description of the event, never a payload.
pub const MAX_DETAIL_LEN: usize = 4096;

/// Domain-separation label of the genesis hash.
const GENESIS_LABEL: &str = "medtunnel-audit-genesis-v1";
/// Domain-separation label of the entry hash.
const ENTRY_LABEL: &str = "medtunnel-audit-entry-v1";

/// Result of an audited action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action was carried out.
    Success,
    /// The action was rejected by policy, authorization or a missing grant.
    Denied,
    /// The action was permitted but failed (error, timeout, device rejection).
    Failure,
}

impl Outcome {
    /// Returns the stored and hashed name: `success`, `denied` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "success" => Ok(Outcome::Success),
            "denied" => Ok(Outcome::Denied),
            "failure" => Ok(Outcome::Failure),
            other => Err(format!(
                "outcome {other:?} is invalid; expected success, denied or failure"
            )),
        }
    }
}

/// An event to append, before the log assigns its sequence number and hashes.
///
/// Built with [`NewEntry::new`] and the optional setters. The log checks the fields on
/// append (see [`NewEntry::validate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    /// Time of the event in Unix milliseconds, from the caller's clock.
    pub at_ms: i64,
    /// Account or service that acted, such as `user:alice`, `gateway` or `device:cgm-0001`.
    pub actor: String,
    /// Role the actor acted in, such as `clinician`.
    pub actor_role: Option<String>,
    /// Dotted action name, such as `command.request` or `access.read`.
    pub action: String,
    /// Patient or device the action concerns.
    pub subject: Option<String>,
    /// Object acted on, such as a command id.
    pub target: Option<String>,
    /// Origin of the request: a connection id or an IP address.
    pub source: Option<String>,
    /// Result of the action.
    pub outcome: Outcome,
    /// Small structured detail. Never a secret, a token or a raw health payload.
    pub detail: serde_json::Value,
}

impl NewEntry {
    /// Creates an entry with the required fields, no optional fields and a `null` detail.
    pub fn new(
        at_ms: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        NewEntry {
            at_ms,
            actor: actor.into(),
            actor_role: None,
            action: action.into(),
            subject: None,
            target: None,
            source: None,
            outcome,
            detail: serde_json::Value::Null,
        }
    }

    /// Sets the role the actor acted in.
    pub fn actor_role(mut self, role: impl Into<String>) -> Self {
        self.actor_role = Some(role.into());
        self
    }

    /// Sets the patient or device the action concerns.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the object acted on.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets where the request came from.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the structured detail.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// Checks the fields and returns the canonical JSON of the detail.
    ///
    /// `actor` and `action` must not be empty. `action` is dot-separated segments of
    /// `a-z`, `0-9` and `_`, with at least two segments. Every text field is at most
    /// [`MAX_FIELD_LEN`] bytes and contains no control character, and the detail is at
    /// most [`MAX_DETAIL_LEN`] bytes of canonical JSON.
    pub fn validate(&self) -> Result<String, AuditError> {
        check_text("actor", &self.actor)?;
        check_text("action", &self.action)?;
        check_action(&self.action)?;
        let optional = [
            ("actor_role", &self.actor_role),
            ("subject", &self.subject),
            ("target", &self.target),
            ("source", &self.source),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                check_text(field, value)?;
            }
        }
        let detail_json = canonical_json(&self.detail);
        if detail_json.len() > MAX_DETAIL_LEN {
            return Err(AuditError::DetailTooLarge {
                len: detail_json.len(),
                max: MAX_DETAIL_LEN,
            });
        }
        Ok(detail_json)
    }
}

/// One stored entry of the audit log.
///
/// Holding an `AuditEntry` read from a database guarantees nothing about its integrity:
/// only [`crate::verify`] checks the chain and the checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, dense from 1.
    pub seq: u64,
    /// Time of the event in Unix milliseconds.
    pub at_ms: i64,
    /// Account or service that acted.
    pub actor: String,
    /// Role the actor acted in.
    pub actor_role: Option<String>,
    /// Dotted action name.
    pub action: String,
    /// Patient or device the action concerns.
    pub subject: Option<String>,
    /// Object acted on, such as a command id.
    pub target: Option<String>,
    /// Origin of the request.
    pub source: Option<String>,
    /// Result of the action.
    pub outcome: Outcome,
    /// Small structured detail.
    pub detail: serde_json::Value,
    /// Hash of the previous entry, or the genesis hash for entry 1.
    #[serde(with = "hex_hash")]
    pub prev_hash: Hash,
    /// Hash of this entry's canonical encoding.
    #[serde(with = "hex_hash")]
    pub hash: Hash,
}

impl AuditEntry {
    /// Computes the hash of this entry from its fields and `prev_hash`, ignoring the
    /// stored `hash`.
    pub fn compute_hash(&self) -> Hash {
        entry_hash(&EntryFields {
            seq: self.seq,
            at_ms: self.at_ms,
            actor: &self.actor,
            actor_role: self.actor_role.as_deref(),
            action: &self.action,
            subject: self.subject.as_deref(),
            target: self.target.as_deref(),
            source: self.source.as_deref(),
            outcome: self.outcome.as_str(),
            detail_json: &canonical_json(&self.detail),
            prev_hash: &self.prev_hash,
        })
    }
}

/// Borrowed fields of an entry as they are hashed, with the detail already in its
/// canonical JSON text and the outcome as its stored name.
pub(crate) struct EntryFields<'a> {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: &'a str,
    pub actor_role: Option<&'a str>,
    pub action: &'a str,
    pub subject: Option<&'a str>,
    pub target: Option<&'a str>,
    pub source: Option<&'a str>,
    pub outcome: &'a str,
    pub detail_json: &'a str,
    pub prev_hash: &'a Hash,
}

/// Computes the genesis hash of the log `log_id`: the `prev_hash` of entry 1.
///
/// `SHA-256(text("medtunnel-audit-genesis-v1") || text(log_id))`, with `text` as in the
/// crate documentation.
pub fn genesis_hash(log_id: &str) -> Hash {
    let mut hasher = Sha256::new();
    put_text(&mut hasher, GENESIS_LABEL);
    put_text(&mut hasher, log_id);
    hasher.finalize().into()
}

/// Computes an entry hash over the encoding described in the crate documentation.
pub(crate) fn entry_hash(fields: &EntryFields<'_>) -> Hash {
    let mut hasher = Sha256::new();
    put_text(&mut hasher, ENTRY_LABEL);
    hasher.update(fields.prev_hash);
    hasher.update(fields.seq.to_be_bytes());
    hasher.update(fields.at_ms.to_be_bytes());
    put_text(&mut hasher, fields.actor);
    put_optional_text(&mut hasher, fields.actor_role);
    put_text(&mut hasher, fields.action);
    put_optional_text(&mut hasher, fields.subject);
    put_optional_text(&mut hasher, fields.target);
    put_optional_text(&mut hasher, fields.source);
    put_text(&mut hasher, fields.outcome);
    put_text(&mut hasher, fields.detail_json);
    hasher.finalize().into()
}

/// Feeds `u32 big-endian byte length || UTF-8 bytes`.
pub(crate) fn put_text(hasher: &mut Sha256, text: &str) {
    // Every field is bounded by MAX_FIELD_LEN or MAX_DETAIL_LEN on append. A longer text
    // read from a tampered database saturates the prefix, which changes the hash.
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(text.as_bytes());
}

/// Feeds `0x00` for an absent value, `0x01 || text(value)` for a present one.
fn put_optional_text(hasher: &mut Sha256, text: Option<&str>) {
    match text {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            put_text(hasher, text);
        }
    }
}

/// Serializes `value` as compact JSON with the keys of every object sorted by their
/// UTF-8 bytes. Strings and numbers are written as `serde_json` 1 writes them.
///
/// The order does not depend on whether `serde_json`'s `preserve_order` feature is
/// enabled somewhere in the build.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut output = String::new();
    write_canonical(value, &mut output);
    output
}

fn write_canonical(value: &serde_json::Value, output: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            output.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                output.push_str(&json_scalar(&serde_json::Value::String(key.clone())));
                output.push(':');
                write_canonical(&map[key], output);
            }
            output.push('}');
        }
        serde_json::Value::Array(items) => {
            output.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    output.push(',');
                }
                write_canonical(item, output);
            }
            output.push(']');
        }
        scalar => output.push_str(&json_scalar(scalar)),
    }
}

fn json_scalar(value: &serde_json::Value) -> String {
    // `Display` of a `Value` writes its compact JSON.
    value.to_string()
}

fn check_text(field: &'static str, value: &str) -> Result<(), AuditError> {
    let problem = if value.is_empty() && (field == "actor" || field == "action") {
        Some("is empty")
    } else if value.len() > MAX_FIELD_LEN {
        Some("is longer than 256 bytes")
    } else if value.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(AuditError::InvalidField {
            field,
            value: value.chars().take(64).collect(),
            problem,
        }),
        None => Ok(()),
    }
}

fn check_action(action: &str) -> Result<(), AuditError> {
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    };
    if action.split('.').count() >= 2 && action.split('.').all(segment_ok) {
        return Ok(());
    }
    Err(AuditError::InvalidField {
        field: "action",
        value: action.chars().take(64).collect(),
        problem: "is not dotted lowercase segments like command.request",
    })
}

/// Serde helpers that write a hash as 64 lowercase hex digits.
pub(crate) mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Hash;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut hash = [0u8; super::HASH_LEN];
        hex::decode_to_slice(&text, &mut hash).map_err(serde::de::Error::custom)?;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let value = serde_json::json!({"b": 1, "a": {"d": [true, null], "c": "x\"y"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"x\"y","d":[true,null]},"b":1}"#
        );
    }

    #[test]
    fn absent_and_empty_optional_hash_differently() {
        let entry = |role: Option<&str>| AuditEntry {
            seq: 1,
            at_ms: 0,
            actor: "gateway".into(),
            actor_role: role.map(str::to_owned),
            action: "command.sign".into(),
            subject: None,
            target: None,
            source: None,
            outcome: Outcome::Success,
            detail: serde_json::Value::Null,
            prev_hash: genesis_hash("log"),
            hash: [0; HASH_LEN],
        };
        assert_ne!(entry(None).compute_hash(), entry(Some("")).compute_hash());
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let with = |actor: &str, action: &str| {
            let mut entry = NewEntry::new(0, actor, action, Outcome::Success);
            entry.subject = Some(String::new());
            AuditEntry {
                seq: 1,
                at_ms: entry.at_ms,
                actor: entry.actor,
                actor_role: None,
                action: entry.action,
                subject: entry.subject,
                target: None,
                source: None,
                outcome: entry.outcome,
                detail: entry.detail,
                prev_hash: [0; HASH_LEN],
                hash: [0; HASH_LEN],
            }
            .compute_hash()
        };
        assert_ne!(with("ab", "c.d"), with("a", "bc.d"));
    }

    #[test]
    fn validate_rejects_bad_actions() {
        for action in [
            "",
            "command",
            "Command.request",
            "command..request",
            "command.re quest",
        ] {
            let entry = NewEntry::new(0, "gateway", action, Outcome::Success);
            assert!(entry.validate().is_err(), "{action:?} was accepted");
        }
        let entry = NewEntry::new(0, "gateway", "command.request", Outcome::Success);
        assert!(entry.validate().is_ok());
    }

    #[test]
    fn validate_rejects_oversized_detail() {
        let detail = serde_json::json!({ "note": "x".repeat(MAX_DETAIL_LEN) });
        let entry = NewEntry::new(0, "gateway", "command.request", Outcome::Success).detail(detail);
        assert!(matches!(
            entry.validate(),
            Err(AuditError::DetailTooLarge { .. })
        ));
    }

    #[test]
    fn validate_rejects_control_characters() {
        let entry = NewEntry::new(0, "user:alice\n", "auth.sign_in", Outcome::Success);
        assert!(entry.validate().is_err());
    }
}
