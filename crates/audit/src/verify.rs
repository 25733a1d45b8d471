//! Verification of the chain and its checkpoints, naming the first bad entry.

use std::fmt;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use crate::checkpoint::Checkpoint;
use crate::entry::{entry_hash, genesis_hash, EntryFields, Hash};
use crate::key::CheckpointPublicKey;
use crate::{schema, AuditError};

/// Result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Number of rows in `audit_log`.
    pub entries: u64,
    /// Number of rows in `audit_checkpoints`.
    pub checkpoints: u64,
    /// The first problem in sequence order, `None` when the log is intact.
    pub first_bad: Option<BadEntry>,
}

impl VerifyReport {
    /// Returns whether no problem was found.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The first entry at which the log fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEntry {
    /// Sequence number of the entry, or of the checkpoint for checkpoint problems.
    pub seq: u64,
    /// Kind of problem.
    pub reason: BadReason,
}

impl fmt::Display for BadEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "entry {}: {}", self.seq, self.reason)
    }
}

/// Reason an entry or checkpoint fails verification.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadReason {
    /// The stored hash does not match the entry's fields, but `prev_hash` links to the
    /// previous entry: a field was changed in place.
    Altered,
    /// Neither the hash nor `prev_hash` fits this position: entries were reordered,
    /// swapped or replaced, or `prev_hash` itself was changed.
    OutOfPlace,
    /// The entry is consistent in itself but `prev_hash` is not the hash of the previous
    /// entry: the previous entry was rewritten with a new hash, or this one was forged.
    BrokenLink,
    /// The entry after this one links to the entry before it: this entry was inserted.
    Inserted,
    /// No row has this sequence number, but later rows exist.
    Missing {
        /// Sequence number of the next stored row.
        next_stored: u64,
    },
    /// A row with a lower sequence number appears where this entry belongs: a duplicate
    /// sequence number in a table whose key constraint was removed.
    OutOfOrder {
        /// The sequence number found.
        found: u64,
    },
    /// A column cannot be read as its type.
    Malformed {
        /// Description of the problem.
        problem: String,
    },
    /// A checkpoint at this entry names a key that is not among the trusted keys.
    CheckpointUnknownKey {
        /// The key id stored in the checkpoint.
        key_id: String,
    },
    /// The signature of the checkpoint at this entry is invalid.
    CheckpointBadSignature {
        /// The key id stored in the checkpoint.
        key_id: String,
    },
    /// The checkpoint at this entry is validly signed but the chain now has another hash
    /// here: some entry after `last_good_seq` was rewritten, with every later hash
    /// recomputed.
    CheckpointMismatch {
        /// The latest earlier checkpoint that matched, 0 if none.
        last_good_seq: u64,
    },
    /// The entry is missing from the end of the log: a validly signed checkpoint covers
    /// entry `checkpoint_seq`, but the log ends before this entry.
    Truncated {
        /// The checkpoint's `upto_seq`.
        checkpoint_seq: u64,
    },
}

impl fmt::Display for BadReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadReason::Altered => {
                formatter.write_str("stored hash does not match the entry's fields (altered)")
            }
            BadReason::OutOfPlace => formatter.write_str(
                "neither hash nor prev_hash fits this position (reordered, swapped or replaced)",
            ),
            BadReason::BrokenLink => formatter.write_str(
                "prev_hash is not the hash of the previous entry \
                 (previous entry rewritten, or this entry forged)",
            ),
            BadReason::Inserted => formatter
                .write_str("the next entry links past this one to the entry before it (inserted)"),
            BadReason::Missing { next_stored } => {
                write!(
                    formatter,
                    "entry missing (next stored entry is {next_stored})"
                )
            }
            BadReason::OutOfOrder { found } => {
                write!(
                    formatter,
                    "a row with seq {found} appears here (duplicate or out of order)"
                )
            }
            BadReason::Malformed { problem } => write!(formatter, "malformed row: {problem}"),
            BadReason::CheckpointUnknownKey { key_id } => {
                write!(formatter, "checkpoint signed by unknown key {key_id}")
            }
            BadReason::CheckpointBadSignature { key_id } => {
                write!(formatter, "checkpoint signature is invalid (key {key_id})")
            }
            BadReason::CheckpointMismatch { last_good_seq } => write!(
                formatter,
                "signed checkpoint does not match the chain \
                 (an entry after {last_good_seq} was rewritten)"
            ),
            BadReason::Truncated { checkpoint_seq } => write!(
                formatter,
                "entry missing, but a signed checkpoint covers entry {checkpoint_seq} (truncated)"
            ),
        }
    }
}

