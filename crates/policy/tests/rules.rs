//! One test per policy rule, and the review and co-signature steps.

mod common;

use common::*;
use medtunnel_command::body::{
    BasalProfile, CgmCommand, PacemakerCommand, PumpCommand, TempBasalRate,
};
use medtunnel_command::limits::CgmLimits;
use medtunnel_command::{CommandBody, DeviceLimits, Insulin, InsulinRate};
use medtunnel_policy::{
    cosign, evaluate, evaluate_reviewed, CosignError, Decision, Person, ReasonCode, RecentChange,
    ReviewError, Role,
};

fn bolus(amount: u16) -> CommandBody {
    CommandBody::Pump(PumpCommand::Bolus(Insulin(amount)))
}

fn temp_percent(percent: u16) -> CommandBody {
    CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(percent),
        duration_minutes: 60,
    })
}

fn code(decision: &Decision) -> ReasonCode {
    decision.reason().code
}

#[test]
fn patient_bolus_within_bounds_is_approved() {
    let decision = evaluate(
        &request(Role::Patient, bolus(400)),
        &policy(),
        &pump_context(),
    );
    assert!(decision.is_approved(), "{decision:?}");
    assert_eq!(code(&decision), ReasonCode::WithinPolicy);
    assert!(!decision.reason().message.is_empty());
}

#[test]
fn request_for_other_patient_is_rejected() {
    let mut req = request(Role::Clinician, bolus(100));
    req.patient_id = "patient-2".into();
    let decision = evaluate(&req, &policy(), &pump_context());
    assert_eq!(code(&decision), ReasonCode::PatientMismatch);
}

#[test]
fn roles_are_limited_to_their_changes() {
    let patient_allowed = [
        bolus(100),
        temp_percent(110),
        CommandBody::Pump(PumpCommand::Suspend),
        CommandBody::Pump(PumpCommand::Resume),
        CommandBody::Cgm(CgmCommand::SetAlertThresholds {
            low_mg_dl: 75,
            high_mg_dl: 200,
        }),
    ];
    let clinician_only = [
        CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
            InsulinRate(90),
        ))),
        CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(800))),
        CommandBody::Pump(PumpCommand::SetMaxBasal(InsulinRate(200))),
        CommandBody::Pump(PumpCommand::SetMaxInsulinOnBoard(Insulin(1500))),
        CommandBody::Pacemaker(PacemakerCommand::SetAvDelay(200)),
    ];
    let mut ctx = pump_context();
    ctx.device_limits = DeviceLimits::Pump(medtunnel_command::limits::PumpLimits::EXAMPLE);
    for role in [Role::Patient, Role::Caregiver] {
        for body in patient_allowed {
            let ctx = if matches!(body, CommandBody::Cgm(_)) {
                cgm_context()
            } else {
                ctx.clone()
            };
            let decision = evaluate(&request(role, body), &policy(), &ctx);
            assert_ne!(
                code(&decision),
                ReasonCode::RoleNotPermitted,
                "{role:?} {body:?}"
            );
        }
        for body in clinician_only {
            let decision = evaluate(&request(role, body), &policy(), &ctx);
            assert_eq!(
                code(&decision),
                ReasonCode::RoleNotPermitted,
                "{role:?} {body:?}"
            );
        }
    }
    for role in [Role::Researcher, Role::Operator, Role::Auditor] {
        let decision = evaluate(&request(role, bolus(100)), &policy(), &ctx);
        assert_eq!(code(&decision), ReasonCode::RoleNotPermitted, "{role:?}");
    }
    for body in clinician_only.iter().take(4) {
        let decision = evaluate(&request(Role::Clinician, *body), &policy(), &ctx);
        assert_ne!(code(&decision), ReasonCode::RoleNotPermitted, "{body:?}");
    }
}

fn cgm_context() -> medtunnel_policy::PolicyContext {
    let mut ctx = pump_context();
    ctx.device_limits = DeviceLimits::Cgm(CgmLimits::EXAMPLE);
    ctx
}

#[test]
fn device_hard_limit_is_rejected_even_for_clinician() {
    // The policy allows a maximum bolus of 12 U, but the pump's programmed maximum is 10 U.
    let decision = evaluate(
        &request(Role::Clinician, bolus(1100)),
        &policy(),
        &pump_context(),
    );
    assert_eq!(code(&decision), ReasonCode::DeviceLimit);

    // A looser policy cannot pass the pump's hard limit of 25 U either.
    let mut loose = policy();
    loose.pump.as_mut().unwrap().max_bolus = 10_000;
    let raise = CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(2600)));
    let decision = evaluate(&request(Role::Clinician, raise), &loose, &pump_context());
    assert_eq!(code(&decision), ReasonCode::DeviceLimit);
}

