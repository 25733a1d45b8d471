//! Device-side execution: every check of the executor, in order, and the device models'
//! own limits.

mod common;

use common::*;
use medtunnel_command::body::{
    BasalProfile, CgmCommand, PacemakerCommand, PacingMode, PumpCommand, TempBasalRate,
};
use medtunnel_command::limits::LimitViolation;
use medtunnel_command::{
    Acknowledgement, CommandBody, CommandExecutor, DeviceContext, ExecutionRecord, Insulin,
    InsulinRate, Outcome, RejectReason, StateSummary, Therapy,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn bolus(units_hundredths: u16) -> CommandBody {
    CommandBody::Pump(PumpCommand::Bolus(Insulin(units_hundredths)))
}

fn rejected(ack: &Acknowledgement) -> Option<RejectReason> {
    match ack.outcome {
        Outcome::Rejected(reason) => Some(reason),
        Outcome::Executed(_) => None,
    }
}

fn run<T: Therapy>(
    executor: &mut CommandExecutor<T>,
    bytes: &[u8],
    ctx: DeviceContext,
) -> Acknowledgement {
    executor.handle(bytes, ctx, |_| Ok::<(), ()>(()))
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

#[test]
fn routine_command_executes_and_acknowledges() {
    let mut executor = executor(pump());
    let env = envelope(1, bolus(250));
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));

    assert_eq!(ack.command_id, env.command_id);
    assert_eq!(ack.sequence, 1);
    let Outcome::Executed(StateSummary::Pump(summary)) = ack.outcome else {
        panic!("expected an executed pump command, got {ack:?}");
    };
    assert_eq!(summary.insulin_on_board, Insulin(250));
    assert_eq!(summary.reservoir, Insulin(20_000 - 250));
    assert_eq!(summary.delivered_today, 250);
    assert_eq!(executor.last_executed().sequence, 1);
}

#[test]
fn malformed_payload_is_rejected() {
    let mut executor = executor(pump());
    let ack = run(&mut executor, &[1, 2, 3], healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::Malformed));
    assert_eq!(ack.command_id, [0; 16]);
    assert_eq!(ack.sequence, 0);
}

#[test]
fn command_signed_by_other_key_is_rejected() {
    let mut executor = executor(pump());
    let env = envelope(1, bolus(100));
    let other = ed25519_dalek::SigningKey::from_bytes(&[0x99; 32]);
    let mut out = [0u8; 256];
    let len = env.sign(&other).encode(&mut out).unwrap();
    let ack = run(&mut executor, &out[..len], healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::SignatureInvalid));
    assert_eq!(executor.therapy().state(), &pump_state());
}

#[test]
fn wrong_device_id_is_rejected() {
    let mut executor = executor(pump());
    let mut env = envelope(1, bolus(100));
    env.device_id[0] ^= 1;
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::WrongDevice));
}

#[test]
fn other_epoch_is_rejected() {
    let mut executor = executor(pump());
    for epoch in [EPOCH - 1, EPOCH + 1] {
        let mut env = envelope(1, bolus(100));
        env.epoch = epoch;
        let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
        assert_eq!(
            rejected(&ack),
            Some(RejectReason::WrongEpoch),
            "epoch {epoch}"
        );
    }
}

#[test]
fn replay_after_execution_is_rejected() {
    let mut executor = executor(pump());
    let bytes = signed_bytes(&envelope(1, bolus(100)));
    assert_eq!(rejected(&run(&mut executor, &bytes, healthy(NOW_MS))), None);
    let state = *executor.therapy().state();

    let again = run(&mut executor, &bytes, healthy(NOW_MS));
    assert_eq!(rejected(&again), Some(RejectReason::AlreadyExecuted));
    assert_eq!(
        executor.therapy().state(),
        &state,
        "second delivery changes nothing"
    );

    let mut same_sequence = envelope(1, bolus(100));
    same_sequence.command_id = [0xEE; 16];
    let ack = run(
        &mut executor,
        &signed_bytes(&same_sequence),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::Replayed));
}

