//! Cloud storage of medtunnel in SQLite: the device registry, the channel state that must
//! survive restarts, and the readings with their provenance.
//!
//! One [`Store`] wraps one SQLite connection. Every write is a single transaction
//! committed with `synchronous=FULL` in WAL mode, so once a method returns `Ok` its
//! effect survives a crash or power loss. The gateway acknowledges a reading to the
//! device only after [`Store::ingest`] has returned.
//!
//! Never logged, by any code in this crate: keys, pre-shared keys and glucose values.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod channel;
mod devices;
mod error;
pub mod lost;
pub mod provision;
mod readings;
mod schema;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

pub use channel::ChannelState;
pub use devices::{DeviceModel, DeviceRecord, DeviceStatus, NewDevice};
pub use error::StoreError;
pub use readings::{IncomingReading, IngestOutcome, StoredReading};

/// How long a write waits for another connection's write lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The cloud's database: device registry, channel state and readings.
pub struct Store {
    connection: Connection,
}

impl Store {
    /// Opens or creates the database at `path` and applies pending schema migrations.
    ///
    /// Sets WAL journal mode, `synchronous=FULL` and foreign-key enforcement.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let connection = Connection::open(path.as_ref())?;
        let mode: String =
            connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::JournalMode(mode));
        }
        Self::configure(connection)
    }

    /// Opens a database that lives in memory only, for tests of code above the store.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::configure(Connection::open_in_memory()?)
    }

    fn configure(connection: Connection) -> Result<Self, StoreError> {
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", true)?;
        let mut store = Store { connection };
        schema::migrate(&mut store.connection)?;
        Ok(store)
    }

    /// Returns the schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::current_version(&self.connection)
    }
}

/// Returns the wall-clock time in Unix milliseconds, or 0 if the clock is before 1970.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}
