//! Insulin pump model: its state and how it applies commands within its limits.

use crate::ack::{PumpSummary, RejectReason, StateSummary};
use crate::body::{BasalProfile, CommandBody, Insulin, InsulinRate, PumpCommand, TempBasalRate};
use crate::executor::{DeviceContext, Therapy};
use crate::limits::{ensure, LimitViolation, PumpLimits, PumpMaxSettings};
use crate::risk::Risk;

/// Duration of insulin action used by the insulin-on-board estimate: 4 hours.
// NOTE: an example value; real pumps let the clinician set the duration of insulin action.
pub const INSULIN_ACTION_MS: u64 = 4 * 60 * 60 * 1000;

const MS_PER_MINUTE: u64 = 60_000;

/// A running temporary basal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ActiveTempBasal {
    /// Rate during the override.
    pub rate: TempBasalRate,
    /// Session clock time at which it started, in milliseconds.
    pub started_at_ms: u64,
    /// Length in minutes.
    pub duration_minutes: u16,
}

impl ActiveTempBasal {
    /// Session clock time at which it ends, in milliseconds.
    pub fn ends_at_ms(&self) -> u64 {
        let duration_ms = u64::from(self.duration_minutes) * MS_PER_MINUTE;
        self.started_at_ms.saturating_add(duration_ms)
    }
}

/// State of an insulin pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PumpState {
    /// Daily basal program.
    pub basal_profile: BasalProfile,
    /// Temporary basal, if one was started; it has no effect after its end.
    pub temp_basal: Option<ActiveTempBasal>,
    /// Whether all delivery is suspended.
    pub suspended: bool,
    /// Insulin left in the reservoir.
    pub reservoir: Insulin,
    /// Insulin on board as estimated at `insulin_on_board_at_ms`.
    pub insulin_on_board: Insulin,
    /// Session clock time of the insulin-on-board estimate, in milliseconds.
    pub insulin_on_board_at_ms: u64,
    /// Insulin delivered since the last daily reset, in 0.01 U.
    pub delivered_today: u32,
    /// Programmed maxima.
    pub max: PumpMaxSettings,
}

/// An insulin pump: its hard limits and its state.
///
/// The basal program runs on the pump whatever happens to the channel: a lost channel
/// stops remote boluses (see [`PumpTherapy::remote_bolus_allowed`]) and changes nothing
/// else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpTherapy {
    limits: PumpLimits,
    state: PumpState,
}

impl PumpTherapy {
    /// Creates a pump with its hard limits and a state restored from storage.
    pub fn new(limits: PumpLimits, state: PumpState) -> Self {
        Self { limits, state }
    }

    /// Hard limits.
    pub fn limits(&self) -> &PumpLimits {
        &self.limits
    }

    /// Current state.
    pub fn state(&self) -> &PumpState {
        &self.state
    }

    /// Whether the pump accepts a remote bolus: only while the channel is healthy (an
    /// authenticated frame arrived within the configured silence) and delivery is not
    /// suspended. The basal program keeps running either way.
    pub fn remote_bolus_allowed(&self, channel_healthy: bool) -> bool {
        channel_healthy && !self.state.suspended
    }

    /// Estimates insulin on board at `now_ms`. The stored estimate decays linearly to
    /// zero over [`INSULIN_ACTION_MS`] from the last bolus. For several boluses this
    /// overestimates, which makes the maximum-insulin-on-board check stricter, not
    /// looser. After a reboot the session clock restarts, so no decay is counted until
    /// it passes the stored time again, which also errs on the strict side.
    pub fn insulin_on_board(&self, now_ms: u64) -> Insulin {
        let elapsed = now_ms.saturating_sub(self.state.insulin_on_board_at_ms);
        let remaining = INSULIN_ACTION_MS.saturating_sub(elapsed);
        let on_board = u64::from(self.state.insulin_on_board.0) * remaining / INSULIN_ACTION_MS;
        // `on_board` is at most the stored u16 value because `remaining <= INSULIN_ACTION_MS`.
        Insulin(u16::try_from(on_board).unwrap_or(u16::MAX))
    }

