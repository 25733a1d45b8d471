//! Therapy commands end to end: service, gateway, relay and simulated devices on
//! loopback, with real SQLite files.

mod therapy_support;

use std::time::Duration;

use medtunnel_command::body::{PacemakerCommand, PumpCommand, TempBasalRate};
use medtunnel_command::{CommandBody, Insulin};
use medtunnel_relay::{Direction, FaultConfig, FaultKind};
use medtunnel_store::DeviceModel;
use medtunnel_therapy::{RequestState, TherapyConfig};
use therapy_support::{clinician, now_ms, patient, Cloud, TestDevice, TestRelay, PATIENT};

fn temp_basal() -> CommandBody {
    CommandBody::Pump(PumpCommand::TempBasal {
        rate: TempBasalRate::Percent(110),
        duration_minutes: 30,
    })
}

fn bolus(hundredths: u16) -> CommandBody {
    CommandBody::Pump(PumpCommand::Bolus(Insulin(hundredths)))
}

async fn pump_stack(
    config: TherapyConfig,
    faults: Option<FaultConfig>,
) -> (Cloud, TestRelay, TestDevice) {
    let mut cloud = Cloud::start(config).await;
    let pump = cloud.provision(DeviceModel::InsulinPump, "pump-");
    let relay = TestRelay::start(&cloud, faults).await;
    let device = TestDevice::start(
        &cloud,
        &pump,
        DeviceModel::InsulinPump,
        TestDevice::config(&cloud, &relay),
    );
    cloud.wait_for_status(&pump, 1).await;
    (cloud, relay, device)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basal_change_is_acknowledged() {
    let (mut cloud, _relay, device) = pump_stack(TherapyConfig::default(), None).await;
    let view = cloud
        .service
        .submit(
            &patient(),
            PATIENT,
            &device.device_id,
            temp_basal(),
            now_ms(),
        )
        .expect("submit");
    let done = cloud.wait_for(view.id, RequestState::Acknowledged).await;
    assert_eq!(done.reason, None);
    let report = device
        .wait_until("executed the command", |r| r.commands_executed == 1)
        .await;
    assert!(report.commands_rejected.is_empty(), "{report:?}");

    let actions = cloud.audit_actions(&view.id.to_string());
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    for expected in [
        "therapy.request",
        "therapy.decision",
        "command.sign",
        "command.send",
        "command.ack",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bolus_above_limit_is_rejected() {
    let (mut cloud, _relay, device) = pump_stack(TherapyConfig::default(), None).await;
    let view = cloud
        .service
        .submit(
            &patient(),
            PATIENT,
            &device.device_id,
            bolus(1500),
            now_ms(),
        )
        .expect("submit");
    assert_eq!(view.state, RequestState::Rejected);
    assert_eq!(view.reason.as_deref(), Some("outside_patient_bounds"));
    cloud.service.sign_pending(now_ms()).expect("sign pending");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(device.report().commands_executed, 0);
    assert_eq!(
        cloud.audit_actions(&view.id.to_string()),
        vec![
            ("therapy.request".to_owned(), "success".to_owned()),
            ("therapy.decision".to_owned(), "denied".to_owned()),
        ]
    );
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacemaker_change_waits_for_cosign() {
    let mut cloud = Cloud::start(TherapyConfig::default()).await;
    let unit = cloud.provision(DeviceModel::Pacemaker, "pacemaker-");
    let relay = TestRelay::start(&cloud, None).await;
    let device = TestDevice::start(
        &cloud,
        &unit,
        DeviceModel::Pacemaker,
        TestDevice::config(&cloud, &relay),
    );
    cloud.wait_for_status(&unit, 1).await;

    let body = CommandBody::Pacemaker(PacemakerCommand::SetLowerRateLimit(65));
    let view = cloud
        .service
        .submit(&clinician("dr-a"), PATIENT, &unit, body, now_ms())
        .expect("submit");
    assert_eq!(view.state, RequestState::NeedsCosign);
    let same = cloud.service.cosign(&clinician("dr-a"), view.id, now_ms());
    assert!(same.is_err(), "the requester co-signed: {same:?}");
    let cosigned = cloud
        .service
        .cosign(&clinician("dr-b"), view.id, now_ms())
        .expect("cosign");
    assert_eq!(cosigned.cosigned_by.as_deref(), Some("dr-b"));
    let done = cloud.wait_for(view.id, RequestState::Acknowledged).await;
    assert_eq!(done.state, RequestState::Acknowledged);
    device
        .wait_until("executed the change", |r| r.commands_executed == 1)
        .await;
    let actions = cloud.audit_actions(&view.id.to_string());
    assert!(
        actions.contains(&("therapy.cosign".to_owned(), "denied".to_owned())),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("therapy.cosign".to_owned(), "success".to_owned())),
        "{actions:?}"
    );
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pump_refuses_bolus_after_silence() {
    let mut cloud = Cloud::start(TherapyConfig::default()).await;
    let pump = cloud.provision(DeviceModel::InsulinPump, "pump-");
    let relay = TestRelay::start(&cloud, None).await;
    let mut config = TestDevice::config(&cloud, &relay);
    config.heartbeat_interval = Duration::from_secs(60);
    config.max_silence = Duration::from_millis(500);
    let device = TestDevice::start(&cloud, &pump, DeviceModel::InsulinPump, config);
    cloud.wait_for_status(&pump, 1).await;
    // Nothing crosses the channel while the heartbeat interval is a minute.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let view = cloud
        .service
        .submit(&patient(), PATIENT, &pump, bolus(200), now_ms())
        .expect("submit");
    let failed = cloud.wait_for(view.id, RequestState::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("remote_bolus_blocked"));
    assert_eq!(device.report().commands_executed, 0);
    let actions = cloud.audit_actions(&view.id.to_string());
    assert!(
        actions.contains(&("command.ack".to_owned(), "failure".to_owned())),
        "{actions:?}"
    );
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_delivered_after_expiry_is_rejected() {
    let config = TherapyConfig {
        command_lifetime_ms: 1_000,
        ..TherapyConfig::default()
    };
    let mut faults = FaultConfig::none(7).with(FaultKind::Delay, 1.0);
    faults.direction = Direction::Downstream;
    faults.delay = Duration::from_millis(2_500);
    let (mut cloud, relay, device) = pump_stack(config, Some(faults)).await;
    relay.faults.set_enabled(true);

    let view = cloud
        .service
        .submit(
            &patient(),
            PATIENT,
            &device.device_id,
            temp_basal(),
            now_ms(),
        )
        .expect("submit");
    let report = device
        .wait_until("rejected the late command", |r| {
            r.commands_rejected.iter().any(|x| x == "Expired")
        })
        .await;
    assert_eq!(report.commands_executed, 0);
    let expired = cloud.wait_for(view.id, RequestState::Expired).await;
    assert_eq!(expired.state, RequestState::Expired);
    relay.faults.set_enabled(false);
    // The device's rejection reaches the cloud and is audited without changing the state.
    let deadline = tokio::time::Instant::now() + therapy_support::WAIT;
    loop {
        let actions = cloud.audit_actions(&view.id.to_string());
        if actions.iter().any(|(a, _)| a == "command.replay_rejected") {
            assert!(
                actions.iter().any(|(a, _)| a == "command.expire"),
                "{actions:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rejection never audited: {actions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cloud.service.request(view.id).expect("request").state,
        RequestState::Expired
    );
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_command_or_ack_gets_nothing_through() {
    let mut faults = FaultConfig::none(11).with(FaultKind::FlipBits, 1.0);
    faults.direction = Direction::Downstream;
    let (mut cloud, relay, device) = pump_stack(TherapyConfig::default(), Some(faults)).await;
    relay.faults.set_enabled(true);

    let view = cloud
        .service
        .submit(
            &patient(),
            PATIENT,
            &device.device_id,
            temp_basal(),
            now_ms(),
        )
        .expect("submit");
    cloud.wait_for(view.id, RequestState::Sent).await;
    device
        .wait_until("rejected changed frames", |r| r.frames_rejected >= 2)
        .await;
    assert_eq!(
        device.report().commands_executed,
        0,
        "a changed command ran"
    );
    assert_eq!(
        cloud.service.request(view.id).expect("request").state,
        RequestState::Sent
    );

    // Once the relay stops changing frames, the retransmitted command runs once.
    relay.faults.set_enabled(false);
    cloud.wait_for(view.id, RequestState::Acknowledged).await;
    device
        .wait_until("executed the command", |r| r.commands_executed == 1)
        .await;
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_ack_is_not_taken_as_acknowledged() {
    let mut faults = FaultConfig::none(13).with(FaultKind::FlipBits, 1.0);
    faults.direction = Direction::Upstream;
    let (mut cloud, relay, device) = pump_stack(TherapyConfig::default(), Some(faults)).await;
    // From here on the relay changes every frame from the device; its status is in.
    relay.faults.set_enabled(true);

    let view = cloud
        .service
        .submit(
            &patient(),
            PATIENT,
            &device.device_id,
            temp_basal(),
            now_ms(),
        )
        .expect("submit");
    cloud.wait_for(view.id, RequestState::Sent).await;
    device
        .wait_until("executed the command", |r| r.commands_executed == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let state = cloud.service.request(view.id).expect("request").state;
    assert_ne!(
        state,
        RequestState::Acknowledged,
        "a changed acknowledgement was accepted"
    );

    relay.faults.set_enabled(false);
    cloud.wait_for(view.id, RequestState::Acknowledged).await;
    assert_eq!(device.report().commands_executed, 1);
    cloud.verify_audit();
    device.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_command_is_rejected_before_after_execution_and_after_reboot() {
    let (mut cloud, relay, device) = pump_stack(TherapyConfig::default(), None).await;
    let pump = device.device_id.clone();
    let view = cloud
        .service
        .submit(&patient(), PATIENT, &pump, temp_basal(), now_ms())
        .expect("submit");
    // A copy queued while the original may still wait for delivery.
    cloud.replay_command(view.id);
    cloud.wait_for(view.id, RequestState::Acknowledged).await;
    device
        .wait_until("rejected the first copy", |r| {
            r.commands_rejected.len() == 1
        })
        .await;

    // A copy after execution.
    cloud.replay_command(view.id);
    let report = device
        .wait_until("rejected the second copy", |r| {
            r.commands_rejected.len() == 2
        })
        .await;
    assert_eq!(
        report.commands_executed, 1,
        "the command ran more than once"
    );
    assert_eq!(
        report.commands_rejected,
        vec!["AlreadyExecuted", "AlreadyExecuted"]
    );

    // A copy after a reboot, which starts a new epoch.
    device.stop().await;
    let config = TestDevice::config(&cloud, &relay);
    let rebooted = TestDevice::start(&cloud, &pump, DeviceModel::InsulinPump, config);
    cloud.wait_for_status(&pump, 2).await;
    cloud.replay_command(view.id);
    let report = rebooted
        .wait_until("rejected the copy after the reboot", |r| {
            !r.commands_rejected.is_empty()
        })
        .await;
    assert_eq!(report.commands_rejected, vec!["WrongEpoch"]);
    assert_eq!(report.commands_executed, 0);

    let deadline = tokio::time::Instant::now() + therapy_support::WAIT;
    loop {
        let replays = cloud
            .audit_actions(&view.id.to_string())
            .into_iter()
            .filter(|(action, outcome)| action == "command.replay_rejected" && outcome == "denied")
            .count();
        if replays == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{replays} of 3 replays audited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        cloud.service.request(view.id).expect("request").state,
        RequestState::Acknowledged
    );
    cloud.verify_audit();
    rebooted.stop().await;
}
