//! Tampering with a real SQLite file of 1,000 entries with a checkpoint every 100
//! entries: each case changes a fresh copy through raw SQL with the triggers dropped,
//! and verification must name exactly the first affected entry.

mod common;

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{checkpoint_key, rehash_from, sample_entry, stored_hash, tamper};
use medtunnel_audit::{
    verify, verify_file, AuditEntry, AuditSink, BadEntry, BadReason, Checkpoint, CheckpointKey,
    CheckpointPublicKey, SqliteAuditLog, VerifyReport,
};
use rusqlite::Connection;
use tempfile::TempDir;

const ENTRIES: u64 = 1000;
const INTERVAL: u64 = 100;
/// An entry in the middle of the log, not on a checkpoint.
const MIDDLE: u64 = 437;

/// The database file of the fixture log, built once and copied for every test.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    let (_dir, path) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("cloud.db");
        let interval = NonZeroU64::new(INTERVAL).expect("nonzero");
        let mut log = SqliteAuditLog::open(&path)
            .expect("open")
            .with_checkpoints(checkpoint_key(), interval);
        common::append_samples(&mut log, ENTRIES);
        drop(log);
        (dir, path)
    });
    path
}

/// A fresh copy of the fixture log, with its directory.
fn fresh_copy() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cloud.db");
    std::fs::copy(template(), &path).expect("copy database");
    (dir, path)
}

fn trusted_keys() -> Vec<CheckpointPublicKey> {
    vec![checkpoint_key().public_key().clone()]
}

/// Applies `sql` to a fresh copy and verifies it.
fn verify_after(sql: &str) -> VerifyReport {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(&connection, sql);
    verify(&connection, &trusted_keys()).expect("verify")
}

fn first_bad(report: &VerifyReport) -> &BadEntry {
    report
        .first_bad
        .as_ref()
        .expect("tampering was not detected")
}

#[test]
fn intact_log_verifies() {
    let report = verify_file(template(), &trusted_keys()).expect("verify");
    assert_eq!(report.entries, ENTRIES);
    assert_eq!(report.checkpoints, ENTRIES / INTERVAL);
    assert_eq!(report.first_bad, None);
}

#[test]
fn altered_field_is_named() {
    let cases = [
        ("at_ms", "at_ms = at_ms + 1"),
        ("actor", "actor = 'user:mallory'"),
        ("actor_role", "actor_role = 'admin'"),
        ("actor_role removed", "actor_role = NULL"),
        ("action", "action = 'command.cosign'"),
        ("subject", "subject = 'patient:p-0043'"),
        ("target", "target = 'cmd-999'"),
        ("source", "source = '198.51.100.7'"),
        (
            "outcome",
            "outcome = CASE outcome WHEN 'success' THEN 'denied' ELSE 'success' END",
        ),
        ("detail", "detail = '{\"index\":437,\"setting\":\"bolus\"}'"),
        ("detail whitespace", "detail = detail || ' '"),
        ("hash", "hash = randomblob(32)"),
    ];
    for (field, assignment) in cases {
        let report = verify_after(&format!(
            "UPDATE audit_log SET {assignment} WHERE seq = {MIDDLE}"
        ));
        let bad = first_bad(&report);
        assert_eq!(bad.seq, MIDDLE, "{field}");
        assert_eq!(bad.reason, BadReason::Altered, "{field}");
    }
}

#[test]
fn altered_prev_hash_is_named() {
    let report = verify_after(&format!(
        "UPDATE audit_log SET prev_hash = randomblob(32) WHERE seq = {MIDDLE}"
    ));
    let bad = first_bad(&report);
    assert_eq!(bad.seq, MIDDLE);
    assert_eq!(bad.reason, BadReason::OutOfPlace);
}

#[test]
fn deleted_middle_entry_is_named() {
    let report = verify_after(&format!("DELETE FROM audit_log WHERE seq = {MIDDLE}"));
    let bad = first_bad(&report);
    assert_eq!(bad.seq, MIDDLE);
    assert_eq!(
        bad.reason,
        BadReason::Missing {
            next_stored: MIDDLE + 1
        }
    );
    assert_eq!(report.entries, ENTRIES - 1);
}

#[test]
fn truncated_tail_is_caught_by_checkpoint() {
    let report = verify_after("DELETE FROM audit_log WHERE seq > 995");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 996);
    assert_eq!(
        bad.reason,
        BadReason::Truncated {
            checkpoint_seq: 1000
        }
    );
    assert_eq!(
        bad.to_string(),
        "entry 996: entry missing, but a signed checkpoint covers entry 1000 (truncated)"
    );
}

#[test]
fn swapped_contents_are_named() {
    let columns = "at_ms, actor, actor_role, action, subject, target, source, outcome, detail, \
                   prev_hash, hash";
    let report = verify_after(&format!(
        "CREATE TEMP TABLE saved AS SELECT * FROM audit_log WHERE seq IN (300, 700);
         UPDATE audit_log SET ({columns}) =
             (SELECT {columns} FROM saved WHERE saved.seq = 1000 - audit_log.seq)
         WHERE seq IN (300, 700);"
    ));
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 300);
    assert_eq!(bad.reason, BadReason::OutOfPlace);
}

