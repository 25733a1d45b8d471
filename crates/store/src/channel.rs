//! Per-device channel state that must survive restarts of the cloud.

use rusqlite::{params, OptionalExtension};

use crate::{Store, StoreError};

/// Channel state of one device, as last committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelState {
    /// Highest handshake initiation counter accepted so far; `None` before the first
    /// handshake. The cloud rejects an initiation whose counter is not larger, before any
    /// Diffie-Hellman work.
    pub last_initiation_counter: Option<u32>,
    /// Highest device sequence number such that every sequence number from 0 up to it is
    /// stored and may be acknowledged. `None` until sequence number 0 is stored. It never
    /// decreases, including when the device reboots.
    pub rx_acked_seq: Option<u64>,
    /// Sequence number of the next message the cloud sends to the device.
    pub tx_next_seq: u64,
}

impl Store {
    /// Returns the committed channel state of a device.
    pub fn channel_state(&self, device_id: &str) -> Result<ChannelState, StoreError> {
        let row: Option<(Option<u32>, Option<i64>, i64)> = self
            .connection
            .query_row(
                "SELECT last_initiation_counter, rx_acked_seq, tx_next_seq
                 FROM channel_state WHERE device_id = ?1",
                [device_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let (last_initiation_counter, rx_acked_seq, tx_next_seq) =
            row.ok_or_else(|| StoreError::DeviceNotFound(device_id.to_owned()))?;
        Ok(ChannelState {
            last_initiation_counter,
            rx_acked_seq: rx_acked_seq
                .map(|seq| sequence_from_sql(seq, "channel_state.rx_acked_seq"))
                .transpose()?,
            tx_next_seq: sequence_from_sql(tx_next_seq, "channel_state.tx_next_seq")?,
        })
    }

    /// Stores `counter` as the device's last initiation counter if it is larger than the
    /// stored one, in one atomic statement. Returns whether it was stored; `false` means
    /// the initiation is a replay or stale and must be rejected.
    pub fn record_initiation_counter(
        &mut self,
        device_id: &str,
        counter: u32,
    ) -> Result<bool, StoreError> {
        let changed = self.connection.execute(
            "UPDATE channel_state SET last_initiation_counter = ?2
             WHERE device_id = ?1
               AND (last_initiation_counter IS NULL OR last_initiation_counter < ?2)",
            params![device_id, counter],
        )?;
        self.changed_or_known(device_id, changed)
    }

    /// Stores `next` as the sequence number of the cloud's next message if it is larger
    /// than the stored one. Returns whether it was stored.
    pub fn record_tx_next_seq(&mut self, device_id: &str, next: u64) -> Result<bool, StoreError> {
        let next = sequence_to_sql(next)?;
        let changed = self.connection.execute(
            "UPDATE channel_state SET tx_next_seq = ?2 WHERE device_id = ?1 AND tx_next_seq < ?2",
            params![device_id, next],
        )?;
        self.changed_or_known(device_id, changed)
    }

    /// Turns the row count of a conditional update into "stored", "not stored" or
    /// "no such device".
    fn changed_or_known(&self, device_id: &str, changed: usize) -> Result<bool, StoreError> {
        if changed > 0 {
            return Ok(true);
        }
        let known: bool = self.connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM channel_state WHERE device_id = ?1)",
            [device_id],
            |row| row.get(0),
        )?;
        if known {
            Ok(false)
        } else {
            Err(StoreError::DeviceNotFound(device_id.to_owned()))
        }
    }
}

/// Converts a sequence number to SQLite's signed integer.
pub(crate) fn sequence_to_sql(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::SequenceTooLarge(seq))
}

/// Converts a stored sequence number back; a negative one means a damaged database.
pub(crate) fn sequence_from_sql(seq: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(seq).map_err(|_| StoreError::CorruptValue {
        column,
        value: seq.to_string(),
    })
}