/// Opens the database at `path` read-only and verifies its audit log with
/// [`verify`].
pub fn verify_file(path: &Path, keys: &[CheckpointPublicKey]) -> Result<VerifyReport, AuditError> {
    verify(&crate::open_read_only(path)?, keys)
}

/// Recomputes the hash chain from entry 1 in sequence order, checks every checkpoint
/// against `keys` and against the chain, and names the first problem.
///
/// Rows are read with the types checked one by one, so a tampered database never makes
/// this fail with an error: errors are only for a database that cannot be read or has
/// no audit tables.
///
/// NOTE: entries appended after the latest checkpoint are protected only by the chain.
/// Someone with write access to the file can append forged entries there, or delete
/// them together with any checkpoint that covers them, undetected. Keeping a copy of the
/// latest checkpoint outside the database closes that gap.
pub fn verify(
    connection: &Connection,
    keys: &[CheckpointPublicKey],
) -> Result<VerifyReport, AuditError> {
    schema::require_tables(connection)?;
    let log_id =
        schema::read_log_id(connection)?.ok_or(AuditError::NotAnAuditLog("audit_log_info"))?;
    let checkpoints = read_raw_checkpoints(connection)?;
    let mut walk = ChainWalk::new(genesis_hash(&log_id), &log_id, keys, &checkpoints);

    let mut statement = connection.prepare(
        "SELECT seq, at_ms, actor, actor_role, action, subject, target, source, outcome,
                detail, prev_hash, hash
         FROM audit_log ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    let mut entries = 0u64;
    let mut first_bad = walk.check_checkpoints_at(0);
    while let Some(row) = rows.next()? {
        entries += 1;
        if first_bad.is_none() {
            first_bad = walk.step(row);
        }
    }
    if first_bad.is_none() {
        first_bad = walk.finish();
    }
    if let Some(bad) = &first_bad {
        tracing::debug!(seq = bad.seq, reason = %bad.reason, "audit log verification failed");
    }
    Ok(VerifyReport {
        entries,
        checkpoints: checkpoints.len() as u64,
        first_bad,
    })
}

/// State of the walk along the chain: the next expected entry and the hashes of the
/// two entries before it.
struct ChainWalk<'a> {
    log_id: &'a str,
    keys: &'a [CheckpointPublicKey],
    checkpoints: &'a [RawCheckpoint],
    next_checkpoint: usize,
    last_good_checkpoint: u64,
    expected: u64,
    prev_hash: Hash,
    before_prev_hash: Option<Hash>,
}

impl<'a> ChainWalk<'a> {
    fn new(
        genesis: Hash,
        log_id: &'a str,
        keys: &'a [CheckpointPublicKey],
        checkpoints: &'a [RawCheckpoint],
    ) -> Self {
        ChainWalk {
            log_id,
            keys,
            checkpoints,
            next_checkpoint: 0,
            last_good_checkpoint: 0,
            expected: 1,
            prev_hash: genesis,
            before_prev_hash: None,
        }
    }

