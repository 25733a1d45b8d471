//! Sequence numbers that will never be stored as readings, so the acknowledgement moves
//! past them: ranges the device declared lost, and single messages the gateway rejected
//! after they authenticated (a malformed or unsupported record).
//!
//! The table is created on first use with `CREATE TABLE IF NOT EXISTS`, so databases of
//! schema version 1 gain it without a migration.

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use crate::channel::{sequence_from_sql, sequence_to_sql};
use crate::{now_ms, Store, StoreError};

const CREATE_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS skipped_sequences (
        device_id      TEXT NOT NULL REFERENCES devices (device_id),
        from_seq       INTEGER NOT NULL CHECK (from_seq >= 0),
        to_seq         INTEGER NOT NULL CHECK (to_seq > from_seq),
        reason         TEXT NOT NULL CHECK (reason IN ('lost', 'rejected')),
        recorded_at_ms INTEGER NOT NULL,
        PRIMARY KEY (device_id, from_seq, to_seq)
    ) STRICT, WITHOUT ROWID;
";

/// Reason a range of sequence numbers has no readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The device gave the messages up, for example after a reboot that lost its queue.
    Lost,
    /// The message authenticated but its record was malformed or of an unsupported type.
    Rejected,
}

impl SkipReason {
    fn as_str(self) -> &'static str {
        match self {
            SkipReason::Lost => "lost",
            SkipReason::Rejected => "rejected",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "lost" => Some(SkipReason::Lost),
            "rejected" => Some(SkipReason::Rejected),
            _ => None,
        }
    }
}

/// A recorded range of sequence numbers without readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedRange {
    /// First sequence number of the range.
    pub from: u64,
    /// One past the last sequence number of the range.
    pub to: u64,
    /// Reason the range has no readings.
    pub reason: SkipReason,
}

impl Store {
    /// Records durably that the device gave up its messages `from..to`, and moves
    /// `rx_acked_seq` past them when every sequence number below `from` is stored or
    /// skipped. Returns `rx_acked_seq` after the call. An empty range records nothing.
    ///
    /// NOTE: [`Store::ingest`] does not read skipped ranges, so a range recorded while
    /// sequence numbers below it are still missing is passed only by the next call of
    /// this method or [`Store::record_rejected`]. The gateway records ranges in sequence
    /// order, as the channel reports them, so this does not arise there.
    pub fn record_lost(
        &mut self,
        device_id: &str,
        from: u64,
        to: u64,
    ) -> Result<Option<u64>, StoreError> {
        self.record_skipped(device_id, from, to, SkipReason::Lost)
    }

    /// Records durably that the message `seq` authenticated but was rejected, so it is
    /// acknowledged and never stored, and moves `rx_acked_seq` as [`Store::record_lost`]
    /// does.
    pub fn record_rejected(
        &mut self,
        device_id: &str,
        seq: u64,
    ) -> Result<Option<u64>, StoreError> {
        let to = seq
            .checked_add(1)
            .ok_or(StoreError::SequenceTooLarge(seq))?;
        self.record_skipped(device_id, seq, to, SkipReason::Rejected)
    }

    /// Returns a device's skipped ranges ordered by their first sequence number.
    pub fn skipped_ranges(&self, device_id: &str) -> Result<Vec<SkippedRange>, StoreError> {
        self.connection.execute_batch(CREATE_TABLE)?;
        let mut statement = self.connection.prepare_cached(
            "SELECT from_seq, to_seq, reason FROM skipped_sequences
             WHERE device_id = ?1 ORDER BY from_seq, to_seq",
        )?;
        let mut rows = statement.query([device_id])?;
        let mut ranges = Vec::new();
        while let Some(row) = rows.next()? {
            let reason: String = row.get(2)?;
            ranges.push(SkippedRange {
                from: sequence_from_sql(row.get(0)?, "skipped_sequences.from_seq")?,
                to: sequence_from_sql(row.get(1)?, "skipped_sequences.to_seq")?,
                reason: SkipReason::from_name(&reason).ok_or_else(|| StoreError::CorruptValue {
                    column: "skipped_sequences.reason",
                    value: format!("{reason:?}"),
                })?,
            });
        }
        Ok(ranges)
    }