    /// Basal rate the pump delivers at a minute of the local day and session time.
    pub fn basal_rate_at(&self, minute_of_day: u16, now_ms: u64) -> InsulinRate {
        if self.state.suspended {
            return InsulinRate(0);
        }
        let programmed = self.state.basal_profile.rate_at(minute_of_day);
        match self.state.temp_basal {
            Some(temp) if now_ms < temp.ends_at_ms() => temp_rate(temp.rate, programmed),
            _ => programmed,
        }
    }

    /// Records basal insulin that the delivery loop delivered.
    pub fn record_basal_delivery(&mut self, amount: Insulin) {
        self.state.reservoir = Insulin(self.state.reservoir.0.saturating_sub(amount.0));
        self.state.delivered_today = self
            .state
            .delivered_today
            .saturating_add(u32::from(amount.0));
    }

    /// Starts a new day's insulin total, at local midnight.
    pub fn reset_daily_total(&mut self) {
        self.state.delivered_today = 0;
    }

    /// Checks that the stored state is within the hard limits: programmed maxima at most
    /// the hard limits, and the basal profile and temporary basal at most the maximum
    /// basal rate.
    pub fn check_state(&self) -> Result<(), LimitViolation> {
        let max = &self.state.max;
        let hard = &self.limits;
        ensure(
            max.max_bolus <= hard.max_bolus,
            LimitViolation::MaxBolusAboveHardLimit,
        )?;
        ensure(
            max.max_basal <= hard.max_basal,
            LimitViolation::MaxBasalAboveHardLimit,
        )?;
        ensure(
            max.max_insulin_on_board <= hard.max_insulin_on_board,
            LimitViolation::MaxInsulinOnBoardAboveHardLimit,
        )?;
        let max_basal = self.max_basal();
        ensure(
            self.state.basal_profile.max_rate() <= max_basal,
            LimitViolation::BasalRateAboveMax,
        )?;
        match self.state.temp_basal {
            Some(temp) => self.check_temp_basal(temp.rate, temp.duration_minutes),
            None => Ok(()),
        }
    }

    /// Summary of the state for an acknowledgement.
    pub fn summary(&self, now_ms: u64) -> PumpSummary {
        PumpSummary {
            suspended: self.state.suspended,
            temp_basal_active: self
                .state
                .temp_basal
                .is_some_and(|t| now_ms < t.ends_at_ms()),
            reservoir: self.state.reservoir,
            insulin_on_board: self.insulin_on_board(now_ms),
            delivered_today: self.state.delivered_today,
            max: self.state.max,
        }
    }

    fn max_basal(&self) -> InsulinRate {
        self.limits.max_basal.min(self.state.max.max_basal)
    }

    fn check_temp_basal(&self, rate: TempBasalRate, minutes: u16) -> Result<(), LimitViolation> {
        let command = PumpCommand::TempBasal {
            rate,
            duration_minutes: minutes,
        };
        self.limits.check(&command, &self.state.max)?;
        let highest = temp_rate(rate, self.state.basal_profile.max_rate());
        ensure(
            highest <= self.max_basal(),
            LimitViolation::BasalRateAboveMax,
        )
    }

    fn check_command(
        &self,
        command: &PumpCommand,
        ctx: &DeviceContext,
    ) -> Result<(), RejectReason> {
        self.limits
            .check(command, &self.state.max)
            .map_err(RejectReason::OutOfLimits)?;
        match command {
            PumpCommand::Bolus(amount) => self.check_bolus(*amount, ctx),
            PumpCommand::TempBasal {
                rate,
                duration_minutes,
            } => {
                if self.state.suspended {
                    return Err(RejectReason::DeliverySuspended);
                }
                self.check_temp_basal(*rate, *duration_minutes)
                    .map_err(RejectReason::OutOfLimits)
            }
            PumpCommand::SetMaxBasal(rate) => {
                let fits = self.state.basal_profile.max_rate() <= *rate;
                ensure(fits, LimitViolation::MaxBasalBelowProfile)
                    .map_err(RejectReason::OutOfLimits)
            }
            _ => Ok(()),
        }
    }