    /// Checks one row, which is expected to be entry `self.expected`.
    fn step(&mut self, row: &Row<'_>) -> Option<BadEntry> {
        let bad = |seq, reason| Some(BadEntry { seq, reason });
        let expected = self.expected;
        let raw = match RawEntry::read(row) {
            Ok(raw) => raw,
            Err(problem) => return bad(expected, BadReason::Malformed { problem }),
        };
        if raw.seq < expected {
            return bad(expected, BadReason::OutOfOrder { found: raw.seq });
        }
        if raw.seq > expected {
            return bad(
                expected,
                BadReason::Missing {
                    next_stored: raw.seq,
                },
            );
        }

        let hash_ok = raw.compute_hash() == raw.hash;
        let link_ok = raw.prev_hash == self.prev_hash;
        if !link_ok && Some(raw.prev_hash) == self.before_prev_hash {
            return bad(expected - 1, BadReason::Inserted);
        }
        match (hash_ok, link_ok) {
            (true, true) => {}
            (false, true) => return bad(expected, BadReason::Altered),
            (false, false) => return bad(expected, BadReason::OutOfPlace),
            (true, false) => return bad(expected, BadReason::BrokenLink),
        }

        self.before_prev_hash = Some(self.prev_hash);
        self.prev_hash = raw.hash;
        self.expected += 1;
        self.check_checkpoints_at(expected)
    }

    /// Checks the checkpoint at `seq`, if there is one, against the chain hash there.
    fn check_checkpoints_at(&mut self, seq: u64) -> Option<BadEntry> {
        while let Some(raw) = self.checkpoints.get(self.next_checkpoint) {
            if raw.upto_seq != seq {
                break;
            }
            self.next_checkpoint += 1;
            if let Some(reason) = self.check_signature(raw) {
                return Some(BadEntry { seq, reason });
            }
            if raw.hash_at_upto != self.prev_hash {
                let last_good_seq = self.last_good_checkpoint;
                return Some(BadEntry {
                    seq,
                    reason: BadReason::CheckpointMismatch { last_good_seq },
                });
            }
            self.last_good_checkpoint = seq;
        }
        None
    }

    /// Reports the first checkpoint that lies beyond the last entry, after checking its
    /// signature, so a forged checkpoint is not mistaken for proof of truncation.
    fn finish(&mut self) -> Option<BadEntry> {
        let raw = self.checkpoints.get(self.next_checkpoint)?;
        if let Some(reason) = self.check_signature(raw) {
            return Some(BadEntry {
                seq: raw.upto_seq,
                reason,
            });
        }
        Some(BadEntry {
            seq: self.expected,
            reason: BadReason::Truncated {
                checkpoint_seq: raw.upto_seq,
            },
        })
    }

    fn check_signature(&self, raw: &RawCheckpoint) -> Option<BadReason> {
        let Some(key) = self.keys.iter().find(|key| key.key_id() == raw.key_id) else {
            return Some(BadReason::CheckpointUnknownKey {
                key_id: raw.key_id.clone(),
            });
        };
        let signature_ok = match &raw.checkpoint {
            Some(checkpoint) => checkpoint.signature_is_valid(key, self.log_id),
            None => false,
        };
        if signature_ok {
            None
        } else {
            Some(BadReason::CheckpointBadSignature {
                key_id: raw.key_id.clone(),
            })
        }
    }
}

/// An `audit_log` row with every column checked for its type.
struct RawEntry {
    seq: u64,
    at_ms: i64,
    actor: String,
    actor_role: Option<String>,
    action: String,
    subject: Option<String>,
    target: Option<String>,
    source: Option<String>,
    outcome: String,
    detail: String,
    prev_hash: Hash,
    hash: Hash,
}

impl RawEntry {
    fn read(row: &Row<'_>) -> Result<Self, String> {
        let seq = integer(row, 0, "seq")?;
        Ok(RawEntry {
            seq: u64::try_from(seq).map_err(|_| format!("seq {seq} is negative"))?,
            at_ms: integer(row, 1, "at_ms")?,
            actor: text(row, 2, "actor")?,
            actor_role: optional_text(row, 3, "actor_role")?,
            action: text(row, 4, "action")?,
            subject: optional_text(row, 5, "subject")?,
            target: optional_text(row, 6, "target")?,
            source: optional_text(row, 7, "source")?,
            outcome: text(row, 8, "outcome")?,
            detail: text(row, 9, "detail")?,
            prev_hash: hash(row, 10, "prev_hash")?,
            hash: hash(row, 11, "hash")?,
        })
    }

