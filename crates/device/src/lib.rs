//! Simulated medtunnel devices.
//!
//! [`cgm::run_cgm`] replays a glucose trace as a continuous glucose monitor: each reading
//! becomes a Bluetooth-CGM-shaped record, sealed by the no_std channel core, fragmented
//! to the Bluetooth LE MTU and sent to a relay. Readings wait in a bounded queue until
//! the cloud acknowledges them, so a relay or cloud outage loses nothing.
#![forbid(unsafe_code)]

pub mod cgm;
pub mod keystore;
pub mod state;

pub use cgm::{run_cgm, CgmConfig, CgmError, CgmProgress, CgmReport};
pub use keystore::{KeyStore, KeyStoreError, SoftwareKeyStore};
pub use state::{PersistentState, StateError};
