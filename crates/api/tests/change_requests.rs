//! Therapy change requests through the API: every request state with its exact status
//! and body, who may submit, read, review and co-sign, and the errors of each route.
//! The states after approval are driven through the gateway's delivery side.

mod support;

use axum::http::StatusCode;
use medtunnel_api::Role;
use medtunnel_command::ack::{Outcome, RejectReason};
use medtunnel_command::{Acknowledgement, SignedCommand};
use serde_json::{json, Value};
use support::{Person, Reply, World};

/// Stores a pump status with a challenge and returns the patient's token and the
/// change-request path.
async fn ready(world: &World) -> (String, String) {
    world.report_pump_status(Some([7; 16]));
    let token = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/change-requests", world.patient.id());
    (token, path)
}

fn temp_basal(world: &World, percent: u16) -> Value {
    json!({
        "device_id": world.pump,
        "change": { "kind": "temp_basal", "percent": percent, "duration_minutes": 30 },
    })
}

fn basal_profile(world: &World) -> Value {
    json!({
        "device_id": world.pump,
        "change": {
            "kind": "basal_profile",
            "segments": [{ "start_minute": 0, "units_per_hour": 1.2 }],
        },
    })
}

fn request_path(world: &World, request_id: i64) -> String {
    format!(
        "/v1/patients/{}/change-requests/{request_id}",
        world.patient.id()
    )
}

/// Creates a clinician with a `request_changes` grant on the patient's insulin and
/// cardiac data, and returns the clinician's token.
async fn granted_clinician(world: &World, patient_token: &str, username: &str) -> (Person, String) {
    let clinician = world.add_person(username, Role::Clinician);
    world
        .grant(
            patient_token,
            &clinician,
            &["insulin", "cardiac"],
            &["request_changes"],
        )
        .await;
    let token = world.sign_in(&clinician).await;
    (clinician, token)
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.error_code(), code, "{}", reply.body);
}

#[tokio::test]
async fn change_within_policy_is_approved() {
    let world = World::new();
    let (patient, path) = ready(&world).await;

    let reply = world.post(&path, &patient, &temp_basal(&world, 110)).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let body = &reply.body;
    assert!(body["id"].as_i64().is_some());
    assert_eq!(body["state"], "approved");
    assert_eq!(body["reason"], Value::Null);
    assert_eq!(body["device_id"], world.pump.as_str());
    assert_eq!(body["patient_id"], world.patient.id().to_string());
    assert_eq!(body["requester_id"], world.patient.id().to_string());
    assert_eq!(
        body["body_summary"],
        "pump: temporary basal 110 % for 30 min"
    );
    assert_eq!(body["reviewed_by"], Value::Null);
    assert_eq!(body["cosigned_by"], Value::Null);
    assert_eq!(body["decision_reasons"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bolus_above_maximum_is_rejected_with_reason() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let bolus = json!({ "device_id": world.pump, "change": { "kind": "bolus", "units": 14.0 } });

    let reply = world.post(&path, &patient, &bolus).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["state"], "rejected");
    assert_eq!(reply.body["body_summary"], "pump: bolus 14.00 U");
    assert_eq!(reply.body["reason"], "outside_patient_bounds");
    assert_eq!(
        reply.body["decision_reasons"][0]["code"],
        "outside_patient_bounds"
    );
}

#[tokio::test]
async fn change_without_device_status_is_rejected() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/change-requests", world.patient.id());

    let reply = world.post(&path, &patient, &temp_basal(&world, 110)).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["state"], "rejected");
    assert_eq!(reply.body["reason"], "device_not_configured");
}

#[tokio::test]
async fn pending_review_is_approved_by_review() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (clinician, clinician_token) = granted_clinician(&world, &patient, "dr-review").await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 150)).await;
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
    assert_eq!(submitted.body["state"], "pending_review");
    let id = submitted.body["id"].as_i64().unwrap();

    let review_path = format!("/v1/change-requests/{id}/review");
    let reply = world
        .post(&review_path, &clinician_token, &json!({ "approve": true }))
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["id"], id);
    assert_eq!(reply.body["state"], "approved");
    assert_eq!(reply.body["reviewed_by"], clinician.id().to_string());
    assert_eq!(reply.body["decision_reasons"].as_array().unwrap().len(), 2);
    let state_after = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(state_after.status, StatusCode::OK);
    assert_eq!(state_after.body["state"], "approved");
}

#[tokio::test]
async fn review_rejection_ends_request() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (_, clinician_token) = granted_clinician(&world, &patient, "dr-review").await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 150)).await;
    let id = submitted.body["id"].as_i64().unwrap();

    let review_path = format!("/v1/change-requests/{id}/review");
    let reply = world
        .post(&review_path, &clinician_token, &json!({ "approve": false }))
        .await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["state"], "rejected");
    assert_eq!(reply.body["reason"], "rejected_by_reviewer");
}

