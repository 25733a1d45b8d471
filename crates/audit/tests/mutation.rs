//! Random logs with one random mutation: verification always names the mutated entry.

mod common;

use std::num::NonZeroU64;

use common::{checkpoint_key, stored_hash, tamper};
use medtunnel_audit::{verify, AuditEntry, AuditSink, NewEntry, Outcome, SqliteAuditLog};
use proptest::prelude::*;
use rusqlite::Connection;

/// One change an attacker makes to entry `seq`, given as an index into the log.
#[derive(Clone, Debug)]
enum Mutation {
    /// Sets a column to a different value through `UPDATE`.
    Alter(&'static str),
    /// Deletes the entry (never the last one, whose deletion only a checkpoint catches).
    Delete,
    /// Swaps the sequence numbers of the entry and the next one.
    SwapWithNext,
    /// Inserts a correctly chained forged entry here and renumbers the rest.
    InsertForged,
}

const ALTERATIONS: [&str; 9] = [
    "at_ms = at_ms + 1",
    "actor = actor || 'x'",
    "actor_role = CASE WHEN actor_role IS NULL THEN 'admin' ELSE NULL END",
    "action = action || '_x'",
    "subject = CASE WHEN subject IS NULL THEN 'patient:x' ELSE NULL END",
    "outcome = CASE outcome WHEN 'success' THEN 'failure' ELSE 'success' END",
    "detail = detail || ' '",
    "prev_hash = randomblob(32)",
    "hash = randomblob(32)",
];

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Denied),
        Just(Outcome::Failure)
    ]
}

fn new_entry() -> impl Strategy<Value = NewEntry> {
    (
        any::<i64>(),
        "[a-z]{1,8}:[a-z0-9-]{1,12}",
        "[a-z]{1,8}\\.[a-z_]{1,10}",
        proptest::option::of("[a-z]{1,10}"),
        proptest::option::of("[ -~]{0,16}"),
        outcome(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(at_ms, actor, action, role, subject, outcome, value)| {
            let mut entry = NewEntry::new(at_ms, actor, action, outcome);
            entry.actor_role = role;
            entry.subject = subject;
            if let Some(value) = value {
                entry.detail = serde_json::json!({ "value": value, "kind": "test" });
            }
            entry
        })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..ALTERATIONS.len()).prop_map(|index| Mutation::Alter(ALTERATIONS[index])),
        Just(Mutation::Delete),
        Just(Mutation::SwapWithNext),
        Just(Mutation::InsertForged),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn single_mutation_is_named(
        entries in proptest::collection::vec(new_entry(), 2..30),
        interval in proptest::option::of(1u64..8),
        position in any::<proptest::sample::Index>(),
        mutation in mutation(),
    ) {
        let connection = Connection::open_in_memory().expect("memory");
        let mut log = SqliteAuditLog::from_connection(connection).expect("log");
        if let Some(interval) = interval {
            let interval = NonZeroU64::new(interval).expect("nonzero");
            log = log.with_checkpoints(checkpoint_key(), interval);
        }
        for entry in entries.iter().cloned() {
            log.append(entry).expect("append");
        }
        let count = entries.len() as u64;
        // Every mutation below needs an entry after the mutated one.
        let seq = position.index(entries.len() - 1) as u64 + 1;
        prop_assert!(seq < count);

        apply(log.connection(), &mutation, seq);

        let keys = [checkpoint_key().public_key().clone()];
        let report = verify(log.connection(), &keys).expect("verify");
        let bad = report.first_bad.expect("mutation was not detected");
        prop_assert_eq!(bad.seq, seq, "{:?}: {}", mutation, bad.reason);
    }
}

fn apply(connection: &Connection, mutation: &Mutation, seq: u64) {
    match mutation {
        Mutation::Alter(assignment) => tamper(
            connection,
            &format!("UPDATE audit_log SET {assignment} WHERE seq = {seq}"),
        ),
        Mutation::Delete => tamper(
            connection,
            &format!("DELETE FROM audit_log WHERE seq = {seq}"),
        ),
        Mutation::SwapWithNext => tamper(
            connection,
            &format!(
                "UPDATE audit_log SET seq = 1000000 WHERE seq = {seq};
                 UPDATE audit_log SET seq = {seq} WHERE seq = {seq} + 1;
                 UPDATE audit_log SET seq = {seq} + 1 WHERE seq = 1000000;"
            ),
        ),
        Mutation::InsertForged => insert_forged(connection, seq),
    }
}

fn insert_forged(connection: &Connection, seq: u64) {
    let prev_hash = if seq == 1 {
        let log_id: String = connection
            .query_row("SELECT log_id FROM audit_log_info", [], |row| row.get(0))
            .expect("log id");
        medtunnel_audit::genesis_hash(&log_id)
    } else {
        stored_hash(connection, seq - 1)
    };
    let mut forged = AuditEntry {
        seq,
        at_ms: 0,
        actor: "user:mallory".into(),
        actor_role: None,
        action: "command.sign".into(),
        subject: None,
        target: None,
        source: None,
        outcome: Outcome::Success,
        detail: serde_json::Value::Null,
        prev_hash,
        hash: [0; 32],
    };
    forged.hash = forged.compute_hash();
    tamper(
        connection,
        &format!(
            "UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= {seq};
             UPDATE audit_log SET seq = seq - 1000000 + 1 WHERE seq >= 1000000;"
        ),
    );
    connection
        .execute(
            "INSERT INTO audit_log (seq, at_ms, actor, actor_role, action, subject, target,
                 source, outcome, detail, prev_hash, hash)
             VALUES (?1, 0, 'user:mallory', NULL, 'command.sign', NULL, NULL, NULL,
                     'success', 'null', ?2, ?3)",
            rusqlite::params![
                seq as i64,
                forged.prev_hash.as_slice(),
                forged.hash.as_slice()
            ],
        )
        .expect("insert forged entry");
}
