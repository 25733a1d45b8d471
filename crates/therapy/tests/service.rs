//! Every request state reached through the service and the gateway's delivery API, on a
//! real SQLite file, with the audit log verified afterwards.

use medtunnel_audit::{CheckpointPublicKey, CHECKPOINT_PUBLIC_KEY_FILE};
use medtunnel_command::ack::{Outcome, RejectReason};
use medtunnel_command::body::{BasalProfile, BasalSegment, PumpCommand, TempBasalRate};
use medtunnel_command::limits::PumpMaxSettings;
use medtunnel_command::{Acknowledgement, CommandBody, Insulin, InsulinRate, SignedCommand};
use medtunnel_records::{DeviceStatus, PumpStatus, StatusSettings};
use medtunnel_store::provision;
use medtunnel_store::{DeviceModel, Store};
use medtunnel_therapy::{
    CommandDelivery, RequestState, Requester, Role, TherapyConfig, TherapyError, TherapyService,
};
use tempfile::TempDir;

const PATIENT: &str = "patient-1";
const T0: i64 = 1_700_000_000_000;

struct Fixture {
    dir: TempDir,
    service: TherapyService,
    delivery: CommandDelivery,
    pump: String,
}

fn fixture(config: TherapyConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = Store::open(dir.path().join("cloud.db")).expect("open database");
    provision::provision_cloud(dir.path(), &mut store).expect("provision cloud");
    let pump =
        provision::provision_devices(dir.path(), &mut store, DeviceModel::InsulinPump, 1, "pump-")
            .expect("provision pump")
            .pop()
            .expect("one pump")
            .device_id;
    drop(store);
    let mut service = TherapyService::open(dir.path(), config, T0).expect("open service");
    let operator = Requester::new("operator-1", Role::Operator);
    service
        .enroll_device(&operator, &pump, PATIENT, T0)
        .expect("enroll");
    let delivery = CommandDelivery::open_dir(dir.path(), T0).expect("open delivery");
    Fixture {
        dir,
        service,
        delivery,
        pump,
    }
}

fn status(epoch: u32, challenge: Option<[u8; 16]>) -> DeviceStatus {
    DeviceStatus {
        epoch,
        session_clock_ms: 10_000,
        last_executed_sequence: 0,
        last_executed_command_id: [0; 16],
        challenge,
        settings: StatusSettings::Pump(PumpStatus {
            suspended: false,
            max: PumpMaxSettings {
                max_bolus: Insulin(1500),
                max_basal: InsulinRate(500),
                max_insulin_on_board: Insulin(3000),
            },
            delivered_today: 0,
            basal_profile: BasalProfile::new(&[BasalSegment {
                start_minute: 0,
                rate: InsulinRate(100),
            }])
            .expect("profile"),
        }),
    }
}

fn patient() -> Requester {
    Requester::new(PATIENT, Role::Patient)
}

fn clinician(id: &str) -> Requester {
    Requester::new(id, Role::Clinician)
}

fn temp_basal(percent: u16) -> CommandBody {
    CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(percent),
        duration_minutes: 30,
    })
}

fn executed(command: &SignedCommand) -> Acknowledgement {
    Acknowledgement {
        command_id: command.envelope().command_id,
        sequence: command.envelope().sequence,
        outcome: Outcome::Rejected(RejectReason::AlreadyExecuted),
    }
}

/// Sends what is due and returns the decoded commands.
fn send_due(f: &mut Fixture, at: i64) -> Vec<SignedCommand> {
    let due = f.delivery.due(&f.pump, "test#1", at).expect("due");
    let mut commands = Vec::new();
    for (i, command) in due.commands.iter().enumerate() {
        f.delivery
            .mark_sent(&f.pump, command, "test#1", i as u64, at)
            .expect("mark sent");
        commands.push(SignedCommand::decode(command.command.as_bytes()).expect("decodes"));
    }
    commands
}

fn verify(f: &Fixture) {
    let key = CheckpointPublicKey::load_file(&f.dir.path().join(CHECKPOINT_PUBLIC_KEY_FILE))
        .expect("checkpoint key");
    let report =
        medtunnel_audit::verify_file(&f.dir.path().join("cloud.db"), &[key]).expect("verify");
    assert!(report.is_intact(), "{:?}", report.first_bad);
    assert!(report.entries > 0);
}