#[tokio::test]
async fn review_of_approved_request_is_conflict() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (_, clinician_token) = granted_clinician(&world, &patient, "dr-review").await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    assert_eq!(submitted.body["state"], "approved");
    let id = submitted.body["id"].as_i64().unwrap();

    let review_path = format!("/v1/change-requests/{id}/review");
    let reply = world
        .post(&review_path, &clinician_token, &json!({ "approve": true }))
        .await;

    assert_error(&reply, StatusCode::CONFLICT, "invalid_request_state");
    assert_eq!(
        reply.error_message(),
        format!("change request {id} is approved, so it cannot be reviewed")
    );
}

#[tokio::test]
async fn needs_cosign_is_approved_by_second_clinician() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (first, first_token) = granted_clinician(&world, &patient, "dr-first").await;
    let (second, second_token) = granted_clinician(&world, &patient, "dr-second").await;
    let submitted = world
        .post(&path, &first_token, &basal_profile(&world))
        .await;
    assert_eq!(submitted.status, StatusCode::CREATED, "{}", submitted.body);
    assert_eq!(submitted.body["state"], "needs_cosign");
    assert_eq!(submitted.body["requester_id"], first.id().to_string());
    let id = submitted.body["id"].as_i64().unwrap();

    let cosign_path = format!("/v1/change-requests/{id}/cosign");
    let reply = world.post(&cosign_path, &second_token, &json!({})).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["state"], "approved");
    assert_eq!(reply.body["cosigned_by"], second.id().to_string());
}

#[tokio::test]
async fn cosign_by_requester_is_conflict() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (_, first_token) = granted_clinician(&world, &patient, "dr-first").await;
    let submitted = world
        .post(&path, &first_token, &basal_profile(&world))
        .await;
    let id = submitted.body["id"].as_i64().unwrap();

    let cosign_path = format!("/v1/change-requests/{id}/cosign");
    let reply = world.post(&cosign_path, &first_token, &json!({})).await;

    assert_error(&reply, StatusCode::CONFLICT, "second_clinician_required");
    let state_after = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(state_after.body["state"], "needs_cosign");
}

#[tokio::test]
async fn cosign_of_pending_review_is_conflict() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let (_, clinician_token) = granted_clinician(&world, &patient, "dr-review").await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 150)).await;
    let id = submitted.body["id"].as_i64().unwrap();

    let cosign_path = format!("/v1/change-requests/{id}/cosign");
    let reply = world.post(&cosign_path, &clinician_token, &json!({})).await;

    assert_error(&reply, StatusCode::CONFLICT, "invalid_request_state");
}

#[tokio::test]
async fn review_by_patient_is_forbidden() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 150)).await;
    let id = submitted.body["id"].as_i64().unwrap();

    let review_path = format!("/v1/change-requests/{id}/review");
    let reply = world
        .post(&review_path, &patient, &json!({ "approve": true }))
        .await;

    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    let state_after = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(state_after.body["state"], "pending_review");
}

