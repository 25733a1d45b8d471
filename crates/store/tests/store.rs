//! Store behavior against real SQLite files in a temporary directory.

use medtunnel_proto::crypto::{PublicKey, SymmetricKey};
use medtunnel_records::CgmMeasurement;
use medtunnel_store::{
    DeviceModel, DeviceStatus, IncomingReading, IngestOutcome, NewDevice, Store, StoreError,
};
use tempfile::TempDir;

const CLOUD_KEY_ID: u32 = 1;

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path().join("cloud.sqlite")).expect("open store")
}

fn new_store() -> (TempDir, Store) {
    let dir = TempDir::new().expect("temporary directory");
    let mut store = open(&dir);
    store
        .register_cloud_key(CLOUD_KEY_ID, &PublicKey::from_bytes([9; 32]))
        .expect("register cloud key");
    (dir, store)
}

fn device(device_id: &str, key_id: u32) -> NewDevice {
    NewDevice {
        device_id: device_id.to_owned(),
        model: DeviceModel::Cgm,
        key_id,
        static_public: PublicKey::from_bytes([key_id as u8; 32]),
        psk: SymmetricKey::from_bytes([0x5A; 32]),
        cloud_key_id: CLOUD_KEY_ID,
    }
}

fn reading(seq: u64) -> IncomingReading {
    IncomingReading {
        seq,
        measurement: CgmMeasurement {
            session_start_s: 1_433_609_427,
            time_offset_s: 300 * seq as u32,
            glucose_mg_dl: 100 + seq as u16,
            trend_mg_dl_per_min: Some(-0.5),
            quality_percent: Some(95),
            status: 0,
        },
        key_id: 7,
        received_at_ms: 1_700_000_000_000 + seq as i64,
        relay: "127.0.0.1:40000#1".to_owned(),
    }
}

fn store_with_device() -> (TempDir, Store) {
    let (dir, mut store) = new_store();
    store
        .register_device(&device("cgm-0001", 7))
        .expect("register");
    (dir, store)
}

#[test]
fn open_sets_wal_and_schema_version() {
    let (dir, store) = new_store();
    assert_eq!(store.schema_version().expect("version"), 1);
    let raw = rusqlite_connection(&dir.path().join("cloud.sqlite"));
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    drop(raw);
    drop(store);
    let reopened = open(&dir);
    assert_eq!(reopened.schema_version().expect("version"), 1);
}

#[test]
fn same_batch_three_times_is_stored_once() {
    let (_dir, mut store) = store_with_device();
    let batch: Vec<_> = (0..5).map(reading).collect();

    let first = store.ingest("cgm-0001", &batch).expect("ingest");
    assert_eq!(
        first,
        IngestOutcome {
            stored: 5,
            duplicates: 0,
            conflicting_duplicates: 0,
            rx_acked_seq: Some(4),
        }
    );
    for _ in 0..2 {
        let again = store.ingest("cgm-0001", &batch).expect("ingest");
        assert_eq!(again.stored, 0);
        assert_eq!(again.duplicates, 5);
        assert_eq!(again.conflicting_duplicates, 0);
        assert_eq!(again.rx_acked_seq, Some(4));
    }
    assert_eq!(store.reading_count("cgm-0001").expect("count"), 5);
    assert_eq!(store.total_readings().expect("count"), 5);
}

#[test]
fn duplicate_in_one_batch_is_counted() {
    let (_dir, mut store) = store_with_device();
    let outcome = store
        .ingest("cgm-0001", &[reading(0), reading(0), reading(1)])
        .expect("ingest");
    assert_eq!(outcome.stored, 2);
    assert_eq!(outcome.duplicates, 1);
}

#[test]
fn conflicting_duplicate_keeps_first_content() {
    let (_dir, mut store) = store_with_device();
    store.ingest("cgm-0001", &[reading(0)]).expect("ingest");
    let mut changed = reading(0);
    changed.measurement.glucose_mg_dl = 250;
    let outcome = store.ingest("cgm-0001", &[changed]).expect("ingest");
    assert_eq!(outcome.duplicates, 1);
    assert_eq!(outcome.conflicting_duplicates, 1);
    let stored = store.readings("cgm-0001", None, None).expect("readings");
    assert_eq!(stored[0].measurement.glucose_mg_dl, 100);
}

#[test]
fn retransmission_with_new_relay_is_not_a_conflict() {
    let (_dir, mut store) = store_with_device();
    store.ingest("cgm-0001", &[reading(0)]).expect("ingest");
    let mut resent = reading(0);
    resent.relay = "10.0.0.2:5000#9".to_owned();
    resent.received_at_ms += 60_000;
    let outcome = store.ingest("cgm-0001", &[resent]).expect("ingest");
    assert_eq!(outcome.conflicting_duplicates, 0);
    let stored = store.readings("cgm-0001", None, None).expect("readings");
    assert_eq!(stored[0].relay, "127.0.0.1:40000#1");
}