#[test]
fn request_waits_approved_until_device_status() {
    let mut f = fixture(TherapyConfig::default());
    // Without a status the policy has no pump settings to check against.
    let view = f
        .service
        .submit(&patient(), PATIENT, &f.pump, temp_basal(110), T0)
        .expect("submit");
    assert_eq!(view.state, RequestState::Rejected);
    assert_eq!(view.reason.as_deref(), Some("device_not_configured"));

    f.delivery
        .record_status(&f.pump, &status(1, None), T0, "test#1")
        .expect("status");
    let view = f
        .service
        .submit(&patient(), PATIENT, &f.pump, temp_basal(110), T0)
        .expect("submit");
    assert_eq!(view.state, RequestState::Approved);
    let commands = send_due(&mut f, T0 + 10);
    assert_eq!(commands.len(), 1);
    assert_eq!(
        f.service.request(view.id).expect("view").state,
        RequestState::Sent
    );
    let ack = Acknowledgement {
        outcome: Outcome::Rejected(RejectReason::Expired),
        ..executed(&commands[0])
    };
    f.delivery
        .record_ack(&f.pump, &ack, T0 + 20, "test#1")
        .expect("ack");
    let view = f.service.request(view.id).expect("view");
    assert_eq!(view.state, RequestState::Failed);
    assert_eq!(view.reason.as_deref(), Some("expired"));
    verify(&f);
}

#[test]
fn every_state_is_reachable() {
    let config = TherapyConfig {
        command_lifetime_ms: 1_000,
        ..TherapyConfig::default()
    };
    let mut f = fixture(config);
    f.delivery
        .record_status(&f.pump, &status(1, Some([7; 16])), T0, "test#1")
        .expect("status");

    // pending_review, then approved by a clinician's review.
    let review = f
        .service
        .submit(&patient(), PATIENT, &f.pump, temp_basal(150), T0)
        .expect("submit");
    assert_eq!(review.state, RequestState::PendingReview);
    let reviewed = f
        .service
        .review(&clinician("dr-a"), review.id, true, T0)
        .expect("review");
    assert_eq!(reviewed.state, RequestState::Approved);
    assert_eq!(reviewed.decision_reasons.len(), 2);

    // needs_cosign for a new basal profile, then approved with the device's challenge.
    let profile = BasalProfile::flat(InsulinRate(120));
    let body = CommandBody::Pump(PumpCommand::SetBasalProfile(profile));
    let high = f
        .service
        .submit(&clinician("dr-a"), PATIENT, &f.pump, body, T0)
        .expect("submit");
    assert_eq!(high.state, RequestState::NeedsCosign);
    let denied = f.service.cosign(&patient(), high.id, T0);
    assert!(
        matches!(denied, Err(TherapyError::NotPermitted(_))),
        "{denied:?}"
    );
    let cosigned = f
        .service
        .cosign(&clinician("dr-b"), high.id, T0)
        .expect("cosign");
    assert_eq!(cosigned.state, RequestState::Approved);

    // rejected by policy, and rejected by a reviewer.
    let bolus = CommandBody::Pump(PumpCommand::Bolus(Insulin(1400)));
    let rejected = f
        .service
        .submit(&patient(), PATIENT, &f.pump, bolus, T0)
        .expect("submit");
    assert_eq!(rejected.state, RequestState::Rejected);
    let second = f
        .service
        .submit(&patient(), PATIENT, &f.pump, temp_basal(160), T0)
        .expect("submit");
    let refused = f
        .service
        .review(&clinician("dr-a"), second.id, false, T0)
        .expect("review");
    assert_eq!(refused.state, RequestState::Rejected);
    assert_eq!(refused.reason.as_deref(), Some("rejected_by_reviewer"));

    // sent and acknowledged; the high-risk command carries the challenge.
    let commands = send_due(&mut f, T0 + 10);
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[1].envelope().challenge, Some([7; 16]));
    assert!(commands[0].envelope().sequence < commands[1].envelope().sequence);
    f.delivery
        .record_ack(&f.pump, &executed(&commands[0]), T0 + 20, "test#1")
        .expect("ack");
    assert_eq!(
        f.service.request(review.id).expect("view").state,
        RequestState::Acknowledged
    );

    // expired: the second command was sent but not delivered before its expiry.
    f.delivery.due(&f.pump, "test#1", T0 + 5_000).expect("due");
    let expired = f.service.request(high.id).expect("view");
    assert_eq!(expired.state, RequestState::Expired);
    assert_eq!(expired.reason.as_deref(), Some("expired_before_delivery"));
    verify(&f);
}