#[tokio::test]
async fn review_by_clinician_without_grant_is_forbidden() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let clinician = world.sign_in(&world.clinician).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 150)).await;
    let id = submitted.body["id"].as_i64().unwrap();

    let review_path = format!("/v1/change-requests/{id}/review");
    let reply = world
        .post(&review_path, &clinician, &json!({ "approve": true }))
        .await;

    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn unknown_request_is_not_found() {
    let world = World::new();
    let (patient, _) = ready(&world).await;
    let (_, clinician_token) = granted_clinician(&world, &patient, "dr-review").await;

    let lookup = world.get(&request_path(&world, 999), &patient).await;
    assert_error(&lookup, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        lookup.error_message(),
        format!("patient {} has no change request 999", world.patient.id())
    );
    let review = world
        .post(
            "/v1/change-requests/999/review",
            &clinician_token,
            &json!({ "approve": true }),
        )
        .await;
    assert_error(&review, StatusCode::NOT_FOUND, "not_found");
    let cosign = world
        .post(
            "/v1/change-requests/999/cosign",
            &clinician_token,
            &json!({}),
        )
        .await;
    assert_error(&cosign, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn unknown_request_is_forbidden_without_read_access() {
    let world = World::new();
    let caregiver = world.sign_in(&world.caregiver).await;

    let reply = world.get(&request_path(&world, 999), &caregiver).await;

    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn caregiver_needs_request_changes_grant() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    world.grant_all(&patient, &world.caregiver).await;
    let caregiver = world.sign_in(&world.caregiver).await;

    let denied = world
        .post(&path, &caregiver, &temp_basal(&world, 110))
        .await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden");

    world
        .grant(
            &patient,
            &world.caregiver,
            &["insulin"],
            &["request_changes"],
        )
        .await;
    let allowed = world
        .post(&path, &caregiver, &temp_basal(&world, 110))
        .await;
    assert_eq!(allowed.status, StatusCode::CREATED, "{}", allowed.body);
    assert_eq!(allowed.body["state"], "approved");
    assert_eq!(
        allowed.body["requester_id"],
        world.caregiver.id().to_string()
    );
}

#[tokio::test]
async fn insulin_grant_does_not_cover_pacemaker() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    medtunnel_api::admin::link_device(&world.state, world.patient.username(), &world.pacemaker)
        .unwrap();
    world
        .grant(
            &patient,
            &world.caregiver,
            &["insulin"],
            &["request_changes"],
        )
        .await;
    let caregiver = world.sign_in(&world.caregiver).await;
    let lower_rate = json!({
        "device_id": world.pacemaker,
        "change": { "kind": "lower_rate_limit", "ppm": 65 },
    });

    let denied = world.post(&path, &caregiver, &lower_rate).await;
    assert_error(&denied, StatusCode::FORBIDDEN, "forbidden");

    let own = world.post(&path, &patient, &lower_rate).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(
        own.body["body_summary"],
        "pacemaker: lower rate limit 65 ppm"
    );
}

#[tokio::test]
async fn break_glass_allows_no_changes() {
    let world = World::new();
    let (_, path) = ready(&world).await;
    let clinician = world.sign_in(&world.clinician).await;
    let break_glass = format!("/v1/patients/{}/break-glass", world.patient.id());
    let opened = world
        .post(
            &break_glass,
            &clinician,
            &json!({ "reason": "found unconscious" }),
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);

    let reply = world
        .post(&path, &clinician, &temp_basal(&world, 110))
        .await;

    assert_error(&reply, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn grantee_read_is_recorded_as_disclosure() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    let id = submitted.body["id"].as_i64().unwrap();
    world.grant_all(&patient, &world.caregiver).await;
    let caregiver = world.sign_in(&world.caregiver).await;

    let own = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(own.status, StatusCode::OK);
    let read = world.get(&request_path(&world, id), &caregiver).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body, own.body);

    let disclosures = world
        .get(
            &format!("/v1/patients/{}/disclosures", world.patient.id()),
            &patient,
        )
        .await;
    let entries = disclosures.body["disclosures"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", disclosures.body);
    assert_eq!(entries[0]["accessor_id"], world.caregiver.id());
    assert_eq!(entries[0]["data_type"], "insulin");
    assert_eq!(entries[0]["item_count"], 1);
}

#[tokio::test]
async fn request_of_other_patient_is_not_found() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    let id = submitted.body["id"].as_i64().unwrap();
    let other = world.add_person("pia", Role::Patient);
    let other_token = world.sign_in(&other).await;

    let other_path = format!("/v1/patients/{}/change-requests/{id}", other.id());
    let reply = world.get(&other_path, &other_token).await;

    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn sent_and_acknowledged_show_through_get() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    let id = submitted.body["id"].as_i64().unwrap();
    let mut delivery = world.delivery();
    let now_ms = world.clock_now() * 1000;

    let command = send_one(&mut delivery, &world.pump, now_ms);
    let sent = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert_eq!(sent.body["state"], "sent");

    let ack = acknowledgement(&command, RejectReason::AlreadyExecuted);
    delivery
        .record_ack(&world.pump, &ack, now_ms + 20, "test#1")
        .unwrap();
    let acknowledged = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(acknowledged.status, StatusCode::OK);
    assert_eq!(acknowledged.body["state"], "acknowledged");
    assert_eq!(acknowledged.body["reason"], Value::Null);
}

#[tokio::test]
async fn failed_shows_device_reason_through_get() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    let id = submitted.body["id"].as_i64().unwrap();
    let mut delivery = world.delivery();
    let now_ms = world.clock_now() * 1000;

    let command = send_one(&mut delivery, &world.pump, now_ms);
    let ack = acknowledgement(&command, RejectReason::Expired);
    delivery
        .record_ack(&world.pump, &ack, now_ms + 20, "test#1")
        .unwrap();

    let reply = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["state"], "failed");
    assert_eq!(reply.body["reason"], "expired");
}

#[tokio::test]
async fn expired_shows_through_get() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let submitted = world.post(&path, &patient, &temp_basal(&world, 110)).await;
    let id = submitted.body["id"].as_i64().unwrap();
    let mut delivery = world.delivery();
    let now_ms = world.clock_now() * 1000;

    // Commands live 5 minutes by default; ten minutes on, the queued one is overdue.
    let due = delivery
        .due(&world.pump, "test#1", now_ms + 10 * 60 * 1000)
        .unwrap();
    assert!(due.commands.is_empty());

    let reply = world.get(&request_path(&world, id), &patient).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["state"], "expired");
    assert_eq!(reply.body["reason"], "expired_before_delivery");
}

