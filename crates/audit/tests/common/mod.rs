//! Shared fixtures: logs with realistic entries, and tampering through raw SQL after
//! dropping the triggers, as an attacker with write access to the file would.

#![allow(dead_code)]

use medtunnel_audit::{AuditSink, CheckpointKey, NewEntry, Outcome, SqliteAuditLog};
use rusqlite::Connection;

/// Seed of the checkpoint key used by the fixtures.
pub const KEY_SEED: [u8; 32] = [42; 32];

/// Returns the fixtures' checkpoint key.
pub fn checkpoint_key() -> CheckpointKey {
    CheckpointKey::from_seed(&KEY_SEED)
}

/// Builds realistic entry number `index`, cycling through the command life cycle, with every
/// optional field set so that each can be altered.
pub fn sample_entry(index: u64) -> NewEntry {
    const ACTIONS: [(&str, &str, Outcome); 6] = [
        ("command.request", "user:alice", Outcome::Success),
        ("command.decision", "policy", Outcome::Denied),
        ("command.sign", "gateway", Outcome::Success),
        ("command.deliver", "gateway", Outcome::Failure),
        ("command.ack", "device:pump-0001", Outcome::Success),
        ("access.read", "user:dr-bob", Outcome::Success),
    ];
    let (action, actor, outcome) = ACTIONS[(index % 6) as usize];
    NewEntry::new(
        1_709_280_900_000 + index as i64 * 1000,
        actor,
        action,
        outcome,
    )
    .actor_role("clinician")
    .subject("patient:p-0042")
    .target(format!("cmd-{}", index / 6))
    .source("192.0.2.10")
    .detail(serde_json::json!({ "setting": "basal_rate", "index": index }))
}

/// Appends `count` sample entries to `log`.
pub fn append_samples(log: &mut SqliteAuditLog, count: u64) {
    for index in 0..count {
        log.append(sample_entry(index)).expect("append");
    }
}

/// Drops every trigger on the audit tables.
pub fn drop_triggers(connection: &Connection) {
    let names: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("trigger names");
    for name in names {
        connection
            .execute_batch(&format!("DROP TRIGGER {name}"))
            .expect("drop trigger");
    }
}

/// Runs `sql` with the triggers dropped.
pub fn tamper(connection: &Connection, sql: &str) {
    drop_triggers(connection);
    connection.execute_batch(sql).expect("tampering SQL");
}

/// Reads the stored hash of entry `seq`.
pub fn stored_hash(connection: &Connection, seq: u64) -> [u8; 32] {
    let bytes: Vec<u8> = connection
        .query_row(
            "SELECT hash FROM audit_log WHERE seq = ?1",
            [seq as i64],
            |row| row.get(0),
        )
        .expect("hash");
    bytes.try_into().expect("32 bytes")
}

/// Recomputes and stores the hash of every entry from `from_seq` on, so that the chain
/// is consistent again, as an attacker who has read the encoding would.
pub fn rehash_from(connection: &Connection, from_seq: u64) {
    drop_triggers(connection);
    let last: i64 = connection
        .query_row("SELECT max(seq) FROM audit_log", [], |row| row.get(0))
        .expect("max seq");
    let mut prev_hash = if from_seq == 1 {
        let log_id: String = connection
            .query_row("SELECT log_id FROM audit_log_info", [], |row| row.get(0))
            .expect("log id");
        medtunnel_audit::genesis_hash(&log_id)
    } else {
        stored_hash(connection, from_seq - 1)
    };
    for seq in from_seq..=last as u64 {
        let mut entry = medtunnel_audit::read_entries(connection, seq, seq)
            .expect("read")
            .pop()
            .expect("entry");
        entry.prev_hash = prev_hash;
        entry.hash = entry.compute_hash();
        connection
            .execute(
                "UPDATE audit_log SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
                rusqlite::params![
                    entry.prev_hash.as_slice(),
                    entry.hash.as_slice(),
                    seq as i64
                ],
            )
            .expect("rehash");
        prev_hash = entry.hash;
    }
}
