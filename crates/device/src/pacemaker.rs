//! A simulated pacemaker remote-monitoring unit: the pacemaker model of
//! `medtunnel-command` with telemetry and settings saved across reboots, served through
//! the tunnel by [`run_therapy_device`].
//!
//! A lost channel changes nothing: the implant keeps pacing with its last settings.

use medtunnel_command::ack::{RejectReason, StateSummary};
use medtunnel_command::body::PacingMode;
use medtunnel_command::limits::PacemakerLimits;
use medtunnel_command::pacemaker::{PacemakerSettings, PacemakerTelemetry, PacemakerUnit};
use medtunnel_command::{CommandBody, DeviceContext, Risk, Therapy};
use medtunnel_records::{PacemakerReport, Record, StatusSettings};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::keystore::KeyStore;
use crate::therapy_device::{
    run_therapy_device, SimulatedTherapy, TherapyDeviceConfig, TherapyDeviceError, TherapyDeviceIo,
    TherapyDeviceReport,
};

/// The simulated pacemaker unit.
#[derive(Debug, Clone)]
pub struct SimulatedPacemaker {
    unit: PacemakerUnit,
}

/// Pacemaker settings saved across reboots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPacemaker {
    /// Pacing mode tag (see `PacingMode`).
    pub mode: u8,
    /// Lower rate limit in ppm.
    pub lower_rate_ppm: u8,
    /// Upper tracking rate in ppm.
    pub upper_tracking_ppm: u8,
    /// AV delay in ms.
    pub av_delay_ms: u16,
    /// Output amplitude in 0.1 V.
    pub amplitude_decivolts: u8,
}

impl SimulatedPacemaker {
    /// An example unit: DDD, 60 to 130 ppm, AV delay 180 ms, 3.5 V, within
    /// [`PacemakerLimits::EXAMPLE`].
    pub fn example() -> Self {
        Self::restore(SavedPacemaker {
            mode: PacingMode::Ddd as u8,
            lower_rate_ppm: 60,
            upper_tracking_ppm: 130,
            av_delay_ms: 180,
            amplitude_decivolts: 35,
        })
    }

    /// Programmed settings.
    pub fn settings(&self) -> &PacemakerSettings {
        self.unit.settings()
    }
}

impl Therapy for SimulatedPacemaker {
    fn risk(&self, body: &CommandBody) -> Risk {
        self.unit.risk(body)
    }

    fn check(&self, body: &CommandBody, ctx: &DeviceContext) -> Result<(), RejectReason> {
        self.unit.check(body, ctx)
    }

    fn apply(&mut self, body: &CommandBody, ctx: &DeviceContext) -> StateSummary {
        self.unit.apply(body, ctx)
    }
}

impl SimulatedTherapy for SimulatedPacemaker {
    type Saved = SavedPacemaker;

    fn saved(&self) -> SavedPacemaker {
        let s = self.unit.settings();
        SavedPacemaker {
            mode: s.mode as u8,
            lower_rate_ppm: s.lower_rate_ppm,
            upper_tracking_ppm: s.upper_tracking_ppm,
            av_delay_ms: s.av_delay_ms,
            amplitude_decivolts: s.amplitude_decivolts,
        }
    }

    fn restore(saved: SavedPacemaker) -> Self {
        // An unknown saved mode falls back to VVI, the single-chamber default.
        let mode = PacingMode::from_tag(saved.mode).unwrap_or(PacingMode::Vvi);
        let settings = PacemakerSettings {
            mode,
            lower_rate_ppm: saved.lower_rate_ppm,
            upper_tracking_ppm: saved.upper_tracking_ppm,
            av_delay_ms: saved.av_delay_ms,
            amplitude_decivolts: saved.amplitude_decivolts,
        };
        Self {
            unit: PacemakerUnit::new(PacemakerLimits::EXAMPLE, settings),
        }
    }

    fn status_settings(&self) -> StatusSettings {
        StatusSettings::Pacemaker(*self.unit.settings())
    }

    fn advance(&mut self, now_ms: u64) {
        let telemetry = simulated_telemetry(self.unit.settings(), now_ms);
        self.unit.record_telemetry(telemetry);
    }

    fn telemetry(&self, now_ms: u64) -> Record {
        Record::PacemakerTelemetry(PacemakerReport {
            session_clock_ms: now_ms,
            telemetry: simulated_telemetry(self.unit.settings(), now_ms),
        })
    }
}

/// Example measurements: a heart rate a few beats above the lower rate, a battery that
/// loses 1 mV per hour from 2.8 V, and a steady lead impedance.
fn simulated_telemetry(settings: &PacemakerSettings, now_ms: u64) -> PacemakerTelemetry {
    let wobble = ((now_ms / 1000) % 8) as u8;
    let hours = u16::try_from(now_ms / 3_600_000).unwrap_or(u16::MAX);
    PacemakerTelemetry {
        heart_rate_bpm: settings.lower_rate_ppm.saturating_add(wobble),
        battery_millivolts: 2800u16.saturating_sub(hours),
        lead_impedance_ohms: 520,
    }
}

/// Runs a simulated pacemaker until `stop` turns true, starting from the example unit
/// on its first boot.
pub async fn run_pacemaker<K: KeyStore>(
    io: TherapyDeviceIo<'_, K>,
    config: TherapyDeviceConfig,
    stop: watch::Receiver<bool>,
) -> Result<TherapyDeviceReport, TherapyDeviceError> {
    run_therapy_device(io, SimulatedPacemaker::example(), config, stop).await
}
