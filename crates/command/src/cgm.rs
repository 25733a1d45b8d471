//! Continuous glucose monitor: its alert thresholds.

use crate::ack::{RejectReason, StateSummary};
use crate::body::{CgmCommand, CommandBody};
use crate::executor::{DeviceContext, Therapy};
use crate::limits::CgmLimits;
use crate::risk::Risk;

/// Glucose alert thresholds in mg/dL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CgmThresholds {
    /// Alert when glucose falls below this value.
    pub low_mg_dl: u16,
    /// Alert when glucose rises above this value.
    pub high_mg_dl: u16,
}

/// A CGM: hard limits and alert thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgmMonitor {
    limits: CgmLimits,
    thresholds: CgmThresholds,
}

impl CgmMonitor {
    /// Creates a monitor with its hard limits and thresholds restored from storage.
    pub fn new(limits: CgmLimits, thresholds: CgmThresholds) -> Self {
        Self { limits, thresholds }
    }

    /// Hard limits.
    pub fn limits(&self) -> &CgmLimits {
        &self.limits
    }

    /// Current alert thresholds.
    pub fn thresholds(&self) -> &CgmThresholds {
        &self.thresholds
    }
}

impl Therapy for CgmMonitor {
    fn risk(&self, body: &CommandBody) -> Risk {
        body.risk(None)
    }

    fn check(&self, body: &CommandBody, _ctx: &DeviceContext) -> Result<(), RejectReason> {
        match body {
            CommandBody::Cgm(command) => self
                .limits
                .check(command)
                .map_err(RejectReason::OutOfLimits),
            _ => Err(RejectReason::WrongDeviceModel),
        }
    }

    fn apply(&mut self, body: &CommandBody, _ctx: &DeviceContext) -> StateSummary {
        if let CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        }) = *body
        {
            self.thresholds = CgmThresholds {
                low_mg_dl,
                high_mg_dl,
            };
        }
        StateSummary::Cgm(self.thresholds)
    }
}
