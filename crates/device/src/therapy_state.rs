//! What a therapy device keeps across reboots besides its channel counters: the boot
//! epoch, the record of the last executed command, and the model's settings.
//!
//! The file is replaced atomically (write, sync, rename) and synced before the rename,
//! like a record in flash. The execution record is written before a command runs, so a
//! power loss between the two leaves the command marked as done and not run.

use std::path::{Path, PathBuf};

use medtunnel_command::ExecutionRecord;
use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// Contents of the therapy state file. `M` is the model's persisted settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TherapyStateFile<M> {
    /// Boot counter: incremented and saved at every boot before anything else.
    pub boot_epoch: u32,
    /// Sequence of the last executed command.
    pub last_sequence: u64,
    /// Id of the last executed command, as 32 hex digits.
    pub last_command_id: String,
    /// Settings of the device model.
    pub model: M,
}

impl<M> TherapyStateFile<M> {
    /// The execution record as the executor uses it. A damaged id reads as zeros, which
    /// matches no command, so the sequence check alone then keeps commands exactly-once.
    pub fn execution_record(&self) -> ExecutionRecord {
        let mut command_id = [0u8; 16];
        if hex::decode_to_slice(&self.last_command_id, &mut command_id).is_err() {
            command_id = [0u8; 16];
        }
        ExecutionRecord {
            sequence: self.last_sequence,
            command_id,
        }
    }

    /// Stores `record` as the last executed command.
    pub fn set_execution_record(&mut self, record: &ExecutionRecord) {
        self.last_sequence = record.sequence;
        self.last_command_id = hex::encode(record.command_id);
    }
}

/// The therapy state file of one device.
pub struct TherapyState {
    path: PathBuf,
}

impl TherapyState {
    /// Uses the file at `path`; it need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the saved state, or returns `None` before the first boot.
    pub fn load<M: for<'de> Deserialize<'de>>(
        &self,
    ) -> Result<Option<TherapyStateFile<M>>, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(self.io_error(source)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| StateError::Corrupt {
                path: self.path.clone(),
                message: error.to_string(),
            })
    }

    /// Saves `state` durably and atomically.
    pub fn save<M: Serialize>(&self, state: &TherapyStateFile<M>) -> Result<(), StateError> {
        let text = serde_json::to_string(state).map_err(|error| StateError::Corrupt {
            path: self.path.clone(),
            message: error.to_string(),
        })?;
        let temporary = self.path.with_extension("tmp");
        write_synced(&temporary, text.as_bytes()).map_err(|source| self.io_error(source))?;
        std::fs::rename(&temporary, &self.path).map_err(|source| self.io_error(source))
    }

    fn io_error(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}