#[test]
fn value_outside_patient_bounds_is_rejected() {
    let cases = [
        (
            Role::Clinician,
            CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(1300))),
        ),
        (
            Role::Clinician,
            CommandBody::Pump(PumpCommand::SetMaxInsulinOnBoard(Insulin(2600))),
        ),
        (Role::Patient, temp_percent(210)),
        (
            Role::Patient,
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Absolute(InsulinRate(10)),
                duration_minutes: 60,
            }),
        ),
        (
            Role::Patient,
            CommandBody::Pump(PumpCommand::TempBasal {
                rate: TempBasalRate::Percent(100),
                duration_minutes: 721,
            }),
        ),
        (
            Role::Clinician,
            CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
                InsulinRate(10),
            ))),
        ),
    ];
    for (role, body) in cases {
        let decision = evaluate(&request(role, body), &policy(), &pump_context());
        assert_eq!(
            code(&decision),
            ReasonCode::OutsidePatientBounds,
            "{body:?}"
        );
    }
    let cgm = CommandBody::Cgm(CgmCommand::SetAlertThresholds {
        low_mg_dl: 58,
        high_mg_dl: 200,
    });
    let decision = evaluate(&request(Role::Patient, cgm), &policy(), &cgm_context());
    assert_eq!(code(&decision), ReasonCode::OutsidePatientBounds);

    let pacing = CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(45));
    let decision = evaluate(
        &request(Role::Clinician, pacing),
        &policy(),
        &pacemaker_context(),
    );
    assert_eq!(code(&decision), ReasonCode::OutsidePatientBounds);
}

#[test]
fn daily_insulin_limit_counts_delivered_total() {
    let mut ctx = pump_context();
    ctx.delivered_today = 5_700;
    let decision = evaluate(&request(Role::Patient, bolus(301)), &policy(), &ctx);
    assert_eq!(code(&decision), ReasonCode::DailyInsulinLimit);
    let decision = evaluate(&request(Role::Patient, bolus(300)), &policy(), &ctx);
    assert!(decision.is_approved(), "{decision:?}");

    // A 12-hour temporary basal of 1.00 U/h adds 12 U.
    let long_temp = CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Absolute(InsulinRate(100)),
        duration_minutes: 720,
    });
    ctx.delivered_today = 5_000;
    let decision = evaluate(&request(Role::Patient, long_temp), &policy(), &ctx);
    assert_eq!(code(&decision), ReasonCode::DailyInsulinLimit);
}

#[test]
fn large_basal_change_needs_review() {
    let decision = evaluate(
        &request(Role::Patient, temp_percent(121)),
        &policy(),
        &pump_context(),
    );
    assert_eq!(code(&decision), ReasonCode::BasalChangeNeedsReview);
    let decision = evaluate(
        &request(Role::Caregiver, temp_percent(79)),
        &policy(),
        &pump_context(),
    );
    assert_eq!(code(&decision), ReasonCode::BasalChangeNeedsReview);
    let decision = evaluate(
        &request(Role::Patient, temp_percent(120)),
        &policy(),
        &pump_context(),
    );
    assert!(decision.is_approved(), "{decision:?}");
}

#[test]
fn review_by_other_clinician_approves() {
    let req = request(Role::Patient, temp_percent(150));
    let decision = evaluate_reviewed(&req, &clinician("dr-a"), &policy(), &pump_context()).unwrap();
    let Decision::Approved { reviewed_by, .. } = &decision else {
        panic!("expected approval, got {decision:?}");
    };
    assert_eq!(reviewed_by.as_deref(), Some("dr-a"));

    let patient = Person {
        id: "caregiver-9".into(),
        role: Role::Caregiver,
    };
    assert!(matches!(
        evaluate_reviewed(&req, &patient, &policy(), &pump_context()),
        Err(ReviewError::NotClinician { .. })
    ));
    let own = request(Role::Clinician, temp_percent(150));
    let me = clinician(&own.requester_id);
    assert!(matches!(
        evaluate_reviewed(&own, &me, &policy(), &pump_context()),
        Err(ReviewError::SamePerson { .. })
    ));
}

#[test]
fn review_does_not_override_bounds() {
    let req = request(Role::Patient, temp_percent(250));
    let decision = evaluate_reviewed(&req, &clinician("dr-a"), &policy(), &pump_context()).unwrap();
    assert!(
        matches!(decision, Decision::Rejected { .. }),
        "{decision:?}"
    );
}

#[test]
fn too_many_changes_in_an_hour_need_review() {
    let mut ctx = pump_context();
    ctx.recent_changes = (0..4)
        .map(|i| RecentChange {
            requested_at_ms: NOW_MS - 10 * 60_000 * (i + 1),
            requester_id: "patient-1".into(),
        })
        .collect();
    let decision = evaluate(&request(Role::Patient, bolus(100)), &policy(), &ctx);
    assert_eq!(code(&decision), ReasonCode::RateLimited);

    ctx.recent_changes[0].requested_at_ms = NOW_MS - 61 * 60_000;
    let decision = evaluate(&request(Role::Patient, bolus(100)), &policy(), &ctx);
    assert!(decision.is_approved(), "{decision:?}");
}

