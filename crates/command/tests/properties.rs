//! Property tests: validly signed commands with arbitrary values never move a device
//! outside its limits, and arbitrary bytes never panic the decoders or the executor.

mod common;

use common::*;
use medtunnel_command::body::{
    BasalProfile, BasalSegment, CgmCommand, PacemakerCommand, PacingMode, PumpCommand,
    TempBasalRate, MAX_BODY_LEN, MINUTES_PER_DAY,
};
use medtunnel_command::limits::CgmLimits;
use medtunnel_command::pump::PumpTherapy;
use medtunnel_command::{
    Acknowledgement, CommandBody, CommandExecutor, DeviceContext, Insulin, InsulinRate, Outcome,
    SignedCommand, Therapy,
};
use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn profile() -> impl Strategy<Value = BasalProfile> {
    let rate = prop_oneof![any::<u16>(), 0..600u16];
    let starts = prop_oneof![
        btree_set(1..MINUTES_PER_DAY, 0..24),
        btree_set(1..MINUTES_PER_DAY, 0..3)
    ];
    (starts, vec(rate, 24)).prop_map(|(starts, rates)| {
        let segments: Vec<BasalSegment> = std::iter::once(0)
            .chain(starts)
            .zip(rates)
            .map(|(start_minute, rate)| BasalSegment {
                start_minute,
                rate: InsulinRate(rate),
            })
            .collect();
        BasalProfile::new(&segments).expect("starts are sorted, unique and below 1440")
    })
}

/// Any `u16`, or more often a value near the example limits, so that sequences of
/// accepted commands occur often.
fn amount(near: u16) -> impl Strategy<Value = u16> {
    prop_oneof![1 => any::<u16>(), 3 => 0..near]
}

fn pump_command() -> impl Strategy<Value = PumpCommand> {
    prop_oneof![
        2 => profile().prop_map(PumpCommand::SetBasalProfile),
        3 => (any::<bool>(), amount(600), amount(1500)).prop_map(
            |(percent, value, duration_minutes)| {
                let rate = if percent {
                    TempBasalRate::Percent(value / 2)
                } else {
                    TempBasalRate::Absolute(InsulinRate(value))
                };
                PumpCommand::TempBasal {
                    rate,
                    duration_minutes,
                }
            }
        ),
        2 => amount(4000).prop_map(|v| PumpCommand::Bolus(Insulin(v))),
        1 => Just(PumpCommand::Suspend),
        1 => Just(PumpCommand::Resume),
        1 => amount(3000).prop_map(|v| PumpCommand::SetMaxBolus(Insulin(v))),
        1 => amount(4000).prop_map(|v| PumpCommand::SetMaxBasal(InsulinRate(v))),
        1 => amount(6000).prop_map(|v| PumpCommand::SetMaxInsulinOnBoard(Insulin(v))),
    ]
}

fn pacemaker_command() -> impl Strategy<Value = PacemakerCommand> {
    prop_oneof![
        prop::sample::select(PacingMode::ALL.to_vec()).prop_map(PacemakerCommand::SetPacingMode),
        any::<u8>().prop_map(PacemakerCommand::SetLowerRateLimit),
        any::<u8>().prop_map(PacemakerCommand::SetUpperTrackingRate),
        any::<u16>().prop_map(PacemakerCommand::SetAvDelay),
        any::<u8>().prop_map(PacemakerCommand::SetOutputAmplitude),
    ]
}

fn body() -> impl Strategy<Value = CommandBody> {
    prop_oneof![
        4 => pump_command().prop_map(CommandBody::Pump),
        2 => pacemaker_command().prop_map(CommandBody::Pacemaker),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(low_mg_dl, high_mg_dl)| {
            CommandBody::Cgm(CgmCommand::SetAlertThresholds { low_mg_dl, high_mg_dl })
        }),
    ]
}

/// One command of a run, as the device saw it.
struct Step {
    body: CommandBody,
    now_ms: u64,
    executed: bool,
}

/// Signs every body with a fresh challenge and runs it, at increasing session times and
/// with arbitrary channel health, calling `check` on the device after each command.
fn run_all<T: Therapy>(
    therapy: T,
    steps: &[(CommandBody, bool, u32)],
    check: impl Fn(&T, &Step) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let mut executor = executor(therapy);
    let mut rng = StdRng::seed_from_u64(1);
    let mut now_ms = NOW_MS;
    for (index, (body, channel_healthy, advance_ms)) in steps.iter().enumerate() {
        now_ms += u64::from(*advance_ms);
        let mut env = envelope(index as u64 + 1, *body);
        env.expires_at_ms = now_ms + 1000;
        env.challenge = Some(executor.issue_challenge(&mut rng, now_ms));
        let ctx = DeviceContext {
            now_ms,
            channel_healthy: *channel_healthy,
        };
        let ack = executor.handle(&signed_bytes(&env), ctx, |_| Ok::<(), ()>(()));
        let step = Step {
            body: *body,
            now_ms,
            executed: matches!(ack.outcome, Outcome::Executed(_)),
        };
        check(executor.therapy(), &step)?;
    }
    Ok(())
}