#[test]
fn held_back_older_command_is_rejected() {
    let mut executor = executor(pump());
    let older = signed_bytes(&envelope(4, bolus(100)));
    let newer = signed_bytes(&envelope(5, bolus(100)));
    assert_eq!(rejected(&run(&mut executor, &newer, healthy(NOW_MS))), None);
    let ack = run(&mut executor, &older, healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::Replayed));
}

#[test]
fn restored_executor_rejects_replay_after_reboot() {
    let mut stored = [0u8; 24];
    let bytes = signed_bytes(&envelope(3, bolus(100)));
    {
        let mut executor = executor(pump());
        let ack = executor.handle(&bytes, healthy(NOW_MS), |record| {
            stored = record.to_bytes();
            Ok::<(), ()>(())
        });
        assert_eq!(rejected(&ack), None);
    }

    // Same epoch: the restored record alone stops the replay.
    let restored = ExecutionRecord::from_bytes(&stored);
    let mut rebooted = CommandExecutor::new(config(), restored, pump());
    let ack = run(&mut rebooted, &bytes, healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::AlreadyExecuted));

    // Without the record the same command would run again.
    let mut forgetful = CommandExecutor::new(config(), ExecutionRecord::default(), pump());
    assert_eq!(
        rejected(&run(&mut forgetful, &bytes, healthy(NOW_MS))),
        None
    );
}

#[test]
fn command_from_before_reboot_is_rejected_for_epoch() {
    let bytes = signed_bytes(&envelope(3, bolus(100)));
    let mut next_boot = config();
    next_boot.epoch = EPOCH + 1;
    let mut rebooted = CommandExecutor::new(next_boot, ExecutionRecord::default(), pump());
    // The session clock restarted, so the expiry alone would look fresh again.
    let ack = run(&mut rebooted, &bytes, healthy(10));
    assert_eq!(rejected(&ack), Some(RejectReason::WrongEpoch));
}

#[test]
fn expired_command_is_rejected() {
    let mut executor = executor(pump());
    let env = envelope(1, bolus(100));
    let bytes = signed_bytes(&env);
    let ack = run(&mut executor, &bytes, healthy(env.expires_at_ms + 1));
    assert_eq!(rejected(&ack), Some(RejectReason::Expired));
    let ack = run(&mut executor, &bytes, healthy(env.expires_at_ms));
    assert_eq!(
        rejected(&ack),
        None,
        "the expiry instant itself is still valid"
    );
}

#[test]
fn failed_persist_executes_nothing() {
    let mut executor = executor(pump());
    let bytes = signed_bytes(&envelope(1, bolus(100)));
    let ack = executor.handle(&bytes, healthy(NOW_MS), |_| Err("flash write failed"));
    assert_eq!(rejected(&ack), Some(RejectReason::PersistFailed));
    assert_eq!(executor.therapy().state(), &pump_state());
    assert_eq!(executor.last_executed(), &ExecutionRecord::default());
}

#[test]
fn dropped_preparation_executes_nothing() {
    let mut executor = executor(pump());
    let bytes = signed_bytes(&envelope(1, bolus(100)));
    {
        let prepared = executor.prepare(&bytes, healthy(NOW_MS)).unwrap();
        assert_eq!(prepared.record_to_persist().sequence, 1);
    }
    assert_eq!(executor.therapy().state(), &pump_state());
    assert_eq!(executor.last_executed().sequence, 0);
}

#[test]
fn high_risk_command_needs_challenge() {
    let mut executor = executor(pump());
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, bolus(1200))),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeMissing));

    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    let mut env = envelope(2, bolus(1200));
    env.challenge = Some(challenge);
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    assert_eq!(rejected(&ack), None);
}

