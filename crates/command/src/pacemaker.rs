//! Pacemaker remote-monitoring unit: programmed settings and telemetry.
//!
//! Settings change only through executed commands. A lost channel changes nothing: the
//! implant keeps pacing with its last settings.

use crate::ack::{RejectReason, StateSummary};
use crate::body::{CommandBody, PacemakerCommand, PacingMode};
use crate::executor::{DeviceContext, Therapy};
use crate::limits::{ensure, LimitViolation, PacemakerLimits};
use crate::risk::Risk;

/// Programmed pacing parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacemakerSettings {
    /// Pacing mode.
    pub mode: PacingMode,
    /// Lower rate limit in pulses per minute.
    pub lower_rate_ppm: u8,
    /// Upper tracking rate in pulses per minute.
    pub upper_tracking_ppm: u8,
    /// Atrioventricular delay in milliseconds.
    pub av_delay_ms: u16,
    /// Output amplitude in steps of 0.1 V.
    pub amplitude_decivolts: u8,
}

/// Latest measurements of the implant, as reported to the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PacemakerTelemetry {
    /// Heart rate in beats per minute.
    pub heart_rate_bpm: u8,
    /// Battery voltage in millivolts.
    pub battery_millivolts: u16,
    /// Lead impedance in ohms.
    pub lead_impedance_ohms: u16,
}

/// A pacemaker remote-monitoring unit: hard limits, settings and telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacemakerUnit {
    limits: PacemakerLimits,
    settings: PacemakerSettings,
    telemetry: PacemakerTelemetry,
}

impl PacemakerUnit {
    /// Creates a unit with its hard limits and settings restored from storage.
    pub fn new(limits: PacemakerLimits, settings: PacemakerSettings) -> Self {
        Self {
            limits,
            settings,
            telemetry: PacemakerTelemetry::default(),
        }
    }

    /// Hard limits.
    pub fn limits(&self) -> &PacemakerLimits {
        &self.limits
    }

    /// Programmed settings.
    pub fn settings(&self) -> &PacemakerSettings {
        &self.settings
    }

    /// Latest telemetry.
    pub fn telemetry(&self) -> &PacemakerTelemetry {
        &self.telemetry
    }

    /// Stores a new telemetry reading from the implant.
    pub fn record_telemetry(&mut self, telemetry: PacemakerTelemetry) {
        self.telemetry = telemetry;
    }

    /// Checks that the programmed settings are within the hard limits.
    pub fn check_state(&self) -> Result<(), LimitViolation> {
        let s = &self.settings;
        let l = &self.limits;
        ensure(
            l.lower_rate_ppm.contains(&s.lower_rate_ppm),
            LimitViolation::LowerRateOutOfRange,
        )?;
        ensure(
            l.upper_tracking_ppm.contains(&s.upper_tracking_ppm),
            LimitViolation::UpperTrackingRateOutOfRange,
        )?;
        ensure(
            s.lower_rate_ppm < s.upper_tracking_ppm,
            LimitViolation::LowerRateNotBelowUpperTracking,
        )?;
        ensure(
            l.av_delay_ms.contains(&s.av_delay_ms),
            LimitViolation::AvDelayOutOfRange,
        )?;
        ensure(
            l.amplitude_decivolts.contains(&s.amplitude_decivolts),
            LimitViolation::AmplitudeOutOfRange,
        )
    }

    fn apply_command(&mut self, command: &PacemakerCommand) {
        let s = &mut self.settings;
        match *command {
            PacemakerCommand::SetPacingMode(mode) => s.mode = mode,
            PacemakerCommand::SetLowerRateLimit(ppm) => s.lower_rate_ppm = ppm,
            PacemakerCommand::SetUpperTrackingRate(ppm) => s.upper_tracking_ppm = ppm,
            PacemakerCommand::SetAvDelay(ms) => s.av_delay_ms = ms,
            PacemakerCommand::SetOutputAmplitude(dv) => s.amplitude_decivolts = dv,
        }
    }
}

impl Therapy for PacemakerUnit {
    fn risk(&self, body: &CommandBody) -> Risk {
        body.risk(None)
    }

    fn check(&self, body: &CommandBody, _ctx: &DeviceContext) -> Result<(), RejectReason> {
        match body {
            CommandBody::Pacemaker(command) => self
                .limits
                .check(command, &self.settings)
                .map_err(RejectReason::OutOfLimits),
            _ => Err(RejectReason::WrongDeviceModel),
        }
    }

    fn apply(&mut self, body: &CommandBody, _ctx: &DeviceContext) -> StateSummary {
        if let CommandBody::Pacemaker(command) = body {
            self.apply_command(command);
        }
        StateSummary::Pacemaker(self.settings)
    }
}
