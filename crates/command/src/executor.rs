//! Device-side execution of signed commands, at most once each, also across reboots.
//!
//! # How the device calls it
//!
//! 1. At boot, increment the persisted boot counter and build a [`CommandExecutor`] from
//!    it, the provisioned command-signing public key, the persisted [`ExecutionRecord`]
//!    and the device model restored from storage. Report the epoch and session clock to
//!    the cloud.
//! 2. When the cloud announces a high-risk command, call
//!    [`CommandExecutor::issue_challenge`] and send the challenge to the cloud.
//! 3. For each command payload from the tunnel, call [`CommandExecutor::prepare`]. On
//!    success, persist [`Prepared::record_to_persist`] durably, then call
//!    [`Prepared::execute`]. [`CommandExecutor::handle`] does these steps with a persist
//!    callback.
//! 4. Send the returned [`Acknowledgement`] back through the tunnel.
//!
//! Because the record is persisted before the command runs, a power loss between the two
//! leaves the command unexecuted but marked as done: the device runs every command at
//! most once, and the missing or rejected acknowledgement tells the cloud to issue a new
//! command with a new sequence.

use ed25519_dalek::VerifyingKey;
use rand_core::{CryptoRng, RngCore};

use crate::ack::{Acknowledgement, Outcome, RejectReason, StateSummary};
use crate::body::CommandBody;
use crate::envelope::{Challenge, CommandEnvelope, CommandId, DeviceId, SignedCommand};
use crate::risk::Risk;

/// Default lifetime of a device challenge: 60 seconds on the session clock.
pub const DEFAULT_CHALLENGE_LIFETIME_MS: u64 = 60_000;

/// Device conditions when a command arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceContext {
    /// Session clock: milliseconds since this boot.
    pub now_ms: u64,
    /// Whether an authenticated frame arrived within the configured silence.
    pub channel_healthy: bool,
}

/// A device model that commands act on.
pub trait Therapy {
    /// Classifies a body with the device's own view of its settings.
    fn risk(&self, body: &CommandBody) -> Risk;
    /// Checks a body against the device's hard limits and state, without changing it.
    fn check(&self, body: &CommandBody, ctx: &DeviceContext) -> Result<(), RejectReason>;
    /// Applies a body that [`Therapy::check`] accepted in the same state, and returns the
    /// state afterwards. Cannot fail.
    fn apply(&mut self, body: &CommandBody, ctx: &DeviceContext) -> StateSummary;
}

/// The last executed command: what the device persists to stay exactly-once across
/// reboots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ExecutionRecord {
    /// Sequence of the last executed command, 0 before the first.
    pub sequence: u64,
    /// Id of the last executed command.
    pub command_id: CommandId,
}

/// Length of [`ExecutionRecord::to_bytes`].
pub const EXECUTION_RECORD_LEN: usize = 24;

impl ExecutionRecord {
    /// Encodes the record for storage: sequence (big-endian u64), then command id.
    pub fn to_bytes(&self) -> [u8; EXECUTION_RECORD_LEN] {
        let mut out = [0u8; EXECUTION_RECORD_LEN];
        out[..8].copy_from_slice(&self.sequence.to_be_bytes());
        out[8..].copy_from_slice(&self.command_id);
        out
    }

    /// Decodes a record written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8; EXECUTION_RECORD_LEN]) -> Self {
        let mut sequence = [0u8; 8];
        sequence.copy_from_slice(&bytes[..8]);
        let mut command_id = [0u8; 16];
        command_id.copy_from_slice(&bytes[8..]);
        Self {
            sequence: u64::from_be_bytes(sequence),
            command_id,
        }
    }
}

/// Provisioned identity and trust of the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// This device's id.
    pub device_id: DeviceId,
    /// This boot's epoch: the persisted boot counter after incrementing it at boot.
    pub epoch: u32,
    /// Public half of the cloud's command-signing key.
    pub command_key: VerifyingKey,
    /// Lifetime of an issued challenge in milliseconds.
    pub challenge_lifetime_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OutstandingChallenge {
    value: Challenge,
    expires_at_ms: u64,
}

/// Checks and executes signed commands for one device model.
///
/// Checks run in this order, and the first failure rejects the command: decoding, the
/// signature, the device id, the epoch, the sequence, the expiry, the challenge, and the
/// device model's own limits. A rejected command changes nothing except that a challenge
/// it presented is used up.
#[derive(Debug)]
pub struct CommandExecutor<T> {
    config: ExecutorConfig,
    last: ExecutionRecord,
    challenge: Option<OutstandingChallenge>,
    therapy: T,
}

impl<T: Therapy> CommandExecutor<T> {
    /// Creates the executor at boot. `last_executed` is the record persisted before the
    /// reboot, or the default record on first boot.
    pub fn new(config: ExecutorConfig, last_executed: ExecutionRecord, therapy: T) -> Self {
        Self {
            config,
            last: last_executed,
            challenge: None,
            therapy,
        }
    }