#[test]
fn rx_acked_seq_stops_at_gap() {
    let (_dir, mut store) = store_with_device();

    let outcome = store
        .ingest("cgm-0001", &[reading(1), reading(2)])
        .expect("ingest");
    assert_eq!(outcome.stored, 2);
    assert_eq!(outcome.rx_acked_seq, None);

    let outcome = store
        .ingest("cgm-0001", &[reading(0), reading(4)])
        .expect("ingest");
    assert_eq!(outcome.rx_acked_seq, Some(2));

    let outcome = store.ingest("cgm-0001", &[reading(3)]).expect("ingest");
    assert_eq!(outcome.rx_acked_seq, Some(4));
    assert_eq!(
        store.channel_state("cgm-0001").expect("state").rx_acked_seq,
        Some(4)
    );
}

#[test]
fn state_and_readings_survive_reopen() {
    let (dir, mut store) = store_with_device();
    store
        .ingest("cgm-0001", &[reading(0), reading(1), reading(3)])
        .expect("ingest");
    assert!(store
        .record_initiation_counter("cgm-0001", 12)
        .expect("counter"));
    assert!(store.record_tx_next_seq("cgm-0001", 8).expect("tx"));
    drop(store);

    let mut store = open(&dir);
    let state = store.channel_state("cgm-0001").expect("state");
    assert_eq!(state.last_initiation_counter, Some(12));
    assert_eq!(state.rx_acked_seq, Some(1));
    assert_eq!(state.tx_next_seq, 8);
    assert_eq!(store.reading_count("cgm-0001").expect("count"), 3);

    let readings = store.readings("cgm-0001", None, None).expect("readings");
    assert_eq!(readings.len(), 3);
    assert_eq!(readings[2].seq, 3);
    assert_eq!(readings[2].measurement, reading(3).measurement);
    assert_eq!(readings[2].device_time_s, 1_433_609_427 + 900);
    assert_eq!(readings[2].key_id, 7);
    assert_eq!(readings[2].received_at_ms, 1_700_000_000_003);
    assert_eq!(readings[2].relay, "127.0.0.1:40000#1");

    let outcome = store.ingest("cgm-0001", &[reading(2)]).expect("ingest");
    assert_eq!(outcome.rx_acked_seq, Some(3));
}

#[test]
fn readings_filter_by_device_time() {
    let (_dir, mut store) = store_with_device();
    let batch: Vec<_> = (0..6).map(reading).collect();
    store.ingest("cgm-0001", &batch).expect("ingest");
    let start = 1_433_609_427;

    let middle = store
        .readings("cgm-0001", Some(start + 300), Some(start + 1200))
        .expect("readings");
    let seqs: Vec<u64> = middle.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);

    let tail = store
        .readings("cgm-0001", Some(start + 1200), None)
        .expect("readings");
    assert_eq!(tail.len(), 2);
    assert!(store
        .readings("other", None, None)
        .expect("readings")
        .is_empty());
}

#[test]
fn readings_order_by_device_time_then_seq() {
    let (_dir, mut store) = store_with_device();
    let mut late = reading(0);
    late.measurement.time_offset_s = 10_000;
    store
        .ingest("cgm-0001", &[late, reading(1), reading(2)])
        .expect("ingest");
    let seqs: Vec<u64> = store
        .readings("cgm-0001", None, None)
        .expect("readings")
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 0]);
}

#[test]
fn nan_trend_reads_back_as_absent() {
    let (_dir, mut store) = store_with_device();
    let mut nan = reading(0);
    nan.measurement.trend_mg_dl_per_min = Some(f32::NAN);
    store.ingest("cgm-0001", &[nan.clone()]).expect("ingest");
    let outcome = store.ingest("cgm-0001", &[nan]).expect("ingest");
    assert_eq!(outcome.conflicting_duplicates, 0);
    let stored = store.readings("cgm-0001", None, None).expect("readings");
    assert_eq!(stored[0].measurement.trend_mg_dl_per_min, None);
}

#[test]
fn initiation_counter_must_increase() {
    let (_dir, mut store) = store_with_device();
    assert_eq!(
        store
            .channel_state("cgm-0001")
            .expect("state")
            .last_initiation_counter,
        None
    );
    assert!(store.record_initiation_counter("cgm-0001", 0).expect("cas"));
    assert!(!store.record_initiation_counter("cgm-0001", 0).expect("cas"));
    assert!(store.record_initiation_counter("cgm-0001", 5).expect("cas"));
    assert!(!store.record_initiation_counter("cgm-0001", 4).expect("cas"));
    assert!(!store.record_initiation_counter("cgm-0001", 5).expect("cas"));
    assert!(store
        .record_initiation_counter("cgm-0001", u32::MAX)
        .expect("cas"));
    assert_eq!(
        store
            .channel_state("cgm-0001")
            .expect("state")
            .last_initiation_counter,
        Some(u32::MAX)
    );
    assert!(matches!(
        store.record_initiation_counter("nobody", 1),
        Err(StoreError::DeviceNotFound(_))
    ));
}