#[test]
fn high_risk_change_needs_cosign() {
    let body = CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(70));
    let req = request(Role::Clinician, body);
    let decision = evaluate(&req, &policy(), &pacemaker_context());
    assert_eq!(code(&decision), ReasonCode::HighRiskNeedsCosign);

    let approved = cosign(&decision, &clinician("dr-b")).unwrap();
    let Decision::Approved {
        cosigned_by,
        reason,
        ..
    } = &approved
    else {
        panic!("expected approval, got {approved:?}");
    };
    assert_eq!(cosigned_by.as_deref(), Some("dr-b"));
    assert_eq!(reason.code, ReasonCode::Cosigned);
}

#[test]
fn patient_large_bolus_needs_cosign() {
    let mut ctx = pump_context();
    ctx.current.pump.as_mut().unwrap().max.max_bolus = Insulin(1200);
    let decision = evaluate(&request(Role::Patient, bolus(1050)), &policy(), &ctx);
    assert_eq!(code(&decision), ReasonCode::HighRiskNeedsCosign);
}

#[test]
fn lowering_a_maximum_needs_no_cosign() {
    let lower = CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(800)));
    let decision = evaluate(&request(Role::Clinician, lower), &policy(), &pump_context());
    assert!(decision.is_approved(), "{decision:?}");
    let raise = CommandBody::Pump(PumpCommand::SetMaxBolus(Insulin(1100)));
    let decision = evaluate(&request(Role::Clinician, raise), &policy(), &pump_context());
    assert_eq!(code(&decision), ReasonCode::HighRiskNeedsCosign);
}

#[test]
fn cosigner_must_be_another_clinician() {
    let body = CommandBody::Pacemaker(PacemakerCommand::SetAvDelay(200));
    let req = request(Role::Clinician, body);
    let decision = evaluate(&req, &policy(), &pacemaker_context());

    let requester = clinician(&req.requester_id);
    assert!(matches!(
        cosign(&decision, &requester),
        Err(CosignError::SamePerson { .. })
    ));
    let patient = Person {
        id: "patient-1".into(),
        role: Role::Patient,
    };
    assert!(matches!(
        cosign(&decision, &patient),
        Err(CosignError::NotClinician { .. })
    ));

    let approved = evaluate(
        &request(Role::Patient, bolus(100)),
        &policy(),
        &pump_context(),
    );
    assert_eq!(
        cosign(&approved, &clinician("dr-b")),
        Err(CosignError::NotAwaitingCosign)
    );
}

#[test]
fn reviewer_cannot_also_cosign() {
    let mut ctx = pump_context();
    ctx.current.pump.as_mut().unwrap().max.max_bolus = Insulin(1200);
    ctx.recent_changes = (0..4)
        .map(|_| RecentChange {
            requested_at_ms: NOW_MS - 1,
            requester_id: "patient-1".into(),
        })
        .collect();
    let req = request(Role::Patient, bolus(1050));
    let decision = evaluate_reviewed(&req, &clinician("dr-a"), &policy(), &ctx).unwrap();
    assert_eq!(code(&decision), ReasonCode::HighRiskNeedsCosign);
    assert!(matches!(
        cosign(&decision, &clinician("dr-a")),
        Err(CosignError::SamePerson { .. })
    ));
    assert!(cosign(&decision, &clinician("dr-b")).unwrap().is_approved());
}

#[test]
fn missing_bounds_reject_every_change() {
    let mut no_pump = policy();
    no_pump.pump = None;
    let decision = evaluate(
        &request(Role::Clinician, bolus(100)),
        &no_pump,
        &pump_context(),
    );
    assert_eq!(code(&decision), ReasonCode::DeviceNotConfigured);

    let decision = evaluate(
        &request(Role::Clinician, bolus(100)),
        &policy(),
        &pacemaker_context(),
    );
    assert_eq!(
        code(&decision),
        ReasonCode::DeviceNotConfigured,
        "wrong device model"
    );
}

#[test]
fn decision_serializes_with_code_and_message() {
    let decision = evaluate(
        &request(Role::Operator, bolus(100)),
        &policy(),
        &pump_context(),
    );
    let json = serde_json::to_value(&decision).unwrap();
    assert_eq!(json["decision"], "rejected");
    assert_eq!(json["reason"]["code"], "role_not_permitted");
    assert!(json["reason"]["message"]
        .as_str()
        .unwrap()
        .contains("Operator"));
}
