//! Simulated medtunnel devices.
//!
//! [`cgm::run_cgm`] replays a glucose trace as a continuous glucose monitor: each reading
//! becomes a Bluetooth-CGM-shaped record, sealed by the no_std channel core, fragmented
//! to the Bluetooth LE MTU and sent to a relay. Readings wait in a bounded queue until
//! the cloud acknowledges them, so a relay or cloud outage loses nothing.
//!
//! [`pump::run_pump`] and [`pacemaker::run_pacemaker`] simulate therapy devices: they
//! report their status and telemetry and execute signed commands from the cloud through
//! the executor of `medtunnel-command` (see [`therapy_device`]).
#![forbid(unsafe_code)]

pub mod cgm;
pub mod keystore;
pub mod pacemaker;
pub mod pump;
pub mod state;
pub mod therapy_device;
pub mod therapy_state;

pub use cgm::{run_cgm, CgmConfig, CgmError, CgmProgress, CgmReport};
pub use keystore::{KeyStore, KeyStoreError, SoftwareKeyStore};
pub use pacemaker::{run_pacemaker, SimulatedPacemaker};
pub use pump::{run_pump, SimulatedPump};
pub use state::{PersistentState, StateError};
pub use therapy_device::{
    run_therapy_device, SimulatedTherapy, TherapyDeviceConfig, TherapyDeviceError, TherapyDeviceIo,
    TherapyDeviceReport,
};
pub use therapy_state::{TherapyState, TherapyStateFile};