#[test]
fn tx_next_seq_never_decreases() {
    let (_dir, mut store) = store_with_device();
    assert!(store.record_tx_next_seq("cgm-0001", 3).expect("tx"));
    assert!(!store.record_tx_next_seq("cgm-0001", 2).expect("tx"));
    assert_eq!(
        store.channel_state("cgm-0001").expect("state").tx_next_seq,
        3
    );
    assert!(matches!(
        store.record_tx_next_seq("cgm-0001", u64::MAX),
        Err(StoreError::SequenceTooLarge(u64::MAX))
    ));
}

#[test]
fn revoked_device_cannot_ingest() {
    let (_dir, mut store) = store_with_device();
    store.ingest("cgm-0001", &[reading(0)]).expect("ingest");
    store.revoke_device("cgm-0001").expect("revoke");
    store
        .revoke_device("cgm-0001")
        .expect("revoking twice is accepted");

    let record = store
        .device("cgm-0001")
        .expect("query")
        .expect("still listed");
    assert_eq!(record.status, DeviceStatus::Revoked);
    assert!(!record.is_active());
    let by_key = store
        .device_by_key_id(7)
        .expect("query")
        .expect("still listed");
    assert_eq!(by_key.status, DeviceStatus::Revoked);
    assert!(matches!(
        store.ingest("cgm-0001", &[reading(1)]),
        Err(StoreError::DeviceRevoked(_))
    ));
    assert_eq!(store.reading_count("cgm-0001").expect("count"), 1);
    assert!(matches!(
        store.revoke_device("nobody"),
        Err(StoreError::DeviceNotFound(_))
    ));
}

#[test]
fn registry_rejects_conflicts() {
    let (_dir, mut store) = store_with_device();
    assert!(matches!(
        store.register_device(&device("cgm-0001", 8)),
        Err(StoreError::DeviceExists(_))
    ));
    assert!(matches!(
        store.register_device(&device("cgm-0002", 7)),
        Err(StoreError::KeyIdInUse { key_id: 7, .. })
    ));
    let mut unknown_cloud = device("cgm-0003", 9);
    unknown_cloud.cloud_key_id = 99;
    assert!(matches!(
        store.register_device(&unknown_cloud),
        Err(StoreError::CloudKeyNotFound(99))
    ));
    for bad in [
        "",
        "../etc",
        ".hidden",
        "a/b",
        "white space",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(
                store.register_device(&device(bad, 10)),
                Err(StoreError::InvalidDeviceId(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.ingest("nobody", &[reading(0)]),
        Err(StoreError::DeviceNotFound(_))
    ));
    assert!(matches!(
        store.register_cloud_key(CLOUD_KEY_ID, &PublicKey::from_bytes([1; 32])),
        Err(StoreError::CloudKeyConflict(CLOUD_KEY_ID))
    ));
}

#[test]
fn device_lookup_returns_keys() {
    let (_dir, mut store) = store_with_device();
    store
        .register_device(&device("cgm-0000", 3))
        .expect("register");
    let record = store.device_by_key_id(7).expect("query").expect("found");
    assert_eq!(record.device_id, "cgm-0001");
    assert_eq!(record.model, DeviceModel::Cgm);
    assert_eq!(record.static_public, PublicKey::from_bytes([7; 32]));
    assert_eq!(record.psk.expose_secret(), &[0x5A; 32]);
    assert_eq!(record.cloud_key_id, CLOUD_KEY_ID);
    assert!(record.is_active());
    assert!(store.device_by_key_id(8).expect("query").is_none());

    let debug = format!("{record:?}");
    assert!(
        !debug.contains("5a, 5a") && !debug.contains("90, 90"),
        "{debug}"
    );

    let ids: Vec<String> = store
        .list_devices()
        .expect("list")
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(ids, ["cgm-0000", "cgm-0001"]);
}

#[test]
fn newer_schema_is_rejected() {
    let dir = TempDir::new().expect("temporary directory");
    let path = dir.path().join("cloud.sqlite");
    drop(Store::open(&path).expect("create"));
    let connection = rusqlite_connection(&path);
    connection
        .execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (99, 0)",
            [],
        )
        .expect("insert");
    drop(connection);
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::SchemaTooNew {
            found: 99,
            supported: 1
        })
    ));
}

fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw connection")
}