#[test]
fn challenge_is_single_use() {
    let mut executor = executor(pump());
    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    let mut first = envelope(1, bolus(1100));
    first.challenge = Some(challenge);
    assert_eq!(
        rejected(&run(&mut executor, &signed_bytes(&first), healthy(NOW_MS))),
        None
    );

    let mut second = envelope(2, bolus(1100));
    second.challenge = Some(challenge);
    let ack = run(&mut executor, &signed_bytes(&second), healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeUnknown));
}

#[test]
fn challenge_is_used_up_by_rejected_command() {
    let mut executor = executor(pump());
    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    // Above the programmed maximum bolus of 15 U: rejected after the challenge check.
    let mut too_large = envelope(1, bolus(1600));
    too_large.challenge = Some(challenge);
    let ack = run(&mut executor, &signed_bytes(&too_large), healthy(NOW_MS));
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::OutOfLimits(LimitViolation::BolusAboveMax))
    );

    let mut retry = envelope(2, bolus(1100));
    retry.challenge = Some(challenge);
    let ack = run(&mut executor, &signed_bytes(&retry), healthy(NOW_MS));
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeUnknown));
}

#[test]
fn expired_challenge_is_rejected() {
    let mut executor = executor(pump());
    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    let mut env = envelope(1, bolus(1100));
    env.challenge = Some(challenge);
    let late = NOW_MS + executor.config().challenge_lifetime_ms + 1;
    env.expires_at_ms = late + 1;
    let ack = run(&mut executor, &signed_bytes(&env), healthy(late));
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeExpired));
}

#[test]
fn unknown_or_replaced_challenge_is_rejected() {
    let mut executor = executor(pump());
    let mut env = envelope(1, bolus(1100));
    env.challenge = Some([0x55; 16]);
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::ChallengeUnknown),
        "never issued"
    );

    let mut rng = rng();
    let old = executor.issue_challenge(&mut rng, NOW_MS);
    let _new = executor.issue_challenge(&mut rng, NOW_MS);
    let mut env = envelope(2, bolus(1100));
    env.challenge = Some(old);
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::ChallengeUnknown),
        "replaced"
    );
}

#[test]
fn pacemaker_changes_need_challenge() {
    let mut executor = executor(pacemaker());
    let body = CommandBody::Pacemaker(PacemakerCommand::SetAvDelay(200));
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, body)),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeMissing));
}

#[test]
fn raising_maximum_needs_challenge() {
    let mut executor = executor(pump());
    let raise = CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(2000)));
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, raise)),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::ChallengeMissing));

    let lower = CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(1000)));
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(2, lower)),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), None);
    assert_eq!(executor.therapy().state().max.max_bolus, Insulin(1000));
}

#[test]
fn command_for_other_model_is_rejected() {
    let mut executor = executor(cgm());
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, bolus(100))),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::WrongDeviceModel));
}

/// Runs a high-risk-capable command with a fresh challenge on a fresh executor.
fn run_with_challenge<T: Therapy>(
    therapy: T,
    body: CommandBody,
) -> (Acknowledgement, CommandExecutor<T>) {
    let mut executor = executor(therapy);
    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    let mut env = envelope(1, body);
    env.challenge = Some(challenge);
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    (ack, executor)
}

