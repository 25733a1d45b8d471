//! A simulated insulin pump: the pump model of `medtunnel-command` with a basal delivery
//! loop, telemetry and settings saved across reboots, served through the tunnel by
//! [`run_therapy_device`].
//!
//! The basal program runs on the pump's own clock whatever happens to the channel. A
//! channel silent for longer than the configured limit stops remote boluses only.

use medtunnel_command::ack::{RejectReason, StateSummary};
use medtunnel_command::body::{BasalProfile, BasalSegment};
use medtunnel_command::limits::{PumpLimits, PumpMaxSettings};
use medtunnel_command::pump::{PumpState, PumpTherapy};
use medtunnel_command::{CommandBody, DeviceContext, Insulin, InsulinRate, Risk, Therapy};
use medtunnel_records::{PumpStatus, PumpTelemetry, Record, StatusSettings};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::keystore::KeyStore;
use crate::therapy_device::{
    run_therapy_device, SimulatedTherapy, TherapyDeviceConfig, TherapyDeviceError, TherapyDeviceIo,
    TherapyDeviceReport,
};

const MS_PER_MINUTE: u64 = 60_000;
const MS_PER_HOUR: u64 = 3_600_000;
const MINUTES_PER_DAY: u64 = 1440;

/// The simulated pump: its model and the basal loop's progress.
#[derive(Debug, Clone)]
pub struct SimulatedPump {
    pump: PumpTherapy,
    /// Session time up to which basal insulin was counted.
    delivered_until_ms: u64,
    /// Basal insulin counted but not yet a whole 0.01 U, in 0.01 U × ms per hour.
    fraction: u64,
}

/// Pump settings saved across reboots. A running temporary basal is not saved: after a
/// reboot the programmed basal runs, which is the fail-safe choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPump {
    /// Basal profile segments as (start minute, rate in 0.01 U/h).
    pub basal_segments: Vec<(u16, u16)>,
    /// Whether delivery is suspended.
    pub suspended: bool,
    /// Reservoir in 0.01 U.
    pub reservoir: u16,
    /// Insulin on board in 0.01 U, counted as fresh after the reboot.
    pub insulin_on_board: u16,
    /// Insulin delivered today in 0.01 U.
    pub delivered_today: u32,
    /// Maximum bolus in 0.01 U.
    pub max_bolus: u16,
    /// Maximum basal rate in 0.01 U/h.
    pub max_basal: u16,
    /// Maximum insulin on board in 0.01 U.
    pub max_insulin_on_board: u16,
}

impl SimulatedPump {
    /// An example pump: basal 0.80 U/h from midnight, 1.20 U/h from 6:00, 0.90 U/h from
    /// 22:00, a 200 U reservoir, maximum bolus 15 U, maximum basal 5 U/h and maximum
    /// insulin on board 30 U, within [`PumpLimits::EXAMPLE`].
    pub fn example() -> Self {
        let segments = [(0, 80), (360, 120), (1320, 90)];
        let saved = SavedPump {
            basal_segments: segments.to_vec(),
            suspended: false,
            reservoir: 20_000,
            insulin_on_board: 0,
            delivered_today: 0,
            max_bolus: 1500,
            max_basal: 500,
            max_insulin_on_board: 3000,
        };
        Self::restore(saved)
    }

    /// The pump model.
    pub fn pump(&self) -> &PumpTherapy {
        &self.pump
    }
}

impl Therapy for SimulatedPump {
    fn risk(&self, body: &CommandBody) -> Risk {
        self.pump.risk(body)
    }

    fn check(&self, body: &CommandBody, ctx: &DeviceContext) -> Result<(), RejectReason> {
        self.pump.check(body, ctx)
    }

    fn apply(&mut self, body: &CommandBody, ctx: &DeviceContext) -> StateSummary {
        self.pump.apply(body, ctx)
    }
}

impl SimulatedTherapy for SimulatedPump {
    type Saved = SavedPump;

    fn saved(&self) -> SavedPump {
        let state = self.pump.state();
        SavedPump {
            basal_segments: state
                .basal_profile
                .segments()
                .iter()
                .map(|s| (s.start_minute, s.rate.0))
                .collect(),
            suspended: state.suspended,
            reservoir: state.reservoir.0,
            insulin_on_board: self.pump.insulin_on_board(self.delivered_until_ms).0,
            delivered_today: state.delivered_today,
            max_bolus: state.max.max_bolus.0,
            max_basal: state.max.max_basal.0,
            max_insulin_on_board: state.max.max_insulin_on_board.0,
        }
    }

