//! Readings with provenance, stored exactly once per (device, sequence number).

use medtunnel_records::CgmMeasurement;
use rusqlite::{params, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::channel::{sequence_from_sql, sequence_to_sql};
use crate::{Store, StoreError};

/// A reading as the gateway received it from an authenticated channel.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingReading {
    /// The device's application sequence number of the message that carried the reading.
    pub seq: u64,
    /// The reading itself.
    pub measurement: CgmMeasurement,
    /// Tunnel key id of the channel that authenticated the message.
    pub key_id: u32,
    /// Time the gateway received the message, in Unix milliseconds.
    pub received_at_ms: i64,
    /// Connection that relayed the message, for example the peer address and a
    /// connection number. The relay is untrusted, so this records only where the bytes
    /// came from.
    pub relay: String,
}

/// A stored reading with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReading {
    /// Device that measured the reading.
    pub device_id: String,
    /// The device's sequence number.
    pub seq: u64,
    /// The reading. A NaN trend is stored as absent, so it reads back as `None`.
    pub measurement: CgmMeasurement,
    /// Device time in Unix seconds: session start plus time offset.
    pub device_time_s: i64,
    /// Tunnel key id of the channel that authenticated the reading.
    pub key_id: u32,
    /// Time the gateway received the reading, in Unix milliseconds.
    pub received_at_ms: i64,
    /// Connection that relayed the reading.
    pub relay: String,
}

/// Result of one [`Store::ingest`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOutcome {
    /// Readings stored by this call.
    pub stored: usize,
    /// Readings ignored because their sequence number was already stored.
    pub duplicates: usize,
    /// Of the duplicates, those whose content differs from the stored reading. The first
    /// stored content is kept.
    pub conflicting_duplicates: usize,
    /// The device's acknowledged sequence number after this call, see
    /// [`crate::ChannelState::rx_acked_seq`].
    pub rx_acked_seq: Option<u64>,
}

const READING_COLUMNS: &str = "device_id, seq, session_start_s, time_offset_s, device_time_s, \
     glucose_mg_dl, trend, quality, status, key_id, received_at_ms, relay";

impl Store {
    /// Stores a batch of readings of one active device in one transaction.
    ///
    /// Idempotent on (device, sequence number): a reading whose sequence number is
    /// already stored is counted as a duplicate and ignored. Readings may arrive out of
    /// order; `rx_acked_seq` advances to the end of the run of consecutive sequence
    /// numbers that starts at 0. When this returns `Ok`, everything is durably committed.
    pub fn ingest(
        &mut self,
        device_id: &str,
        readings: &[IncomingReading],
    ) -> Result<IngestOutcome, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_active(&transaction, device_id)?;

        let mut outcome = IngestOutcome {
            stored: 0,
            duplicates: 0,
            conflicting_duplicates: 0,
            rx_acked_seq: None,
        };
        for reading in readings {
            if insert_reading(&transaction, device_id, reading)? {
                outcome.stored += 1;
                continue;
            }
            outcome.duplicates += 1;
            if !matches_stored(&transaction, device_id, reading)? {
                outcome.conflicting_duplicates += 1;
                tracing::warn!(
                    device_id,
                    seq = reading.seq,
                    "duplicate sequence number with different content; kept the stored reading"
                );
            }
        }
        outcome.rx_acked_seq = advance_acked(&transaction, device_id)?;
        transaction.commit()?;
        Ok(outcome)
    }

    /// Returns a device's readings with device time in `from_s..to_s` (start inclusive, end
    /// exclusive, `None` for no bound), ordered by device time, then sequence number.
    /// Returns an empty list for an unknown device.
    pub fn readings(
        &self,
        device_id: &str,
        from_s: Option<i64>,
        to_s: Option<i64>,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT {READING_COLUMNS} FROM readings
             WHERE device_id = ?1 AND device_time_s >= ?2 AND (?3 IS NULL OR device_time_s < ?3)
             ORDER BY device_time_s, seq"
        ))?;
        let mut rows = statement.query(params![device_id, from_s.unwrap_or(i64::MIN), to_s])?;
        let mut readings = Vec::new();
        while let Some(row) = rows.next()? {
            readings.push(reading_from_row(row)?);
        }
        Ok(readings)
    }

    /// Counts a device's stored readings.
    pub fn reading_count(&self, device_id: &str) -> Result<u64, StoreError> {
        let count: i64 = self.connection.query_row(
            "SELECT count(*) FROM readings WHERE device_id = ?1",
            [device_id],
            |row| row.get(0),
        )?;
        Ok(count.unsigned_abs())
    }

    /// Counts the stored readings of all devices.
    pub fn total_readings(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .connection
            .query_row("SELECT count(*) FROM readings", [], |row| row.get(0))?;
        Ok(count.unsigned_abs())
    }
}