    /// Issues a fresh challenge valid for the configured lifetime. It replaces any
    /// outstanding one, and the first verified command that presents it uses it up.
    pub fn issue_challenge<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
        now_ms: u64,
    ) -> Challenge {
        let mut value = [0u8; 16];
        rng.fill_bytes(&mut value);
        self.challenge = Some(OutstandingChallenge {
            value,
            expires_at_ms: now_ms.saturating_add(self.config.challenge_lifetime_ms),
        });
        value
    }

    /// Runs every check on a command payload. On success the caller persists
    /// [`Prepared::record_to_persist`] and then calls [`Prepared::execute`]; on failure
    /// it sends the returned acknowledgement.
    pub fn prepare(
        &mut self,
        bytes: &[u8],
        ctx: DeviceContext,
    ) -> Result<Prepared<'_, T>, Acknowledgement> {
        let Ok(command) = SignedCommand::decode(bytes) else {
            return Err(rejection([0; 16], 0, RejectReason::Malformed));
        };
        let envelope = *command.envelope();
        let reject = |reason| rejection(envelope.command_id, envelope.sequence, reason);

        if command.verify(&self.config.command_key).is_err() {
            return Err(reject(RejectReason::SignatureInvalid));
        }
        self.check_envelope(&envelope, &ctx).map_err(reject)?;
        self.check_challenge(&envelope, &ctx).map_err(reject)?;
        self.therapy.check(&envelope.body, &ctx).map_err(reject)?;
        Ok(Prepared {
            executor: self,
            envelope,
            ctx,
        })
    }

    /// Prepares, persists through `persist`, and executes a command payload. When
    /// `persist` fails the command does not run and is rejected with
    /// [`RejectReason::PersistFailed`].
    pub fn handle<E>(
        &mut self,
        bytes: &[u8],
        ctx: DeviceContext,
        persist: impl FnOnce(&ExecutionRecord) -> Result<(), E>,
    ) -> Acknowledgement {
        let prepared = match self.prepare(bytes, ctx) {
            Ok(prepared) => prepared,
            Err(ack) => return ack,
        };
        if persist(&prepared.record_to_persist()).is_err() {
            let envelope = prepared.envelope;
            return rejection(
                envelope.command_id,
                envelope.sequence,
                RejectReason::PersistFailed,
            );
        }
        prepared.execute()
    }

    /// The last executed command.
    pub fn last_executed(&self) -> &ExecutionRecord {
        &self.last
    }

    /// Provisioned configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Device model.
    pub fn therapy(&self) -> &T {
        &self.therapy
    }

    /// Device model, for the device's own loops (basal delivery, telemetry). Commands
    /// from the network reach it only through [`Self::prepare`].
    pub fn therapy_mut(&mut self) -> &mut T {
        &mut self.therapy
    }

    fn check_envelope(
        &self,
        envelope: &CommandEnvelope,
        ctx: &DeviceContext,
    ) -> Result<(), RejectReason> {
        if envelope.device_id != self.config.device_id {
            return Err(RejectReason::WrongDevice);
        }
        if envelope.epoch != self.config.epoch {
            return Err(RejectReason::WrongEpoch);
        }
        if envelope.sequence == self.last.sequence && envelope.command_id == self.last.command_id {
            return Err(RejectReason::AlreadyExecuted);
        }
        if envelope.sequence <= self.last.sequence {
            return Err(RejectReason::Replayed);
        }
        if ctx.now_ms > envelope.expires_at_ms {
            return Err(RejectReason::Expired);
        }
        Ok(())
    }

    /// Checks the challenge and uses up the outstanding one when the command presents it.
    fn check_challenge(
        &mut self,
        envelope: &CommandEnvelope,
        ctx: &DeviceContext,
    ) -> Result<(), RejectReason> {
        let Some(presented) = envelope.challenge else {
            return match self.therapy.risk(&envelope.body) {
                Risk::High => Err(RejectReason::ChallengeMissing),
                Risk::Routine => Ok(()),
            };
        };
        let outstanding = match self.challenge {
            Some(c) if c.value == presented => c,
            _ => return Err(RejectReason::ChallengeUnknown),
        };
        self.challenge = None;
        if ctx.now_ms > outstanding.expires_at_ms {
            return Err(RejectReason::ChallengeExpired);
        }
        Ok(())
    }
}

/// A command that passed every check and waits for its execution record to be
/// persisted. Dropping it executes nothing.
#[derive(Debug)]
pub struct Prepared<'a, T: Therapy> {
    executor: &'a mut CommandExecutor<T>,
    envelope: CommandEnvelope,
    ctx: DeviceContext,
}

impl<T: Therapy> Prepared<'_, T> {
    /// Record to persist durably before calling [`Self::execute`].
    pub fn record_to_persist(&self) -> ExecutionRecord {
        ExecutionRecord {
            sequence: self.envelope.sequence,
            command_id: self.envelope.command_id,
        }
    }

    /// Authenticated envelope of the command.
    pub fn envelope(&self) -> &CommandEnvelope {
        &self.envelope
    }

    /// Executes the command and returns the acknowledgement to send.
    pub fn execute(self) -> Acknowledgement {
        self.executor.last = self.record_to_persist();
        let summary = self.executor.therapy.apply(&self.envelope.body, &self.ctx);
        Acknowledgement {
            command_id: self.envelope.command_id,
            sequence: self.envelope.sequence,
            outcome: Outcome::Executed(summary),
        }
    }
}

fn rejection(command_id: CommandId, sequence: u64, reason: RejectReason) -> Acknowledgement {
    Acknowledgement {
        command_id,
        sequence,
        outcome: Outcome::Rejected(reason),
    }
}
