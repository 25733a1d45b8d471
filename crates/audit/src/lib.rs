//! Tamper-evident audit trail of medtunnel: every security-relevant action, with who,
//! what, when, where from and the outcome, in a SHA-256 hash chain stored in SQLite and
//! sealed by periodic Ed25519-signed checkpoints.
//!
//! Append with [`AuditSink::append`] on a [`SqliteAuditLog`], check with [`verify`], and
//! export with [`to_fhir_audit_event`] or [`to_fhir_bundle`].
//!
//! # What is detected
//!
//! The API has no way to update or delete an entry, and SQLite triggers reject `UPDATE`
//! and `DELETE` on the audit tables. Anyone who can write the database file can still
//! drop the triggers, so they are only a guard against mistakes. What such a person then
//! changes is detected by [`verify`]:
//!
//! - a changed field, a missing entry, reordered or swapped entries, and an inserted
//!   entry break the hash chain at that entry;
//! - a chain rewritten consistently, with every hash recomputed, no longer matches the
//!   first signed checkpoint at or after the first rewritten entry, and the checkpoint
//!   cannot be re-signed without the checkpoint key;
//! - entries deleted from the end are caught by a checkpoint that covers them.
//!
//! Not detected: changes after the latest checkpoint that is still in the database.
//! That is, forged entries appended after it and, when the newest checkpoints are
//! deleted too, any rewrite or deletion of the entries they covered. Keeping a copy of
//! each checkpoint outside the database, with an independent party, closes that gap.
//!
//! # Encoding (version 1)
//!
//! An auditor can recompute every hash from the stored rows with this description. Two
//! helpers define the field encoding:
//!
//! - `text(s)` = the UTF-8 byte length of `s` as a 4-byte big-endian unsigned integer,
//!   then the UTF-8 bytes of `s`;
//! - `optional(s)` = the byte `0x00` when the column is NULL, else `0x01 || text(s)`.
//!
//! Each log has a random `log_id` (32 lowercase hex digits, table `audit_log_info`).
//! Entry 1 chains to
//!
//! ```text
//! genesis = SHA-256( text("medtunnel-audit-genesis-v1") || text(log_id) )
//! ```
//!
//! and the hash of entry `seq` is
//!
//! ```text
//! hash = SHA-256( text("medtunnel-audit-entry-v1") || prev_hash (32 bytes)
//!               || seq (u64 big-endian) || at_ms (i64 big-endian, two's complement)
//!               || text(actor) || optional(actor_role) || text(action)
//!               || optional(subject) || optional(target) || optional(source)
//!               || text(outcome) || text(detail) )
//! ```
//!
//! where `prev_hash` is the hash of entry `seq - 1` (the genesis hash for entry 1),
//! `outcome` is `success`, `denied` or `failure`, and `detail` is the stored text of the
//! `detail` column. That text is the detail's canonical JSON: compact, object keys
//! sorted by their UTF-8 bytes, strings and numbers as written by `serde_json` 1. The
//! hash covers the stored bytes, so an auditor does not need to re-serialize the JSON.
//!
//! A checkpoint signs, with pure Ed25519 (RFC 8032), the message
//!
//! ```text
//! text("medtunnel-audit-checkpoint-v1") || text(log_id) || upto_seq (u64 big-endian)
//!     || hash_at_upto (32 bytes) || at_ms (i64 big-endian) || text(key_id)
//! ```
//!
//! where `hash_at_upto` is the hash of entry `upto_seq` (the genesis hash for a
//! checkpoint of the empty log, `upto_seq` 0) and `key_id` is the first 8 bytes of
//! SHA-256 of the 32-byte public key, as 16 lowercase hex digits.
//!
//! Never recorded, by any code in this crate: keys, tokens, passwords and health
//! values. Callers keep them out of `detail` too.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checkpoint;
mod entry;
mod error;
pub mod fhir;
mod key;
mod log;
mod schema;
mod verify;

pub use checkpoint::{checkpoint_message, Checkpoint};
pub use entry::{
    canonical_json, genesis_hash, AuditEntry, Hash, NewEntry, Outcome, HASH_LEN, MAX_DETAIL_LEN,
    MAX_FIELD_LEN,
};
pub use error::AuditError;
pub use fhir::{to_fhir_audit_event, to_fhir_bundle};
pub use key::{CheckpointKey, CheckpointPublicKey};
pub use log::{
    for_each_entry, open_read_only, read_checkpoints, read_entries, AuditSink, SqliteAuditLog,
};
pub use verify::{verify, verify_file, BadEntry, BadReason, VerifyReport};

/// Name of the checkpoint secret key file in a cloud directory.
pub const CHECKPOINT_KEY_FILE: &str = "audit-key";
/// Name of the checkpoint public key file in a cloud directory.
pub const CHECKPOINT_PUBLIC_KEY_FILE: &str = "audit-key.pub";