#[tokio::test]
async fn server_signs_approval_once_challenge_arrives() {
    let world = World::new();
    world.report_pump_status(None);
    let patient = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/change-requests", world.patient.id());
    let (_, first_token) = granted_clinician(&world, &patient, "dr-first").await;
    let (_, second_token) = granted_clinician(&world, &patient, "dr-second").await;
    let submitted = world
        .post(&path, &first_token, &basal_profile(&world))
        .await;
    let id = submitted.body["id"].as_i64().unwrap();
    let cosign_path = format!("/v1/change-requests/{id}/cosign");
    let cosigned = world.post(&cosign_path, &second_token, &json!({})).await;
    assert_eq!(cosigned.body["state"], "approved", "{}", cosigned.body);
    let mut delivery = world.delivery();
    let now_ms = world.clock_now() * 1000;
    let waiting = delivery.due(&world.pump, "test#1", now_ms).unwrap();
    assert!(waiting.commands.is_empty());
    assert_eq!(
        waiting
            .status_request
            .map(|request| request.challenge_wanted),
        Some(true)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(medtunnel_api::serve(
        listener,
        world.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    world.report_pump_status(Some([9; 16]));
    let mut signed = Vec::new();
    for _ in 0..50 {
        signed = delivery
            .due(&world.pump, "test#1", now_ms)
            .unwrap()
            .commands;
        if !signed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    assert_eq!(signed.len(), 1);
    assert_eq!(signed[0].request_id, id);
    let command = SignedCommand::decode(signed[0].command.as_bytes()).unwrap();
    assert_eq!(command.envelope().challenge, Some([9; 16]));
}

#[tokio::test]
async fn audit_records_client_address() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(medtunnel_api::serve(
        listener,
        world.state.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let body = temp_basal(&world, 110).to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {patient}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let database = world.therapy_dir.path().join("cloud.db");
    let connection = rusqlite::Connection::open(database).unwrap();
    let source: Option<String> = connection
        .query_row(
            "SELECT source FROM audit_log WHERE action = 'therapy.request'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(source.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn invalid_change_bodies_are_rejected() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let cases = [
        (
            json!({ "device_id": world.pump, "change": { "kind": "teleport" } }),
            "unknown variant `teleport`",
        ),
        (
            json!({ "device_id": world.pump, "change": { "kind": "bolus", "units": 2.555 } }),
            "units must be a non-negative multiple of 0.01",
        ),
        (
            json!({ "device_id": world.pump, "change": { "kind": "bolus", "units": -1.0 } }),
            "units must be a non-negative multiple of 0.01",
        ),
        (
            json!({
                "device_id": world.pump,
                "change": { "kind": "temp_basal", "duration_minutes": 30 },
            }),
            "exactly one of percent and units_per_hour",
        ),
        (
            json!({ "device_id": world.pump, "change": { "kind": "lower_rate_limit", "ppm": 65 } }),
            "takes insulin changes",
        ),
        (
            json!({
                "device_id": world.pump,
                "change": { "kind": "basal_profile", "segments": [] },
            }),
            "the basal profile is invalid",
        ),
    ];
    for (body, expected) in cases {
        let reply = world.post(&path, &patient, &body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(
            reply.error_message().contains(expected),
            "{body}: {}",
            reply.error_message()
        );
    }
}

#[tokio::test]
async fn device_of_no_patient_is_not_found() {
    let world = World::new();
    let (patient, path) = ready(&world).await;
    let body =
        json!({ "device_id": world.pacemaker, "change": { "kind": "av_delay", "delay_ms": 150 } });

    let reply = world.post(&path, &patient, &body).await;

    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
}

/// Takes the one due command off the outbox, marks it sent and returns it decoded.
fn send_one(
    delivery: &mut medtunnel_therapy::CommandDelivery,
    device_id: &str,
    now_ms: i64,
) -> SignedCommand {
    let due = delivery.due(device_id, "test#1", now_ms).unwrap();
    assert_eq!(due.commands.len(), 1);
    let queued = &due.commands[0];
    delivery
        .mark_sent(device_id, queued, "test#1", 0, now_ms)
        .unwrap();
    SignedCommand::decode(queued.command.as_bytes()).unwrap()
}

fn acknowledgement(command: &SignedCommand, reason: RejectReason) -> Acknowledgement {
    Acknowledgement {
        command_id: command.envelope().command_id,
        sequence: command.envelope().sequence,
        outcome: Outcome::Rejected(reason),
    }
}