#[test]
fn high_risk_change_waits_for_a_fresh_challenge() {
    let mut f = fixture(TherapyConfig::default());
    f.delivery
        .record_status(&f.pump, &status(1, None), T0, "test#1")
        .expect("status");
    let body = CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
        InsulinRate(120),
    )));
    let view = f
        .service
        .submit(&clinician("dr-a"), PATIENT, &f.pump, body, T0)
        .expect("submit");
    f.service
        .cosign(&clinician("dr-b"), view.id, T0)
        .expect("cosign");
    let due = f.delivery.due(&f.pump, "test#1", T0).expect("due");
    assert!(due.commands.is_empty());
    assert_eq!(due.status_request.map(|r| r.challenge_wanted), Some(true));

    f.delivery
        .record_status(&f.pump, &status(1, Some([9; 16])), T0 + 100, "test#1")
        .expect("status");
    assert_eq!(f.service.sign_pending(T0 + 200).expect("sign"), 1);
    let commands = send_due(&mut f, T0 + 300);
    assert_eq!(commands[0].envelope().challenge, Some([9; 16]));

    // A reboot before execution sends the request back to signing for the new epoch.
    f.delivery
        .record_status(&f.pump, &status(2, Some([3; 16])), T0 + 400, "test#1")
        .expect("status");
    assert_eq!(
        f.service.request(view.id).expect("view").state,
        RequestState::Approved
    );
    assert_eq!(f.service.sign_pending(T0 + 500).expect("sign"), 1);
    let commands = send_due(&mut f, T0 + 600);
    assert_eq!(commands[0].envelope().epoch, 2);
    assert_eq!(commands[0].envelope().challenge, Some([3; 16]));
    verify(&f);
}

#[test]
fn unsigned_approval_expires_after_timeout() {
    let config = TherapyConfig {
        approval_timeout_ms: 1_000,
        ..TherapyConfig::default()
    };
    let mut f = fixture(config);
    f.delivery
        .record_status(&f.pump, &status(1, None), T0, "test#1")
        .expect("status");
    let body = CommandBody::Pump(PumpCommand::SetBasalProfile(BasalProfile::flat(
        InsulinRate(120),
    )));
    let view = f
        .service
        .submit(&clinician("dr-a"), PATIENT, &f.pump, body, T0)
        .expect("submit");
    f.service
        .cosign(&clinician("dr-b"), view.id, T0)
        .expect("cosign");
    assert_eq!(f.service.sign_pending(T0 + 2_000).expect("sign"), 0);
    let view = f.service.request(view.id).expect("view");
    assert_eq!(view.state, RequestState::Expired);
    assert_eq!(view.reason.as_deref(), Some("not_signed_in_time"));
}

#[test]
fn request_for_another_patients_device_is_refused() {
    let mut f = fixture(TherapyConfig::default());
    let result = f
        .service
        .submit(&patient(), "patient-2", &f.pump, temp_basal(110), T0);
    assert!(
        matches!(result, Err(TherapyError::DevicePatientMismatch { .. })),
        "{result:?}"
    );
    let result = f
        .service
        .submit(&patient(), PATIENT, "pump-9999", temp_basal(110), T0);
    assert!(
        matches!(result, Err(TherapyError::DeviceNotEnrolled(_))),
        "{result:?}"
    );
    verify(&f);
}

#[cfg(unix)]
#[test]
fn key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture(TherapyConfig::default());
    for name in ["command-key", "audit-key"] {
        let mode = std::fs::metadata(f.dir.path().join(name))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let key = medtunnel_therapy::load_command_public_key(&f.service.command_public_key_path())
        .expect("public key");
    assert_eq!(key, f.service.command_public_key());
}