#[test]
fn each_pump_limit_is_enforced() {
    let profile_above_max = BasalProfile::flat(InsulinRate(501));
    let cases = [
        (bolus(0), LimitViolation::BolusZero),
        (bolus(1501), LimitViolation::BolusAboveMax),
        (
            CommandBody::Pump(PumpCommand::SetBasalProfile(profile_above_max)),
            LimitViolation::BasalRateAboveMax,
        ),
        (
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Absolute(InsulinRate(501)),
                duration_minutes: 60,
            }),
            LimitViolation::BasalRateAboveMax,
        ),
        (
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Percent(251),
                duration_minutes: 60,
            }),
            LimitViolation::TempBasalPercentAboveMax,
        ),
        (
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Percent(120),
                duration_minutes: 14,
            }),
            LimitViolation::TempBasalDurationOutOfRange,
        ),
        (
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Percent(120),
                duration_minutes: 1441,
            }),
            LimitViolation::TempBasalDurationOutOfRange,
        ),
        (
            CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(2501))),
            LimitViolation::MaxBolusAboveHardLimit,
        ),
        (
            CommandBody::Pump(PumpCommand::SetMaxBasal(InsulinRate(3501))),
            LimitViolation::MaxBasalAboveHardLimit,
        ),
        (
            CommandBody::Pump(PumpCommand::SetMaxInsulinOnBoard(Insulin(5001))),
            LimitViolation::MaxInsulinOnBoardAboveHardLimit,
        ),
        (
            CommandBody::Pump(PumpCommand::SetMaxBasal(InsulinRate(119))),
            LimitViolation::MaxBasalBelowProfile,
        ),
    ];
    for (body, violation) in cases {
        let (ack, executor) = run_with_challenge(pump(), body);
        assert_eq!(
            rejected(&ack),
            Some(RejectReason::OutOfLimits(violation)),
            "{body:?}"
        );
        assert_eq!(
            executor.therapy().state(),
            &pump_state(),
            "{body:?} changed the state"
        );
        assert_eq!(executor.last_executed().sequence, 0, "{body:?}");
    }
}

#[test]
fn percent_temp_basal_above_max_basal_is_rejected() {
    // The highest profile rate is 1.20 U/h and the maximum basal 5.00 U/h: 250 % stays
    // below, but after lowering the maximum to 2.00 U/h it does not.
    let mut state = pump_state();
    state.max.max_basal = InsulinRate(200);
    let therapy = medtunnel_command::pump::PumpTherapy::new(*pump().limits(), state);
    let body = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(250),
        duration_minutes: 60,
    });
    let (ack, _) = run_with_challenge(therapy, body);
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::OutOfLimits(LimitViolation::BasalRateAboveMax))
    );
}

#[test]
fn bolus_limited_by_pump_state() {
    let mut state = pump_state();
    state.reservoir = Insulin(300);
    let low = medtunnel_command::pump::PumpTherapy::new(*pump().limits(), state);
    let (ack, _) = run_with_challenge(low, bolus(301));
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::OutOfLimits(
            LimitViolation::ReservoirInsufficient
        ))
    );

    let mut state = pump_state();
    state.insulin_on_board = Insulin(2500);
    state.insulin_on_board_at_ms = NOW_MS;
    let loaded = medtunnel_command::pump::PumpTherapy::new(*pump().limits(), state);
    let (ack, _) = run_with_challenge(loaded, bolus(501));
    assert_eq!(
        rejected(&ack),
        Some(RejectReason::OutOfLimits(
            LimitViolation::InsulinOnBoardAboveMax
        ))
    );
}

#[test]
fn each_pacemaker_limit_is_enforced() {
    let cases = [
        (
            PacemakerCommand::SetLowerRateLimit(29),
            LimitViolation::LowerRateOutOfRange,
        ),
        (
            PacemakerCommand::SetLowerRateLimit(176),
            LimitViolation::LowerRateOutOfRange,
        ),
        (
            PacemakerCommand::SetLowerRateLimit(130),
            LimitViolation::LowerRateNotBelowUpperTracking,
        ),
        (
            PacemakerCommand::SetUpperTrackingRate(79),
            LimitViolation::UpperTrackingRateOutOfRange,
        ),
        (
            PacemakerCommand::SetUpperTrackingRate(186),
            LimitViolation::UpperTrackingRateOutOfRange,
        ),
        (
            PacemakerCommand::SetAvDelay(29),
            LimitViolation::AvDelayOutOfRange,
        ),
        (
            PacemakerCommand::SetAvDelay(351),
            LimitViolation::AvDelayOutOfRange,
        ),
        (
            PacemakerCommand::SetOutputAmplitude(0),
            LimitViolation::AmplitudeOutOfRange,
        ),
        (
            PacemakerCommand::SetOutputAmplitude(76),
            LimitViolation::AmplitudeOutOfRange,
        ),
    ];
    for (command, violation) in cases {
        let (ack, executor) = run_with_challenge(pacemaker(), CommandBody::Pacemaker(command));
        assert_eq!(
            rejected(&ack),
            Some(RejectReason::OutOfLimits(violation)),
            "{command:?}"
        );
        assert_eq!(
            executor.therapy().settings(),
            &pacemaker_settings(),
            "{command:?}"
        );
    }
}

