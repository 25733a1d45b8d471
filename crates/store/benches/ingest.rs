//! Ingest rate of the store: 10,000 CGM readings into an SQLite file in a temporary
//! directory, committed in batches of 1 and of 100. Each batch is one durable transaction
//! (WAL, `synchronous=FULL`), so the rate depends mostly on the disk's fsync latency.
//!
//! Run with `cargo bench -p medtunnel-store --bench ingest`.

use std::time::Instant;

use medtunnel_proto::crypto::{PublicKey, SymmetricKey};
use medtunnel_records::CgmMeasurement;
use medtunnel_store::{DeviceModel, IncomingReading, NewDevice, Store};

const READINGS: u64 = 10_000;

fn main() {
    for batch_size in [1usize, 100] {
        match run(batch_size) {
            Ok(rate) => println!("ingest batch_size={batch_size:<4} {rate:>10.0} readings/s"),
            Err(error) => {
                eprintln!("ingest benchmark with batch size {batch_size} failed: {error}");
                std::process::exit(1);
            }
        }
    }
}

/// Returns readings per second for one run on a fresh database.
fn run(batch_size: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::TempDir::new()?;
    let mut store = Store::open(dir.path().join("bench.sqlite"))?;
    store.register_cloud_key(1, &PublicKey::from_bytes([1; 32]))?;
    store.register_device(&NewDevice {
        device_id: "bench-0001".to_owned(),
        model: DeviceModel::Cgm,
        key_id: 1,
        static_public: PublicKey::from_bytes([2; 32]),
        psk: SymmetricKey::from_bytes([3; 32]),
        cloud_key_id: 1,
    })?;

    let readings: Vec<IncomingReading> = (0..READINGS).map(reading).collect();
    let started = Instant::now();
    for batch in readings.chunks(batch_size) {
        store.ingest("bench-0001", batch)?;
    }
    let elapsed = started.elapsed();

    if store.reading_count("bench-0001")? != READINGS {
        return Err("not every reading was stored".into());
    }
    Ok(READINGS as f64 / elapsed.as_secs_f64())
}

fn reading(seq: u64) -> IncomingReading {
    IncomingReading {
        seq,
        measurement: CgmMeasurement {
            session_start_s: 1_700_000_000,
            time_offset_s: (seq * 300) as u32,
            glucose_mg_dl: 80 + (seq % 200) as u16,
            trend_mg_dl_per_min: Some(0.5),
            quality_percent: Some(98),
            status: 0,
        },
        key_id: 1,
        received_at_ms: 1_700_000_000_000 + seq as i64,
        relay: "127.0.0.1:40000#1".to_owned(),
    }
}
