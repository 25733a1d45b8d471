//! Property test: no request, from any role, with any value, and with any clinician
//! co-signing, is approved for a value outside the patient's bounds or the device's hard
//! limits.

mod common;

use common::*;
use medtunnel_command::body::{
    BasalProfile, BasalSegment, CgmCommand, PacemakerCommand, PacingMode, PumpCommand,
    TempBasalRate,
};
use medtunnel_command::limits::{CgmLimits, PacemakerLimits, PumpLimits};
use medtunnel_command::{CommandBody, DeviceLimits, Insulin, InsulinRate};
use medtunnel_policy::{
    cosign, evaluate, evaluate_reviewed, ChangeRequest, Decision, PatientPolicy, Person,
    PolicyContext, Role,
};
use proptest::prelude::*;

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![
        Role::Patient,
        Role::Caregiver,
        Role::Clinician,
        Role::Researcher,
        Role::Operator,
        Role::Auditor,
    ])
}

fn pump_body() -> impl Strategy<Value = PumpCommand> {
    prop_oneof![
        (any::<u16>(), 1..400u16).prop_map(|(rate, second)| {
            let segments = [
                BasalSegment {
                    start_minute: 0,
                    rate: InsulinRate(rate),
                },
                BasalSegment {
                    start_minute: 600,
                    rate: InsulinRate(second),
                },
            ];
            PumpCommand::SetBasalProfile(BasalProfile::new(&segments).unwrap())
        }),
        (any::<bool>(), 0..1000u16, any::<u16>()).prop_map(|(percent, value, duration_minutes)| {
            let rate = if percent {
                TempBasalRate::Percent(value)
            } else {
                TempBasalRate::Absolute(InsulinRate(value))
            };
            PumpCommand::TempBasal {
                rate,
                duration_minutes,
            }
        }),
        (0..4000u16).prop_map(|v| PumpCommand::Bolus(Insulin(v))),
        Just(PumpCommand::Suspend),
        Just(PumpCommand::Resume),
        any::<u16>().prop_map(|v| PumpCommand::SetMaxBolus(Insulin(v))),
        any::<u16>().prop_map(|v| PumpCommand::SetMaxBasal(InsulinRate(v))),
        any::<u16>().prop_map(|v| PumpCommand::SetMaxInsulinOnBoard(Insulin(v))),
    ]
}

fn pacemaker_body() -> impl Strategy<Value = PacemakerCommand> {
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
        3 => pump_body().prop_map(CommandBody::Pump),
        2 => pacemaker_body().prop_map(CommandBody::Pacemaker),
        1 => (0..500u16, 0..500u16).prop_map(|(low_mg_dl, high_mg_dl)| {
            CommandBody::Cgm(CgmCommand::SetAlertThresholds { low_mg_dl, high_mg_dl })
        }),
    ]
}

fn context_for(body: &CommandBody, delivered_today: u32) -> PolicyContext {
    let mut ctx = match body {
        CommandBody::Pacemaker(_) => pacemaker_context(),
        _ => pump_context(),
    };
    ctx.delivered_today = delivered_today;
    if let CommandBody::Cgm(_) = body {
        ctx.device_limits = DeviceLimits::Cgm(CgmLimits::EXAMPLE);
    }
    ctx
}

/// Independent statement of the bounds: whether an approved body could be acceptable.
fn within_bounds(body: &CommandBody, policy: &PatientPolicy, ctx: &PolicyContext) -> bool {
    match body {
        CommandBody::Pump(command) => pump_within_bounds(command, policy, ctx),
        CommandBody::Pacemaker(command) => {
            let b = policy.pacemaker.as_ref().unwrap();
            let hard = PacemakerLimits::EXAMPLE;
            let current = ctx.current.pacemaker.unwrap();
            match *command {
                PacemakerCommand::SetPacingMode(_) => true,
                PacemakerCommand::SetLowerRateLimit(v) => {
                    b.lower_rate_ppm.contains(&v)
                        && hard.lower_rate_ppm.contains(&v)
                        && v < current.upper_tracking_ppm
                }
                PacemakerCommand::SetUpperTrackingRate(v) => {
                    b.upper_tracking_ppm.contains(&v)
                        && hard.upper_tracking_ppm.contains(&v)
                        && current.lower_rate_ppm < v
                }
                PacemakerCommand::SetAvDelay(v) => {
                    b.av_delay_ms.contains(&v) && hard.av_delay_ms.contains(&v)
                }
                PacemakerCommand::SetOutputAmplitude(v) => {
                    b.amplitude_decivolts.contains(&v) && hard.amplitude_decivolts.contains(&v)
                }
            }
        }
        CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl,
            high_mg_dl,
        }) => {
            let b = policy.cgm.as_ref().unwrap();
            let hard = CgmLimits::EXAMPLE;
            b.low_mg_dl.contains(low_mg_dl)
                && b.high_mg_dl.contains(high_mg_dl)
                && hard.low_mg_dl.contains(low_mg_dl)
                && hard.high_mg_dl.contains(high_mg_dl)
                && low_mg_dl < high_mg_dl
        }
    }
}

