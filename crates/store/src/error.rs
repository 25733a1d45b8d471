//! Errors of the store, grouped by who is to blame.

/// Failure of a store operation.
///
/// `DeviceNotFound`, `DeviceExists`, `KeyIdInUse`, `CloudKeyConflict`, `CloudKeyNotFound`, `InvalidDeviceId`,
/// `DeviceRevoked` and `SequenceTooLarge` are the caller's to handle: the request does not
/// fit the registry. `Sqlite`, `JournalMode`, `SchemaTooNew` and `CorruptValue` are faults
/// of the database file or its environment, and an operator must act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite returned an error.
    #[error("SQLite operation failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database refused WAL journal mode.
    #[error(
        "the database is in journal mode {0:?} instead of WAL; \
         put it on a local file system that supports shared memory"
    )]
    JournalMode(String),
    /// The database was written by a newer version of this crate.
    #[error(
        "database schema version {found} is newer than the supported version {supported}; \
         upgrade medtunnel"
    )]
    SchemaTooNew {
        /// Version recorded in the database.
        found: u32,
        /// Latest version this build supports.
        supported: u32,
    },
    /// A stored value is outside the range its column allows.
    #[error("stored value {value} in column {column} is invalid; the database is damaged")]
    CorruptValue {
        /// Table and column, as `table.column`.
        column: &'static str,
        /// The value, or a description of it for secrets.
        value: String,
    },
    /// No device has this id.
    #[error("device {0:?} is not registered")]
    DeviceNotFound(String),
    /// A device with this id already exists.
    #[error("device {0:?} is already registered; choose another device id")]
    DeviceExists(String),
    /// Another device already uses this key id.
    #[error("key id {key_id} is already used by device {device_id:?}; choose another key id")]
    KeyIdInUse {
        /// The key id requested.
        key_id: u32,
        /// The device that has it.
        device_id: String,
    },
    /// The cloud key id is registered with a different public key.
    #[error(
        "cloud key id {0} is already registered with a different public key; \
         the cloud key file does not belong to this database"
    )]
    CloudKeyConflict(u32),
    /// The cloud key id is not in the store.
    #[error("cloud key id {0} is not registered; provision the cloud key first")]
    CloudKeyNotFound(u32),
    /// A device id cannot be stored because it is also used as a file name.
    #[error(
        "device id {0:?} is invalid; use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' \
         and '-', not starting with '.'"
    )]
    InvalidDeviceId(String),
    /// The device is revoked and may not store readings.
    #[error("device {0:?} is revoked; it cannot store readings")]
    DeviceRevoked(String),
    /// A sequence number does not fit SQLite's signed 64-bit integer.
    #[error("sequence number {0} is above the storable maximum of 9223372036854775807")]
    SequenceTooLarge(u64),
}