    fn restore(saved: SavedPump) -> Self {
        let segments: Vec<BasalSegment> = saved
            .basal_segments
            .iter()
            .map(|&(start_minute, rate)| BasalSegment {
                start_minute,
                rate: InsulinRate(rate),
            })
            .collect();
        // A saved profile that does not parse falls back to no basal rather than guessing.
        let basal_profile =
            BasalProfile::new(&segments).unwrap_or_else(|_| BasalProfile::flat(InsulinRate(0)));
        let state = PumpState {
            basal_profile,
            temp_basal: None,
            suspended: saved.suspended,
            reservoir: Insulin(saved.reservoir),
            insulin_on_board: Insulin(saved.insulin_on_board),
            insulin_on_board_at_ms: 0,
            delivered_today: saved.delivered_today,
            max: PumpMaxSettings {
                max_bolus: Insulin(saved.max_bolus),
                max_basal: InsulinRate(saved.max_basal),
                max_insulin_on_board: Insulin(saved.max_insulin_on_board),
            },
        };
        Self {
            pump: PumpTherapy::new(PumpLimits::EXAMPLE, state),
            delivered_until_ms: 0,
            fraction: 0,
        }
    }

    fn status_settings(&self) -> StatusSettings {
        let state = self.pump.state();
        StatusSettings::Pump(PumpStatus {
            suspended: state.suspended,
            max: state.max,
            delivered_today: state.delivered_today,
            basal_profile: state.basal_profile,
        })
    }

    /// Delivers the basal insulin due since the last call, minute by minute of the
    /// session clock (the pump has no real-time clock, so its day starts at boot).
    fn advance(&mut self, now_ms: u64) {
        while self.delivered_until_ms < now_ms {
            let minute_end = (self.delivered_until_ms / MS_PER_MINUTE + 1) * MS_PER_MINUTE;
            let until = minute_end.min(now_ms);
            let minute = ((self.delivered_until_ms / MS_PER_MINUTE) % MINUTES_PER_DAY) as u16;
            let rate = self.pump.basal_rate_at(minute, self.delivered_until_ms);
            self.fraction += u64::from(rate.0) * (until - self.delivered_until_ms);
            let whole = self.fraction / MS_PER_HOUR;
            if whole > 0 {
                self.fraction %= MS_PER_HOUR;
                let amount = Insulin(u16::try_from(whole).unwrap_or(u16::MAX));
                self.pump.record_basal_delivery(amount);
            }
            self.delivered_until_ms = until;
        }
    }

    fn telemetry(&self, now_ms: u64) -> Record {
        let minute = ((now_ms / MS_PER_MINUTE) % MINUTES_PER_DAY) as u16;
        let summary = self.pump.summary(now_ms);
        Record::PumpTelemetry(PumpTelemetry {
            session_clock_ms: now_ms,
            reservoir: summary.reservoir,
            insulin_on_board: summary.insulin_on_board,
            basal_rate: self.pump.basal_rate_at(minute, now_ms),
            suspended: summary.suspended,
            temp_basal_active: summary.temp_basal_active,
        })
    }
}

/// Runs a simulated pump until `stop` turns true, starting from the example pump on
/// its first boot.
pub async fn run_pump<K: KeyStore>(
    io: TherapyDeviceIo<'_, K>,
    config: TherapyDeviceConfig,
    stop: watch::Receiver<bool>,
) -> Result<TherapyDeviceReport, TherapyDeviceError> {
    run_therapy_device(io, SimulatedPump::example(), config, stop).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basal_loop_delivers_the_programmed_rate() {
        let mut pump = SimulatedPump::example();
        // One hour at 0.80 U/h.
        pump.advance(MS_PER_HOUR);
        assert_eq!(pump.pump().state().delivered_today, 80);
        assert_eq!(pump.pump().state().reservoir, Insulin(20_000 - 80));
    }

    #[test]
    fn saved_pump_restores_settings() {
        let pump = SimulatedPump::example();
        let restored = SimulatedPump::restore(pump.saved());
        assert_eq!(restored.saved(), pump.saved());
        assert_eq!(restored.status_settings(), pump.status_settings());
    }
}