    fn record_skipped(
        &mut self,
        device_id: &str,
        from: u64,
        to: u64,
        reason: SkipReason,
    ) -> Result<Option<u64>, StoreError> {
        let from_sql = sequence_to_sql(from)?;
        let to_sql = sequence_to_sql(to)?;
        self.connection.execute_batch(CREATE_TABLE)?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_active(&transaction, device_id)?;
        if from < to {
            transaction.execute(
                "INSERT INTO skipped_sequences (device_id, from_seq, to_seq, reason, recorded_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (device_id, from_seq, to_seq) DO NOTHING",
                params![device_id, from_sql, to_sql, reason.as_str(), now_ms()],
            )?;
        }
        let acked = advance_over_skipped(&transaction, device_id)?;
        transaction.commit()?;
        Ok(acked)
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

/// Moves `rx_acked_seq` over every stored reading and skipped range that continues the
/// run from 0, and returns it. Each step either passes a run of readings or one range,
/// so the loop ends after at most as many rounds as the device has ranges, plus one.
fn advance_over_skipped(
    transaction: &Transaction<'_>,
    device_id: &str,
) -> Result<Option<u64>, StoreError> {
    let acked: Option<i64> = transaction.query_row(
        "SELECT rx_acked_seq FROM channel_state WHERE device_id = ?1",
        [device_id],
        |row| row.get(0),
    )?;
    // `next` is the first sequence number not yet covered; `None` once i64 is used up.
    let mut next = match acked {
        None => Some(0i64),
        Some(seq) => seq.checked_add(1),
    };
    while let Some(expected) = next {
        let after_readings = end_of_reading_run(transaction, device_id, expected)?;
        let after_range: Option<i64> = transaction.query_row(
            "SELECT max(to_seq) FROM skipped_sequences
             WHERE device_id = ?1 AND from_seq <= ?2 AND to_seq > ?2",
            params![device_id, after_readings],
            |row| row.get(0),
        )?;
        match after_range {
            Some(to) => next = Some(to),
            None => {
                next = Some(after_readings);
                break;
            }
        }
    }
    let new_acked = match next {
        Some(next) if next > 0 => Some(next - 1),
        Some(_) => None,
        None => Some(i64::MAX),
    };
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

/// Returns the first sequence number at or after `start` that has no stored reading,
/// counting only the run of consecutive readings that begins at `start`.
fn end_of_reading_run(
    transaction: &Transaction<'_>,
    device_id: &str,
    start: i64,
) -> Result<i64, StoreError> {
    let mut statement = transaction.prepare_cached(
        "SELECT seq FROM readings WHERE device_id = ?1 AND seq >= ?2 ORDER BY seq",
    )?;
    let mut rows = statement.query(params![device_id, start])?;
    let mut next = start;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if seq != next {
            break;
        }
        match next.checked_add(1) {
            Some(following) => next = following,
            None => break,
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use medtunnel_proto::crypto::{PublicKey, SymmetricKey};
    use medtunnel_records::CgmMeasurement;

    use crate::{DeviceModel, IncomingReading, NewDevice, Store};

    use super::{SkipReason, SkippedRange};

    fn store_with_device() -> Store {
        let mut store = Store::open_in_memory().expect("open");
        store
            .register_cloud_key(1, &PublicKey::from_bytes([9; 32]))
            .expect("cloud key");
        store
            .register_device(&NewDevice {
                device_id: "cgm-1".to_owned(),
                model: DeviceModel::Cgm,
                key_id: 7,
                static_public: PublicKey::from_bytes([5; 32]),
                psk: SymmetricKey::from_bytes([6; 32]),
                cloud_key_id: 1,
            })
            .expect("device");
        store
    }

    fn reading(seq: u64) -> IncomingReading {
        IncomingReading {
            seq,
            measurement: CgmMeasurement {
                session_start_s: 1_700_000_000,
                time_offset_s: 300 * seq as u32,
                glucose_mg_dl: 100,
                trend_mg_dl_per_min: None,
                quality_percent: None,
                status: 0,
            },
            key_id: 7,
            received_at_ms: 1,
            relay: "test#1".to_owned(),
        }
    }

    #[test]
    fn lost_range_moves_acked_past_it() {
        let mut store = store_with_device();
        let outcome = store
            .ingest("cgm-1", &[reading(0), reading(1)])
            .expect("ingest");
        assert_eq!(outcome.rx_acked_seq, Some(1));
        assert_eq!(store.record_lost("cgm-1", 2, 5).expect("lost"), Some(4));
        let outcome = store.ingest("cgm-1", &[reading(5)]).expect("ingest");
        assert_eq!(outcome.rx_acked_seq, Some(5));
        assert_eq!(
            store.channel_state("cgm-1").expect("state").rx_acked_seq,
            Some(5)
        );
    }

    #[test]
    fn lost_range_continues_over_stored_readings() {
        let mut store = store_with_device();
        let outcome = store
            .ingest("cgm-1", &[reading(3), reading(4)])
            .expect("ingest");
        assert_eq!(outcome.rx_acked_seq, None);
        assert_eq!(store.record_lost("cgm-1", 0, 3).expect("lost"), Some(4));
    }

    #[test]
    fn rejected_message_is_acknowledged() {
        let mut store = store_with_device();
        store.ingest("cgm-1", &[reading(0)]).expect("ingest");
        assert_eq!(
            store.record_rejected("cgm-1", 1).expect("rejected"),
            Some(1)
        );
        assert_eq!(store.reading_count("cgm-1").expect("count"), 1);
        let ranges = store.skipped_ranges("cgm-1").expect("ranges");
        assert_eq!(
            ranges,
            vec![SkippedRange {
                from: 1,
                to: 2,
                reason: SkipReason::Rejected
            }]
        );
    }

    #[test]
    fn recording_twice_changes_nothing() {
        let mut store = store_with_device();
        assert_eq!(store.record_lost("cgm-1", 0, 2).expect("lost"), Some(1));
        assert_eq!(store.record_lost("cgm-1", 0, 2).expect("lost"), Some(1));
        assert_eq!(store.skipped_ranges("cgm-1").expect("ranges").len(), 1);
    }

    #[test]
    fn empty_range_records_nothing() {
        let mut store = store_with_device();
        assert_eq!(store.record_lost("cgm-1", 4, 4).expect("lost"), None);
        assert!(store.skipped_ranges("cgm-1").expect("ranges").is_empty());
    }

    #[test]
    fn revoked_device_cannot_record() {
        let mut store = store_with_device();
        store.revoke_device("cgm-1").expect("revoke");
        assert!(store.record_lost("cgm-1", 0, 1).is_err());
        assert!(store.record_lost("unknown", 0, 1).is_err());
    }
}