    fn check_bolus(&self, amount: Insulin, ctx: &DeviceContext) -> Result<(), RejectReason> {
        if self.state.suspended {
            return Err(RejectReason::DeliverySuspended);
        }
        if !self.remote_bolus_allowed(ctx.channel_healthy) {
            return Err(RejectReason::RemoteBolusBlocked);
        }
        let violation = if amount > self.state.reservoir {
            Some(LimitViolation::ReservoirInsufficient)
        } else if u32::from(self.insulin_on_board(ctx.now_ms).0) + u32::from(amount.0)
            > u32::from(self.state.max.max_insulin_on_board.0)
        {
            Some(LimitViolation::InsulinOnBoardAboveMax)
        } else {
            None
        };
        violation.map_or(Ok(()), |v| Err(RejectReason::OutOfLimits(v)))
    }

    fn apply_command(&mut self, command: &PumpCommand, now_ms: u64) {
        let state = &mut self.state;
        match *command {
            PumpCommand::SetBasalProfile(profile) => state.basal_profile = profile,
            PumpCommand::TempBasal {
                rate,
                duration_minutes,
            } => {
                state.temp_basal = Some(ActiveTempBasal {
                    rate,
                    started_at_ms: now_ms,
                    duration_minutes,
                })
            }
            PumpCommand::Bolus(amount) => self.deliver_bolus(amount, now_ms),
            PumpCommand::Suspend => {
                state.suspended = true;
                state.temp_basal = None;
            }
            PumpCommand::Resume => state.suspended = false,
            PumpCommand::SetMaxBolus(amount) => state.max.max_bolus = amount,
            PumpCommand::SetMaxBasal(rate) => state.max.max_basal = rate,
            PumpCommand::SetMaxInsulinOnBoard(amount) => state.max.max_insulin_on_board = amount,
        }
        self.end_temp_basal_above_max();
    }

    /// Ends a running temporary basal that a new basal profile or a lower maximum basal
    /// rate would take above the maximum. The basal profile, which the checks keep at or
    /// below the maximum, takes over.
    fn end_temp_basal_above_max(&mut self) {
        if let Some(temp) = self.state.temp_basal {
            if self
                .check_temp_basal(temp.rate, temp.duration_minutes)
                .is_err()
            {
                self.state.temp_basal = None;
            }
        }
    }

    fn deliver_bolus(&mut self, amount: Insulin, now_ms: u64) {
        let on_board = self.insulin_on_board(now_ms).0.saturating_add(amount.0);
        let state = &mut self.state;
        state.reservoir = Insulin(state.reservoir.0.saturating_sub(amount.0));
        state.insulin_on_board = Insulin(on_board);
        state.insulin_on_board_at_ms = now_ms;
        state.delivered_today = state.delivered_today.saturating_add(u32::from(amount.0));
    }
}

impl Therapy for PumpTherapy {
    fn risk(&self, body: &CommandBody) -> Risk {
        body.risk(Some(&self.state.max))
    }

    fn check(&self, body: &CommandBody, ctx: &DeviceContext) -> Result<(), RejectReason> {
        match body {
            CommandBody::Pump(command) => self.check_command(command, ctx),
            _ => Err(RejectReason::WrongDeviceModel),
        }
    }

    fn apply(&mut self, body: &CommandBody, ctx: &DeviceContext) -> StateSummary {
        if let CommandBody::Pump(command) = body {
            self.apply_command(command, ctx.now_ms);
        }
        StateSummary::Pump(self.summary(ctx.now_ms))
    }
}

/// Rate of a temporary basal over a programmed rate, saturating at `u16::MAX`.
fn temp_rate(rate: TempBasalRate, programmed: InsulinRate) -> InsulinRate {
    match rate {
        TempBasalRate::Absolute(r) => r,
        TempBasalRate::Percent(p) => {
            let scaled = u32::from(programmed.0) * u32::from(p) / 100;
            InsulinRate(u16::try_from(scaled).unwrap_or(u16::MAX))
        }
    }
}
