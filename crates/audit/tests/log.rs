//! Appends, checkpoints, the append-only triggers and the FHIR export.

mod common;

use std::num::NonZeroU64;

use common::{checkpoint_key, sample_entry};
use medtunnel_audit::{
    genesis_hash, read_checkpoints, to_fhir_audit_event, to_fhir_bundle, verify, AuditError,
    AuditSink, BadReason, NewEntry, Outcome, SqliteAuditLog,
};
use rusqlite::Connection;

fn open_file_log(dir: &tempfile::TempDir) -> SqliteAuditLog {
    let interval = NonZeroU64::new(5).expect("nonzero");
    SqliteAuditLog::open(dir.path().join("cloud.db"))
        .expect("open")
        .with_checkpoints(checkpoint_key(), interval)
}

#[test]
fn append_chains_entries() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    let first = log.append(sample_entry(0)).expect("append");
    let second = log.append(sample_entry(1)).expect("append");

    assert_eq!(first.seq, 1);
    assert_eq!(second.seq, 2);
    assert_eq!(first.prev_hash, genesis_hash(log.log_id()));
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(first.hash, first.compute_hash());
    assert_eq!(log.head().expect("head"), (2, second.hash));
    assert_eq!(log.entries(1, 2).expect("entries"), vec![first, second]);
}

#[test]
fn log_id_survives_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log_id = open_file_log(&dir).log_id().to_owned();
    assert_eq!(log_id.len(), 32);
    assert_eq!(open_file_log(&dir).log_id(), log_id);
}

#[test]
fn checkpoints_follow_interval() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    common::append_samples(&mut log, 12);
    let checkpoints = log.checkpoints().expect("checkpoints");
    let seqs: Vec<u64> = checkpoints
        .iter()
        .map(|checkpoint| checkpoint.upto_seq)
        .collect();
    assert_eq!(seqs, vec![5, 10]);
    let public = checkpoint_key().public_key().clone();
    assert!(checkpoints[0].signature_is_valid(&public, log.log_id()));
    assert!(!checkpoints[0].signature_is_valid(&public, "another-log"));
}

#[test]
fn on_demand_checkpoint_covers_head() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    let empty = log.checkpoint(7).expect("checkpoint of the empty log");
    assert_eq!(empty.upto_seq, 0);
    assert_eq!(empty.hash_at_upto, genesis_hash(log.log_id()));

    common::append_samples(&mut log, 3);
    let checkpoint = log.checkpoint(8).expect("checkpoint");
    assert_eq!(checkpoint.upto_seq, 3);
    assert_eq!(checkpoint.hash_at_upto, log.head().expect("head").1);
    let again = log.checkpoint(9).expect("checkpoint");
    assert_eq!(
        again, checkpoint,
        "an unchanged head reuses the latest checkpoint"
    );

    let report =
        verify(log.connection(), &[checkpoint_key().public_key().clone()]).expect("verify");
    assert_eq!(report.checkpoints, 2);
    assert!(report.is_intact());
}

#[test]
fn checkpoint_needs_key() {
    let mut log = SqliteAuditLog::from_connection(Connection::open_in_memory().expect("memory"))
        .expect("log");
    assert!(matches!(
        log.checkpoint(0),
        Err(AuditError::NoCheckpointKey)
    ));
}

#[test]
fn empty_log_checkpoint_catches_total_deletion() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    common::append_samples(&mut log, 3);
    log.checkpoint(1).expect("checkpoint");
    common::tamper(log.connection(), "DELETE FROM audit_log");

    let report =
        verify(log.connection(), &[checkpoint_key().public_key().clone()]).expect("verify");
    let bad = report.first_bad.expect("deletion was not detected");
    assert_eq!(bad.seq, 1);
    assert_eq!(bad.reason, BadReason::Truncated { checkpoint_seq: 3 });
}

#[test]
fn invalid_entry_is_rejected_before_storage() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    let error = log
        .append(NewEntry::new(0, "", "command.request", Outcome::Success))
        .expect_err("empty actor accepted");
    assert!(matches!(
        error,
        AuditError::InvalidField { field: "actor", .. }
    ));
    assert_eq!(log.head().expect("head").0, 0);
}