#[test]
fn renumbered_entries_are_named() {
    let report = verify_after(&format!(
        "UPDATE audit_log SET seq = 1000000 WHERE seq = {MIDDLE};
         UPDATE audit_log SET seq = {MIDDLE} WHERE seq = {MIDDLE} + 1;
         UPDATE audit_log SET seq = {MIDDLE} + 1 WHERE seq = 1000000;"
    ));
    let bad = first_bad(&report);
    assert_eq!(bad.seq, MIDDLE);
    assert_eq!(bad.reason, BadReason::OutOfPlace);
}

#[test]
fn inserted_forged_entry_is_named() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(
        &connection,
        &format!(
            "UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= {MIDDLE};
             UPDATE audit_log SET seq = seq - 1000000 + 1 WHERE seq >= 1000000;"
        ),
    );
    // The forger uses the documented encoding and chains the new entry correctly to its
    // predecessor, so only the link of the displaced entry after it breaks.
    let forged = forged_entry(&connection, MIDDLE);
    insert_raw(&connection, &forged);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, MIDDLE);
    assert_eq!(bad.reason, BadReason::Inserted);
}

#[test]
fn inserted_first_entry_is_named() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(
        &connection,
        "UPDATE audit_log SET seq = seq + 1000000;
         UPDATE audit_log SET seq = seq - 1000000 + 1;",
    );
    let forged = forged_entry(&connection, 1);
    insert_raw(&connection, &forged);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 1);
    assert_eq!(bad.reason, BadReason::Inserted);
}

#[test]
fn forged_tail_without_rehash_is_named() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    let mut forged = forged_entry(&connection, ENTRIES + 1);
    forged.hash = [0; 32];
    insert_raw(&connection, &forged);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, ENTRIES + 1);
    assert_eq!(bad.reason, BadReason::Altered);
}

/// Documents the limit stated in the crate documentation: a correctly chained entry
/// appended after the latest checkpoint cannot be distinguished from a real one.
#[test]
fn forged_tail_after_checkpoint_is_not_detected() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    let forged = forged_entry(&connection, ENTRIES + 1);
    insert_raw(&connection, &forged);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    assert_eq!(report.first_bad, None);
    assert_eq!(report.entries, ENTRIES + 1);
}

#[test]
fn corrupted_checkpoint_signature_is_named() {
    let report =
        verify_after("UPDATE audit_checkpoints SET signature = zeroblob(64) WHERE upto_seq = 500");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 500);
    let key_id = checkpoint_key().public_key().key_id().to_owned();
    assert_eq!(bad.reason, BadReason::CheckpointBadSignature { key_id });
}

#[test]
fn checkpoint_signed_by_attacker_is_rejected() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    let log_id: String = connection
        .query_row("SELECT log_id FROM audit_log_info", [], |row| row.get(0))
        .expect("log id");
    let real_key_id = checkpoint_key().public_key().key_id().to_owned();
    let attacker_seed = [9u8; 32];
    let attacker = CheckpointKey::from_seed(&attacker_seed);
    let hash = stored_hash(&connection, 500);

    // Signed with the attacker's key but labelled with the real key id.
    let message = medtunnel_audit::checkpoint_message(&log_id, 500, &hash, 1, &real_key_id);
    let mut relabelled = resign(&attacker_seed, &log_id, 500, hash);
    relabelled.key_id = real_key_id.clone();
    relabelled.signature = sign_with(&attacker_seed, &message);
    replace_checkpoint(&connection, &relabelled);
    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 500);
    assert_eq!(
        bad.reason,
        BadReason::CheckpointBadSignature {
            key_id: real_key_id
        }
    );

    // Signed with the attacker's key under its own key id.
    let own = resign(&attacker_seed, &log_id, 500, hash);
    replace_checkpoint(&connection, &own);
    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 500);
    let key_id = attacker.public_key().key_id().to_owned();
    assert_eq!(bad.reason, BadReason::CheckpointUnknownKey { key_id });
}

#[test]
fn consistent_rewrite_is_caught_by_checkpoint() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(
        &connection,
        &format!(
            "UPDATE audit_log SET outcome = 'success' WHERE seq = {MIDDLE};
             UPDATE audit_log SET detail = '{{\"index\":437,\"setting\":\"bolus\"}}'
             WHERE seq = {MIDDLE};"
        ),
    );
    rehash_from(&connection, MIDDLE);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    // The chain itself is consistent again, so the first checkpoint after the rewritten
    // entry is the earliest point where the rewrite shows.
    assert_eq!(bad.seq, 500);
    assert_eq!(
        bad.reason,
        BadReason::CheckpointMismatch { last_good_seq: 400 }
    );
}

#[test]
fn rewrite_from_first_entry_is_caught() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(
        &connection,
        "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 1",
    );
    rehash_from(&connection, 1);

    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, INTERVAL);
    assert_eq!(
        bad.reason,
        BadReason::CheckpointMismatch { last_good_seq: 0 }
    );
}