#[test]
fn pacemaker_limits_accept_their_bounds() {
    let cases = [
        PacemakerCommand::SetPacingMode(PacingMode::Vvi),
        PacemakerCommand::SetLowerRateLimit(30),
        PacemakerCommand::SetUpperTrackingRate(185),
        PacemakerCommand::SetAvDelay(30),
        PacemakerCommand::SetAvDelay(350),
        PacemakerCommand::SetOutputAmplitude(1),
        PacemakerCommand::SetOutputAmplitude(75),
    ];
    for command in cases {
        let (ack, executor) = run_with_challenge(pacemaker(), CommandBody::Pacemaker(command));
        assert_eq!(rejected(&ack), None, "{command:?}");
        assert!(executor.therapy().check_state().is_ok(), "{command:?}");
    }
}

#[test]
fn each_cgm_limit_is_enforced() {
    let cases = [
        (54, 250, LimitViolation::LowThresholdOutOfRange),
        (101, 250, LimitViolation::LowThresholdOutOfRange),
        (70, 119, LimitViolation::HighThresholdOutOfRange),
        (70, 401, LimitViolation::HighThresholdOutOfRange),
    ];
    for (low_mg_dl, high_mg_dl, violation) in cases {
        let body = CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        });
        let mut executor = executor(cgm());
        let ack = run(
            &mut executor,
            &signed_bytes(&envelope(1, body)),
            healthy(NOW_MS),
        );
        assert_eq!(
            rejected(&ack),
            Some(RejectReason::OutOfLimits(violation)),
            "{body:?}"
        );
        assert_eq!(executor.therapy().thresholds(), cgm().thresholds());
    }
}

#[test]
fn silent_channel_blocks_remote_bolus_and_keeps_basal() {
    let mut executor = executor(pump());
    let before = executor.therapy().basal_rate_at(480, NOW_MS);
    let silent = DeviceContext {
        now_ms: NOW_MS,
        channel_healthy: false,
    };
    assert!(!executor.therapy().remote_bolus_allowed(false));
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, bolus(100))),
        silent,
    );
    assert_eq!(rejected(&ack), Some(RejectReason::RemoteBolusBlocked));
    assert_eq!(executor.therapy().basal_rate_at(480, NOW_MS), before);
    assert_eq!(before, InsulinRate(120));

    let suspend = CommandBody::Pump(PumpCommand::Suspend);
    let ack = run(&mut executor, &signed_bytes(&envelope(2, suspend)), silent);
    assert_eq!(
        rejected(&ack),
        None,
        "commands other than a bolus still run"
    );
}

#[test]
fn silent_channel_keeps_pacemaker_settings() {
    let mut executor = executor(pacemaker());
    let challenge = executor.issue_challenge(&mut rng(), NOW_MS);
    let mut env = envelope(
        1,
        CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(50)),
    );
    env.challenge = Some(challenge);
    let silent = DeviceContext {
        now_ms: NOW_MS,
        channel_healthy: false,
    };
    assert_eq!(
        rejected(&run(&mut executor, &signed_bytes(&env), silent)),
        None
    );
    assert_eq!(executor.therapy().settings().lower_rate_ppm, 50);
    assert_eq!(executor.therapy().settings().mode, PacingMode::Ddd);
}