#[test]
fn triggers_reject_update_and_delete() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    common::append_samples(&mut log, 5);
    let connection = Connection::open(dir.path().join("cloud.db")).expect("open");

    let statements = [
        "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 5",
        "UPDATE audit_checkpoints SET at_ms = 0",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_log_info SET log_id = 'other'",
        "DELETE FROM audit_log_info",
        "INSERT OR REPLACE INTO audit_log
             SELECT seq, at_ms, 'user:mallory', actor_role, action, subject, target, source,
                    outcome, detail, prev_hash, hash
             FROM audit_log WHERE seq = 3",
        "INSERT INTO audit_log SELECT seq + 10, at_ms, actor, actor_role, action, subject,
             target, source, outcome, detail, prev_hash, hash FROM audit_log WHERE seq = 5",
        "INSERT INTO audit_checkpoints
             SELECT upto_seq - 1, hash_at_upto, at_ms, key_id, signature FROM audit_checkpoints",
    ];
    for sql in statements {
        let error = connection.execute(sql, []).expect_err(sql);
        let message = error.to_string();
        assert!(
            message.contains("append-only")
                || message.contains("immutable")
                || message.contains("accepts only"),
            "{sql}: {message}"
        );
    }
    let report = verify(&connection, &[checkpoint_key().public_key().clone()]).expect("verify");
    assert!(report.is_intact());
    assert_eq!(report.entries, 5);
}

#[test]
fn fhir_audit_event_shape() {
    let mut log = SqliteAuditLog::from_connection(Connection::open_in_memory().expect("memory"))
        .expect("log");
    let entry = log
        .append(
            NewEntry::new(
                1_709_280_900_250,
                "user:dr-bob",
                "command.decision",
                Outcome::Denied,
            )
            .actor_role("clinician")
            .subject("patient:p-0042")
            .target("cmd-17")
            .source("192.0.2.10")
            .detail(serde_json::json!({ "rule": "max_bolus", "limit_units": 10 })),
        )
        .expect("append");
    let event = to_fhir_audit_event(&entry);

    assert_eq!(event["resourceType"], "AuditEvent");
    assert_eq!(event["id"], "audit-1");
    assert_eq!(
        event["type"]["system"],
        "http://terminology.hl7.org/CodeSystem/audit-event-type"
    );
    assert_eq!(event["type"]["code"], "rest");
    assert_eq!(event["subtype"][0]["code"], "command.decision");
    assert_eq!(event["action"], "E");
    assert_eq!(event["recorded"], "2024-03-01T08:15:00.250Z");
    assert_eq!(event["outcome"], "4");
    assert_eq!(event["outcomeDesc"], "denied");
    assert_eq!(
        event["agent"][0]["who"]["identifier"]["value"],
        "user:dr-bob"
    );
    assert_eq!(event["agent"][0]["requestor"], true);
    assert_eq!(event["agent"][0]["role"][0]["text"], "clinician");
    assert_eq!(event["agent"][0]["network"]["address"], "192.0.2.10");
    assert_eq!(event["agent"][0]["network"]["type"], "2");
    assert_eq!(event["source"]["observer"]["display"], "medtunnel cloud");
    assert_eq!(
        event["entity"][0]["what"]["identifier"]["value"],
        "patient:p-0042"
    );
    assert_eq!(event["entity"][1]["what"]["identifier"]["value"], "cmd-17");
    assert_eq!(
        event["entity"][2]["detail"][0]["valueString"],
        r#"{"limit_units":10,"rule":"max_bolus"}"#
    );
    assert_eq!(
        event["extension"][0]["valueString"],
        hex::encode(entry.hash)
    );
}

#[test]
fn fhir_types_and_outcomes() {
    let cases = [
        ("auth.sign_in", Outcome::Success, "110114", "E", "0"),
        ("access.read", Outcome::Success, "110110", "R", "0"),
        ("command.request", Outcome::Failure, "rest", "C", "8"),
    ];
    for (action, outcome, type_code, action_code, outcome_code) in cases {
        let mut log =
            SqliteAuditLog::from_connection(Connection::open_in_memory().expect("memory"))
                .expect("log");
        let entry = log
            .append(NewEntry::new(0, "user:alice", action, outcome))
            .expect("append");
        let event = to_fhir_audit_event(&entry);
        assert_eq!(event["type"]["code"], type_code, "{action}");
        assert_eq!(event["action"], action_code, "{action}");
        assert_eq!(event["outcome"], outcome_code, "{action}");
        assert!(event.get("entity").is_none(), "{action}");
        assert!(event["agent"][0].get("network").is_none(), "{action}");
    }
}

#[test]
fn fhir_bundle_keeps_order() {
    let mut log = SqliteAuditLog::from_connection(Connection::open_in_memory().expect("memory"))
        .expect("log");
    common::append_samples(&mut log, 4);
    let bundle = to_fhir_bundle(&log.entries(2, 3).expect("entries"));
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let entries = bundle["entry"].as_array().expect("entry array");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["resource"]["id"], "audit-2");
    assert_eq!(entries[1]["resource"]["id"], "audit-3");
}

#[test]
fn read_checkpoints_on_plain_connection() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut log = open_file_log(&dir);
    common::append_samples(&mut log, 10);
    let connection = Connection::open(dir.path().join("cloud.db")).expect("open");
    assert_eq!(read_checkpoints(&connection).expect("checkpoints").len(), 2);
}