#[test]
fn changed_log_id_is_named() {
    let report =
        verify_after("UPDATE audit_log_info SET log_id = 'ffffffffffffffffffffffffffffffff'");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 1);
    assert_eq!(bad.reason, BadReason::BrokenLink);
}

#[test]
fn verify_without_trusted_key_fails() {
    let report = verify_file(template(), &[]).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, INTERVAL);
    assert!(matches!(bad.reason, BadReason::CheckpointUnknownKey { .. }));
}

#[test]
fn malformed_column_is_named() {
    let (_dir, path) = fresh_copy();
    let connection = Connection::open(&path).expect("open");
    tamper(
        &connection,
        &format!(
            "CREATE TABLE loose AS SELECT * FROM audit_log;
             DROP TABLE audit_log;
             ALTER TABLE loose RENAME TO audit_log;
             UPDATE audit_log SET hash = 'not a blob' WHERE seq = {MIDDLE};"
        ),
    );
    let report = verify(&connection, &trusted_keys()).expect("verify");
    let bad = first_bad(&report);
    assert_eq!(bad.seq, MIDDLE);
    assert!(matches!(bad.reason, BadReason::Malformed { .. }));
}

/// Builds an entry for `seq` whose `prev_hash` is the stored hash of entry `seq - 1` (or the
/// genesis hash) and whose `hash` is computed correctly.
fn forged_entry(connection: &Connection, seq: u64) -> AuditEntry {
    let prev_hash = if seq == 1 {
        let log_id: String = connection
            .query_row("SELECT log_id FROM audit_log_info", [], |row| row.get(0))
            .expect("log id");
        medtunnel_audit::genesis_hash(&log_id)
    } else {
        stored_hash(connection, seq - 1)
    };
    let new =
        sample_entry(seq).detail(serde_json::json!({ "setting": "bolus_units", "value": 25 }));
    let mut entry = AuditEntry {
        seq,
        at_ms: new.at_ms,
        actor: new.actor,
        actor_role: new.actor_role,
        action: new.action,
        subject: new.subject,
        target: new.target,
        source: new.source,
        outcome: new.outcome,
        detail: new.detail,
        prev_hash,
        hash: [0; 32],
    };
    entry.hash = entry.compute_hash();
    entry
}

fn insert_raw(connection: &Connection, entry: &AuditEntry) {
    common::drop_triggers(connection);
    connection
        .execute(
            "INSERT INTO audit_log (seq, at_ms, actor, actor_role, action, subject, target,
                 source, outcome, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            rusqlite::params![
                entry.seq as i64,
                entry.at_ms,
                entry.actor,
                entry.actor_role,
                entry.action,
                entry.subject,
                entry.target,
                entry.source,
                entry.outcome.as_str(),
                medtunnel_audit::canonical_json(&entry.detail),
                entry.prev_hash.as_slice(),
                entry.hash.as_slice(),
            ],
        )
        .expect("insert forged entry");
}

/// Signs a checkpoint with the key of `key_seed`, under that key's own key id.
fn resign(key_seed: &[u8; 32], log_id: &str, upto_seq: u64, hash: [u8; 32]) -> Checkpoint {
    let key_id = CheckpointKey::from_seed(key_seed)
        .public_key()
        .key_id()
        .to_owned();
    let message = medtunnel_audit::checkpoint_message(log_id, upto_seq, &hash, 1, &key_id);
    Checkpoint {
        upto_seq,
        hash_at_upto: hash,
        at_ms: 1,
        key_id,
        signature: sign_with(key_seed, &message),
    }
}

fn sign_with(key_seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(key_seed)
        .sign(message)
        .to_bytes()
}

fn replace_checkpoint(connection: &Connection, checkpoint: &Checkpoint) {
    common::drop_triggers(connection);
    connection
        .execute(
            "UPDATE audit_checkpoints SET hash_at_upto = ?1, at_ms = ?2, key_id = ?3,
                 signature = ?4
             WHERE upto_seq = ?5",
            rusqlite::params![
                checkpoint.hash_at_upto.as_slice(),
                checkpoint.at_ms,
                checkpoint.key_id,
                checkpoint.signature.as_slice(),
                checkpoint.upto_seq as i64,
            ],
        )
        .expect("replace checkpoint");
}

#[test]
fn appends_from_two_connections_stay_dense() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("cloud.db");
    let interval = NonZeroU64::new(10).expect("nonzero");
    // Creates the tables before the writers race.
    drop(SqliteAuditLog::open(&path).expect("open"));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut log = SqliteAuditLog::open(&path)
                    .expect("open")
                    .with_checkpoints(checkpoint_key(), interval);
                for index in 0..50 {
                    log.append(sample_entry(writer * 1000 + index))
                        .expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let report = verify_file(&path, &trusted_keys()).expect("verify");
    assert_eq!(report.entries, 100);
    assert_eq!(report.checkpoints, 10);
    assert_eq!(report.first_bad, None);
}