#[test]
fn suspended_pump_delivers_nothing_until_resumed() {
    let mut executor = executor(pump());
    let suspend = CommandBody::Pump(PumpCommand::Suspend);
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(1, suspend)),
            healthy(NOW_MS)
        )),
        None
    );
    assert_eq!(
        executor.therapy().basal_rate_at(480, NOW_MS),
        InsulinRate(0)
    );
    assert!(!executor.therapy().remote_bolus_allowed(true));

    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(2, bolus(100))),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::DeliverySuspended));
    let temp = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(50),
        duration_minutes: 60,
    });
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(3, temp)),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), Some(RejectReason::DeliverySuspended));

    let resume = CommandBody::Pump(PumpCommand::Resume);
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(4, resume)),
            healthy(NOW_MS)
        )),
        None
    );
    assert_eq!(
        executor.therapy().basal_rate_at(480, NOW_MS),
        InsulinRate(120)
    );
}

#[test]
fn temp_basal_runs_for_its_duration() {
    let mut executor = executor(pump());
    let temp = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(50),
        duration_minutes: 30,
    });
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(1, temp)),
            healthy(NOW_MS)
        )),
        None
    );
    let pump = executor.therapy();
    assert_eq!(pump.basal_rate_at(480, NOW_MS), InsulinRate(60));
    assert_eq!(
        pump.basal_rate_at(480, NOW_MS + 30 * 60_000),
        InsulinRate(120)
    );
}

#[test]
fn lowering_max_basal_ends_temp_basal_above_it() {
    let mut executor = executor(pump());
    let temp = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Absolute(InsulinRate(400)),
        duration_minutes: 120,
    });
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(1, temp)),
            healthy(NOW_MS)
        )),
        None
    );
    let lower = CommandBody::Pump(PumpCommand::SetMaxBasal(InsulinRate(300)));
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(2, lower)),
            healthy(NOW_MS)
        )),
        None
    );
    assert_eq!(executor.therapy().state().temp_basal, None);
    assert!(executor.therapy().check_state().is_ok());
}

#[test]
fn insulin_on_board_decays_over_action_time() {
    let mut executor = executor(pump());
    assert_eq!(
        rejected(&run(
            &mut executor,
            &signed_bytes(&envelope(1, bolus(400))),
            healthy(NOW_MS)
        )),
        None
    );
    let pump = executor.therapy();
    let half = medtunnel_command::pump::INSULIN_ACTION_MS / 2;
    assert_eq!(pump.insulin_on_board(NOW_MS), Insulin(400));
    assert_eq!(pump.insulin_on_board(NOW_MS + half), Insulin(200));
    assert_eq!(pump.insulin_on_board(NOW_MS + 2 * half), Insulin(0));
}

#[test]
fn acknowledgement_from_executor_encodes() {
    let mut executor = executor(pump());
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, bolus(100))),
        healthy(NOW_MS),
    );
    let mut out = [0u8; medtunnel_command::ack::MAX_ACK_LEN];
    let len = ack.encode(&mut out).unwrap();
    assert_eq!(Acknowledgement::decode(&out[..len]), Ok(ack));
}

#[test]
fn new_profile_ends_temp_basal_above_max() {
    let mut executor = executor(pump());
    let temp = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(250),
        duration_minutes: 120,
    });
    let ack = run(
        &mut executor,
        &signed_bytes(&envelope(1, temp)),
        healthy(NOW_MS),
    );
    assert_eq!(rejected(&ack), None);

    // 250 % of 4.00 U/h would be 10.00 U/h, above the maximum basal rate of 5.00 U/h.
    let profile = CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
        InsulinRate(400),
    )));
    let mut env = envelope(2, profile);
    env.challenge = Some(executor.issue_challenge(&mut rng(), NOW_MS));
    let ack = run(&mut executor, &signed_bytes(&env), healthy(NOW_MS));
    assert_eq!(rejected(&ack), None);
    assert_eq!(executor.therapy().state().temp_basal, None);
    assert_eq!(executor.therapy().check_state(), Ok(()));
    assert_eq!(
        executor.therapy().basal_rate_at(0, NOW_MS),
        InsulinRate(400)
    );
}