    /// Hashes the stored text of every field, so that any change to the stored bytes,
    /// even one that parses to the same JSON value, changes the hash.
    fn compute_hash(&self) -> Hash {
        entry_hash(&EntryFields {
            seq: self.seq,
            at_ms: self.at_ms,
            actor: &self.actor,
            actor_role: self.actor_role.as_deref(),
            action: &self.action,
            subject: self.subject.as_deref(),
            target: self.target.as_deref(),
            source: self.source.as_deref(),
            outcome: &self.outcome,
            detail_json: &self.detail,
            prev_hash: &self.prev_hash,
        })
    }
}

/// An `audit_checkpoints` row. `checkpoint` is `None` when a column has the wrong type
/// or length, which verification reports as an invalid signature.
struct RawCheckpoint {
    upto_seq: u64,
    key_id: String,
    hash_at_upto: Hash,
    checkpoint: Option<Checkpoint>,
}

fn read_raw_checkpoints(connection: &Connection) -> Result<Vec<RawCheckpoint>, AuditError> {
    let mut statement = connection.prepare(
        "SELECT upto_seq, hash_at_upto, at_ms, key_id, signature
         FROM audit_checkpoints ORDER BY upto_seq",
    )?;
    let mut rows = statement.query([])?;
    let mut checkpoints = Vec::new();
    while let Some(row) = rows.next()? {
        // NOTE: a row whose upto_seq is not a non-negative integer cannot be placed on
        // the chain, so it is skipped and not reported.
        let upto_seq = integer(row, 0, "upto_seq").ok();
        let Some(upto_seq) = upto_seq.and_then(|seq| u64::try_from(seq).ok()) else {
            continue;
        };
        let key_id = text(row, 3, "key_id").unwrap_or_default();
        let hash_at_upto = hash(row, 1, "hash_at_upto").ok();
        let at_ms = integer(row, 2, "at_ms").ok();
        let signature = blob::<64>(row, 4, "signature").ok();
        let checkpoint = match (hash_at_upto, at_ms, signature) {
            (Some(hash_at_upto), Some(at_ms), Some(signature)) => Some(Checkpoint {
                upto_seq,
                hash_at_upto,
                at_ms,
                key_id: key_id.clone(),
                signature,
            }),
            _ => None,
        };
        checkpoints.push(RawCheckpoint {
            upto_seq,
            key_id,
            hash_at_upto: hash_at_upto.unwrap_or_default(),
            checkpoint,
        });
    }
    Ok(checkpoints)
}

fn integer(row: &Row<'_>, index: usize, column: &str) -> Result<i64, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Integer(value)) => Ok(value),
        _ => Err(format!("{column} is not an integer")),
    }
}

fn optional_text(row: &Row<'_>, index: usize, column: &str) -> Result<Option<String>, String> {
    match row.get_ref(index) {
        Ok(ValueRef::Null) => Ok(None),
        Ok(ValueRef::Text(bytes)) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| format!("{column} is not UTF-8 text")),
        _ => Err(format!("{column} is not text")),
    }
}

fn text(row: &Row<'_>, index: usize, column: &str) -> Result<String, String> {
    optional_text(row, index, column)?.ok_or_else(|| format!("{column} is NULL"))
}

fn hash(row: &Row<'_>, index: usize, column: &str) -> Result<Hash, String> {
    blob::<32>(row, index, column)
}

fn blob<const N: usize>(row: &Row<'_>, index: usize, column: &str) -> Result<[u8; N], String> {
    match row.get_ref(index) {
        Ok(ValueRef::Blob(bytes)) => bytes
            .try_into()
            .map_err(|_| format!("{column} is {} bytes instead of {N}", bytes.len())),
        _ => Err(format!("{column} is not a blob")),
    }
}
