//! State a device keeps across reboots: the handshake counter and sequence numbers only
//! ever grow, so a reboot never reuses a nonce or a sequence number.

use std::path::{Path, PathBuf};

use medtunnel_proto::channel::DeviceResume;
use medtunnel_proto::stream::StreamState;
use serde::{Deserialize, Serialize};

/// Failure to read or write the state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("device state file {path}: {source}")]
    Io {
        /// File path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The file exists but does not parse. Starting from zero would reuse counters, so
    /// the device refuses to start.
    #[error("device state file {path} is corrupt ({message}); restore it from backup or re-provision the device")]
    Corrupt {
        /// File path.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct StateFile {
    next_initiation_counter: u32,
    tx_next: u64,
    tx_acked: u64,
    rx_next: u64,
    rx_committed: u64,
}

/// The device's counters in a file, like a microcontroller's monotonic counters in
/// flash. Writes replace the file atomically (write, sync, rename).
pub struct PersistentState {
    path: PathBuf,
}

impl PersistentState {
    /// Uses the state file at `path`; it need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PersistentState { path: path.into() }
    }

    /// Loads the saved state, or the initial state if the file does not exist.
    ///
    /// Messages that were unacknowledged at the time of the save are not in the file.
    /// The resume state marks them as given up, so the cloud reports them lost instead
    /// of waiting for them.
    pub fn load(&self) -> Result<DeviceResume, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DeviceResume::default())
            }
            Err(source) => return Err(self.io_error(source)),
        };
        let file: StateFile = serde_json::from_str(&text).map_err(|error| StateError::Corrupt {
            path: self.path.clone(),
            message: error.to_string(),
        })?;
        self.check_consistent(&file)?;
        Ok(DeviceResume {
            next_initiation_counter: file.next_initiation_counter,
            stream: StreamState {
                tx_next: file.tx_next,
                tx_acked: file.tx_acked,
                tx_oldest: file.tx_next,
                rx_next: file.rx_next,
                rx_committed: file.rx_committed,
            },
        })
    }

    /// Rejects counters that no run of the device can have written.
    fn check_consistent(&self, file: &StateFile) -> Result<(), StateError> {
        let problem = if file.tx_acked > file.tx_next {
            Some(format!(
                "tx_acked {} is above tx_next {}",
                file.tx_acked, file.tx_next
            ))
        } else if file.rx_committed > file.rx_next {
            Some(format!(
                "rx_committed {} is above rx_next {}",
                file.rx_committed, file.rx_next
            ))
        } else {
            None
        };
        match problem {
            Some(message) => Err(StateError::Corrupt {
                path: self.path.clone(),
                message,
            }),
            None => Ok(()),
        }
    }

    /// Saves `resume` atomically. With `durable`, the data is synced to disk before the
    /// rename, as it must be before a handshake uses a new initiation counter. Without
    /// it, the file survives a crash of the process but not a power loss.
    pub fn save(&self, resume: &DeviceResume, durable: bool) -> Result<(), StateError> {
        let file = StateFile {
            next_initiation_counter: resume.next_initiation_counter,
            tx_next: resume.stream.tx_next,
            tx_acked: resume.stream.tx_acked,
            rx_next: resume.stream.rx_next,
            rx_committed: resume.stream.rx_committed,
        };
        // Serializing a struct of integers cannot fail.
        let text = serde_json::to_string(&file).unwrap_or_default();
        let temporary = self.path.with_extension("tmp");
        write_file(&temporary, text.as_bytes(), durable).map_err(|source| self.io_error(source))?;
        std::fs::rename(&temporary, &self.path).map_err(|source| self.io_error(source))
    }

    /// Path of the state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, source: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn write_file(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_data()?;
    }
    Ok(())
}