fn pump_within_bounds(command: &PumpCommand, policy: &PatientPolicy, ctx: &PolicyContext) -> bool {
    let b = policy.pump.as_ref().unwrap();
    let hard = PumpLimits::EXAMPLE;
    let pump = ctx.current.pump.unwrap();
    let max_basal = b
        .basal_rate
        .max
        .min(pump.max.max_basal.0)
        .min(hard.max_basal.0);
    let highest_programmed = u32::from(pump.basal_profile.max_rate().0);
    match *command {
        PumpCommand::SetBasalProfile(profile) => profile
            .segments()
            .iter()
            .all(|s| b.basal_rate.contains(&s.rate.0) && s.rate.0 <= max_basal),
        PumpCommand::TempBasal {
            rate,
            duration_minutes,
        } => {
            let highest = match rate {
                TempBasalRate::Percent(p) => {
                    if !b.temp_basal_percent.contains(&p) || p > hard.temp_basal_max_percent {
                        return false;
                    }
                    highest_programmed * u32::from(p) / 100
                }
                TempBasalRate::Absolute(r) => {
                    if !b.basal_rate.contains(&r.0) {
                        return false;
                    }
                    u32::from(r.0)
                }
            };
            let added = u64::from(highest) * u64::from(duration_minutes) / 60;
            highest <= u32::from(max_basal)
                && duration_minutes <= b.temp_basal_max_minutes
                && hard.temp_basal_minutes.contains(&duration_minutes)
                && u64::from(ctx.delivered_today) + added <= u64::from(b.max_daily_insulin)
        }
        PumpCommand::Bolus(amount) => {
            amount.0 > 0
                && amount.0 <= b.max_bolus
                && amount <= pump.max.max_bolus
                && amount <= hard.max_bolus
                && ctx.delivered_today + u32::from(amount.0) <= b.max_daily_insulin
        }
        PumpCommand::Suspend | PumpCommand::Resume => true,
        PumpCommand::SetMaxBolus(v) => v.0 <= b.max_bolus && v <= hard.max_bolus,
        PumpCommand::SetMaxBasal(v) => {
            v.0 <= b.basal_rate.max && v <= hard.max_basal && pump.basal_profile.max_rate() <= v
        }
        PumpCommand::SetMaxInsulinOnBoard(v) => {
            v.0 <= b.max_insulin_on_board && v <= hard.max_insulin_on_board
        }
    }
}

/// Runs a request through evaluation, an optional review and an optional co-signature,
/// the way the cloud's API would, and returns the final decision.
fn decide(
    request: &ChangeRequest,
    reviewer: &Person,
    cosigner: &Person,
    ctx: &PolicyContext,
) -> Decision {
    let policy = policy();
    let mut decision = evaluate(request, &policy, ctx);
    if let Decision::NeedsReview { .. } = decision {
        match evaluate_reviewed(request, reviewer, &policy, ctx) {
            Ok(reviewed) => decision = reviewed,
            Err(_) => return decision,
        }
    }
    if let Decision::NeedsCosign { .. } = decision {
        if let Ok(cosigned) = cosign(&decision, cosigner) {
            decision = cosigned;
        }
    }
    decision
}

fn person() -> impl Strategy<Value = Person> {
    (role(), 0..3u8).prop_map(|(role, n)| Person {
        id: format!("{role:?}-{n}").to_lowercase(),
        role,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn approval_never_exceeds_bounds(
        body in body(),
        requester in person(),
        reviewer in person(),
        cosigner in person(),
        delivered_today in 0..7000u32,
    ) {
        let ctx = context_for(&body, delivered_today);
        let request = ChangeRequest {
            requester_id: requester.id.clone(),
            requester_role: requester.role,
            patient_id: PATIENT.into(),
            body,
            requested_at_ms: NOW_MS,
        };
        let decision = decide(&request, &reviewer, &cosigner, &ctx);
        if let Decision::Approved { cosigned_by, reviewed_by, .. } = &decision {
            prop_assert!(within_bounds(&body, &policy(), &ctx), "{body:?} approved: {decision:?}");
            let may_request = match requester.role {
                Role::Clinician => true,
                Role::Patient | Role::Caregiver => !matches!(
                    body,
                    CommandBody::Pacemaker(_)
                        | CommandBody::Pump(
                            PumpCommand::SetBasalProfile(_)
                                | PumpCommand::SetMaxBolus(_)
                                | PumpCommand::SetMaxBasal(_)
                                | PumpCommand::SetMaxInsulinOnBoard(_)
                        )
                ),
                _ => false,
            };
            prop_assert!(may_request, "{:?} may not request {body:?}", requester.role);
            if let Some(id) = cosigned_by {
                prop_assert_ne!(id, &requester.id);
                prop_assert_eq!(cosigner.role, Role::Clinician);
            }
            if let Some(id) = reviewed_by {
                prop_assert_ne!(id, &requester.id);
                prop_assert_eq!(reviewer.role, Role::Clinician);
            }
            let current_max = ctx.current.pump.as_ref().map(|p| &p.max);
            if body.risk(current_max) == medtunnel_command::Risk::High {
                prop_assert!(cosigned_by.is_some(), "high-risk {body:?} approved without co-signature");
            }
        }
    }
}
