//! Risk classification of command bodies, shared by the cloud and the device so both
//! decide the same way whether a command needs a fresh device challenge and a second
//! clinician.

use crate::body::{CommandBody, Insulin, PumpCommand};
use crate::limits::PumpMaxSettings;

/// Risk class of a command body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Risk {
    /// The device executes it without a challenge; the policy needs no co-signature.
    Routine,
    /// The envelope must carry a fresh device challenge, and the policy requires a second
    /// clinician's co-signature.
    High,
}

/// Boluses strictly above this amount (10.00 U) are high risk.
// NOTE: an example threshold, not a clinical recommendation; a deployment sets its own,
// and the device and the cloud must be built with the same value.
pub const HIGH_RISK_BOLUS_ABOVE: Insulin = Insulin(1000);

impl CommandBody {
    /// Classifies the body. High risk are: a bolus above [`HIGH_RISK_BOLUS_ABOVE`], a new
    /// basal profile, any pacemaker parameter change, and raising a pump maximum above
    /// `current` (the programmed maxima as the classifying side knows them). Without
    /// `current`, every maximum change counts as raising.
    ///
    /// When the cloud's view of the maxima is stale the two sides can disagree on a
    /// maximum change; the device then rejects the command for a missing challenge, and
    /// the cloud sends it again with one.
    pub fn risk(&self, current: Option<&PumpMaxSettings>) -> Risk {
        let high = match self {
            Self::Pump(command) => pump_is_high_risk(command, current),
            Self::Pacemaker(_) => true,
            Self::Cgm(_) => false,
        };
        if high {
            Risk::High
        } else {
            Risk::Routine
        }
    }
}

fn pump_is_high_risk(command: &PumpCommand, current: Option<&PumpMaxSettings>) -> bool {
    match (command, current) {
        (PumpCommand::Bolus(amount), _) => *amount > HIGH_RISK_BOLUS_ABOVE,
        (PumpCommand::SetBasalProfile(_), _) => true,
        (PumpCommand::SetMaxBolus(_), None)
        | (PumpCommand::SetMaxBasal(_), None)
        | (PumpCommand::SetMaxInsulinOnBoard(_), None) => true,
        (PumpCommand::SetMaxBolus(v), Some(c)) => *v > c.max_bolus,
        (PumpCommand::SetMaxBasal(v), Some(c)) => *v > c.max_basal,
        (PumpCommand::SetMaxInsulinOnBoard(v), Some(c)) => *v > c.max_insulin_on_board,
        (PumpCommand::TempBasal { .. } | PumpCommand::Suspend | PumpCommand::Resume, _) => false,
    }
}