fn steps() -> impl Strategy<Value = Vec<(CommandBody, bool, u32)>> {
    vec((body(), any::<bool>(), 0..3_600_000u32), 1..10)
}

fn pump_steps() -> impl Strategy<Value = Vec<(CommandBody, bool, u32)>> {
    let pump_body = pump_command().prop_map(CommandBody::Pump);
    vec((pump_body, any::<bool>(), 0..3_600_000u32), 1..12)
}

fn check_pump(pump: &PumpTherapy, step: &Step) -> Result<(), TestCaseError> {
    prop_assert_eq!(pump.check_state(), Ok(()));
    // A lower maximum may leave earlier insulin above it, so the maximum insulin on board
    // binds right after an executed bolus.
    if let (true, CommandBody::Pump(PumpCommand::Bolus(amount))) = (step.executed, step.body) {
        let state = pump.state();
        prop_assert!(amount <= state.max.max_bolus);
        prop_assert!(pump.insulin_on_board(step.now_ms) <= state.max.max_insulin_on_board);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn signed_commands_keep_pump_within_limits(steps in pump_steps()) {
        run_all(pump(), &steps, check_pump)?;
    }

    #[test]
    fn signed_commands_keep_pacemaker_within_limits(steps in steps()) {
        run_all(pacemaker(), &steps, |unit, _step| {
            prop_assert_eq!(unit.check_state(), Ok(()));
            Ok(())
        })?;
    }

    #[test]
    fn signed_commands_keep_cgm_within_limits(steps in steps()) {
        run_all(cgm(), &steps, |monitor, _step| {
            prop_assert_eq!(CgmLimits::EXAMPLE.check_thresholds(monitor.thresholds()), Ok(()));
            Ok(())
        })?;
    }

    #[test]
    fn executed_bolus_never_exceeds_max(amount in any::<u16>(), healthy_channel in any::<bool>()) {
        let mut executor = executor(pump());
        let mut rng = StdRng::seed_from_u64(2);
        let mut env = envelope(1, CommandBody::Pump(PumpCommand::Bolus(Insulin(amount))));
        env.challenge = Some(executor.issue_challenge(&mut rng, NOW_MS));
        let ctx = DeviceContext { now_ms: NOW_MS, channel_healthy: healthy_channel };
        let ack = executor.handle(&signed_bytes(&env), ctx, |_| Ok::<(), ()>(()));
        if let Outcome::Executed(_) = ack.outcome {
            prop_assert!(healthy_channel);
            prop_assert!(Insulin(amount) <= pump_state().max.max_bolus);
            prop_assert_eq!(executor.therapy().state().delivered_today, u32::from(amount));
        } else {
            prop_assert_eq!(executor.therapy().state(), &pump_state());
        }
    }
}

proptest! {
    #[test]
    fn body_round_trips(body in body()) {
        let mut out = [0u8; MAX_BODY_LEN];
        let len = body.encode(&mut out).unwrap();
        prop_assert_eq!(CommandBody::decode(&out[..len]), Ok(body));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = CommandBody::decode(&bytes);
        let _ = SignedCommand::decode(&bytes);
        let _ = Acknowledgement::decode(&bytes);
    }

    #[test]
    fn arbitrary_payload_changes_nothing(bytes in vec(any::<u8>(), 0..300)) {
        let mut executor: CommandExecutor<PumpTherapy> = executor(pump());
        let ack = executor.handle(&bytes, healthy(NOW_MS), |_| Ok::<(), ()>(()));
        prop_assert!(matches!(ack.outcome, Outcome::Rejected(_)));
        prop_assert_eq!(executor.therapy().state(), &pump_state());
    }

    #[test]
    fn changed_byte_of_signed_command_is_rejected(
        body in body(),
        index in any::<prop::sample::Index>(),
        flip in 1..=u8::MAX,
    ) {
        let bytes = signed_bytes(&envelope(1, body));
        let mut changed = bytes.clone();
        changed[index.index(bytes.len())] ^= flip;
        let mut executor = executor(pump());
        let before = *executor.therapy().state();
        let ack = executor.handle(&changed, healthy(NOW_MS), |_| Ok::<(), ()>(()));
        prop_assert!(matches!(ack.outcome, Outcome::Rejected(_)));
        prop_assert_eq!(executor.therapy().state(), &before);
    }
}