fn check_active(transaction: &Transaction<'_>, device_id: &str) -> Result<(), StoreError> {
    let status: Option<String> = transaction
        .query_row(
            "SELECT status FROM devices WHERE device_id = ?1",
            [device_id],
            |row| row.get(0),
        )
        .optional()?;
    match status.as_deref() {
        Some("active") => Ok(()),
        Some(_) => Err(StoreError::DeviceRevoked(device_id.to_owned())),
        None => Err(StoreError::DeviceNotFound(device_id.to_owned())),
    }
}

/// Inserts a reading unless its sequence number is stored; returns whether it inserted.
fn insert_reading(
    transaction: &Transaction<'_>,
    device_id: &str,
    reading: &IncomingReading,
) -> Result<bool, StoreError> {
    let measurement = &reading.measurement;
    let mut statement = transaction.prepare_cached(&format!(
        "INSERT INTO readings ({READING_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (device_id, seq) DO NOTHING"
    ))?;
    let inserted = statement.execute(params![
        device_id,
        sequence_to_sql(reading.seq)?,
        measurement.session_start_s,
        measurement.time_offset_s,
        measurement.device_time_s(),
        measurement.glucose_mg_dl,
        stored_trend(measurement),
        measurement.quality_percent,
        measurement.status,
        reading.key_id,
        reading.received_at_ms,
        reading.relay,
    ])?;
    Ok(inserted > 0)
}

/// Returns the trend as stored: SQLite turns NaN into NULL, so NaN is stored as absent.
fn stored_trend(measurement: &CgmMeasurement) -> Option<f64> {
    measurement
        .trend_mg_dl_per_min
        .filter(|trend| !trend.is_nan())
        .map(f64::from)
}

/// Compares a duplicate with the stored reading of the same sequence number. Receive
/// time, key id and relay may differ between retransmissions and are not compared.
fn matches_stored(
    transaction: &Transaction<'_>,
    device_id: &str,
    reading: &IncomingReading,
) -> Result<bool, StoreError> {
    let mut statement = transaction.prepare_cached(&format!(
        "SELECT {READING_COLUMNS} FROM readings WHERE device_id = ?1 AND seq = ?2"
    ))?;
    let mut rows = statement.query(params![device_id, sequence_to_sql(reading.seq)?])?;
    let Some(row) = rows.next()? else {
        return Ok(false);
    };
    let stored = reading_from_row(row)?;
    let mut incoming = reading.measurement;
    incoming.trend_mg_dl_per_min = stored_trend(&incoming).map(|trend| trend as f32);
    Ok(stored.measurement == incoming)
}

/// Moves `rx_acked_seq` to the end of the consecutive run from 0 and returns it.
fn advance_acked(
    transaction: &Transaction<'_>,
    device_id: &str,
) -> Result<Option<u64>, StoreError> {
    let acked: Option<i64> = transaction.query_row(
        "SELECT rx_acked_seq FROM channel_state WHERE device_id = ?1",
        [device_id],
        |row| row.get(0),
    )?;
    let mut next = match acked {
        None => Some(0i64),
        Some(seq) => seq.checked_add(1),
    };
    let mut new_acked = acked;
    {
        let mut statement = transaction.prepare_cached(
            "SELECT seq FROM readings WHERE device_id = ?1 AND seq >= ?2 ORDER BY seq",
        )?;
        let mut rows = statement.query(params![device_id, next.unwrap_or(i64::MAX)])?;
        while let (Some(expected), Some(row)) = (next, rows.next()?) {
            let seq: i64 = row.get(0)?;
            if seq != expected {
                break;
            }
            new_acked = Some(seq);
            next = seq.checked_add(1);
        }
    }
    if new_acked != acked {
        transaction.execute(
            "UPDATE channel_state SET rx_acked_seq = ?2 WHERE device_id = ?1",
            params![device_id, new_acked],
        )?;
    }
    new_acked
        .map(|seq| sequence_from_sql(seq, "channel_state.rx_acked_seq"))
        .transpose()
}

fn reading_from_row(row: &Row<'_>) -> Result<StoredReading, StoreError> {
    let trend: Option<f64> = row.get(6)?;
    Ok(StoredReading {
        device_id: row.get(0)?,
        seq: sequence_from_sql(row.get(1)?, "readings.seq")?,
        measurement: CgmMeasurement {
            session_start_s: row.get(2)?,
            time_offset_s: row.get(3)?,
            glucose_mg_dl: row.get(5)?,
            // The value was an f32 when stored, so the conversion back is exact.
            trend_mg_dl_per_min: trend.map(|trend| trend as f32),
            quality_percent: row.get(7)?,
            status: row.get(8)?,
        },
        device_time_s: row.get(4)?,
        key_id: row.get(9)?,
        received_at_ms: row.get(10)?,
        relay: row.get(11)?,
    })
}
