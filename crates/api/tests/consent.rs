//! Grants, break-glass access, disclosure accounting and the data routes.

mod support;

use axum::http::StatusCode;
use serde_json::{json, Value};
use support::{World, FIRST_READING_S, READING_COUNT};

fn readings_path(world: &World) -> String {
    format!("/v1/patients/{}/readings", world.patient.id())
}

#[tokio::test]
async fn revoked_grant_stops_next_read() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let caregiver = world.sign_in(&world.caregiver).await;

    let denied = world.get(&readings_path(&world), &caregiver).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    let grant_id = world.grant_all(&patient, &world.caregiver).await;
    let read = world.get(&readings_path(&world), &caregiver).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        read.body["readings"].as_array().unwrap().len(),
        READING_COUNT as usize
    );

    let path = format!("/v1/patients/{}/grants/{grant_id}", world.patient.id());
    let revoked = world.delete(&path, &patient).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["grant"]["revoked_at_s"], world.clock_now());

    let after = world.get(&readings_path(&world), &caregiver).await;
    assert_eq!(after.status, StatusCode::FORBIDDEN);
    assert_eq!(
        after.body,
        json!({ "error": {
            "code": "forbidden",
            "message": format!(
                "no grant in force lets you read glucose data of patient {}; the patient can grant access",
                world.patient.id()
            ),
        }})
    );

    let again = world.delete(&path, &patient).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "conflict");
    support::assert_no_secrets();
}

#[tokio::test]
async fn grant_is_scoped_by_data_type_and_period() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let caregiver = world.sign_in(&world.caregiver).await;
    let now = world.clock_now();
    let body = json!({
        "grantee": "carl-caregiver",
        "data_types": ["device_status"],
        "actions": ["read"],
        "valid_until_s": now + 600,
    });
    let path = format!("/v1/patients/{}/grants", world.patient.id());
    assert_eq!(
        world.post(&path, &patient, &body).await.status,
        StatusCode::CREATED
    );

    let devices_path = format!("/v1/patients/{}/devices", world.patient.id());
    assert_eq!(
        world.get(&devices_path, &caregiver).await.status,
        StatusCode::OK
    );
    assert_eq!(
        world.get(&readings_path(&world), &caregiver).await.status,
        StatusCode::FORBIDDEN
    );

    world.clock.advance(600);
    assert_eq!(
        world.get(&devices_path, &caregiver).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn grant_only_to_caregivers_and_clinicians() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/grants", world.patient.id());
    let body =
        json!({ "grantee": "rita-research", "data_types": ["glucose"], "actions": ["read"] });
    let reply = world.post(&path, &patient, &body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error_message(),
        "\"rita-research\" is a researcher; grants can go only to caregivers and clinicians"
    );

    let empty = json!({ "grantee": "carl-caregiver", "data_types": [], "actions": ["read"] });
    let reply = world.post(&path, &patient, &empty).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error_message(),
        "data_types is empty; list at least one of glucose, insulin, cardiac, device_status"
    );
}

#[tokio::test]
async fn patient_cannot_touch_another_patients_data() {
    let world = World::new();
    let other = world.add_person("paula", medtunnel_api::Role::Patient);
    let other_token = world.sign_in(&other).await;
    assert_eq!(
        world.get(&readings_path(&world), &other_token).await.status,
        StatusCode::FORBIDDEN
    );
    let path = format!("/v1/patients/{}/grants", world.patient.id());
    let body =
        json!({ "grantee": "carl-caregiver", "data_types": ["glucose"], "actions": ["read"] });
    assert_eq!(
        world.post(&path, &other_token, &body).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn break_glass_ends_on_time() {
    let world = World::new();
    let clinician = world.sign_in(&world.clinician).await;
    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::FORBIDDEN
    );

    let path = format!("/v1/patients/{}/break-glass", world.patient.id());
    let body = json!({ "reason": "unconscious on arrival", "duration_minutes": 15 });
    let opened = world.post(&path, &clinician, &body).await;
    assert_eq!(opened.status, StatusCode::CREATED);
    let opened_at = world.clock_now();
    assert_eq!(
        opened.body["break_glass"]["expires_at_s"],
        opened_at + 15 * 60
    );

    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::OK
    );
    world.clock.advance(15 * 60 - 1);
    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::OK
    );
    world.clock.advance(1);
    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn break_glass_notifies_patient() {
    let world = World::new();
    let clinician = world.sign_in(&world.clinician).await;
    let patient = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/break-glass", world.patient.id());
    let body = json!({ "reason": "seizure in clinic" });
    let opened = world.post(&path, &clinician, &body).await;
    assert_eq!(opened.status, StatusCode::CREATED);
    assert_eq!(
        opened.body["break_glass"]["expires_at_s"].as_i64().unwrap() - world.clock_now(),
        3600
    );

    let reply = world.get("/v1/me/notifications", &patient).await;
    let notifications = reply.body["notifications"].as_array().unwrap();
    assert_eq!(notifications.len(), 1);
    assert_eq!(notifications[0]["kind"], "break_glass");
    assert_eq!(notifications[0]["read"], false);
    assert_eq!(
        notifications[0]["text"],
        "Clinician dr-clara opened emergency access to your data at 2024-01-01 00:01:00 UTC \
         for 60 minutes. Reason: seizure in clinic"
    );

    let id = notifications[0]["id"].as_i64().unwrap();
    let marked = world
        .post(
            &format!("/v1/me/notifications/{id}/read"),
            &patient,
            &json!({}),
        )
        .await;
    assert_eq!(marked.status, StatusCode::NO_CONTENT);
    let reply = world.get("/v1/me/notifications", &patient).await;
    assert_eq!(reply.body["notifications"][0]["read"], true);
}

#[tokio::test]
async fn break_glass_rejects_bad_requests() {
    let world = World::new();
    let clinician = world.sign_in(&world.clinician).await;
    let path = format!("/v1/patients/{}/break-glass", world.patient.id());

    let blank = world
        .post(&path, &clinician, &json!({ "reason": "   " }))
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        blank.error_message(),
        "the reason has 0 characters; give 1 to 500 characters saying why emergency access is needed"
    );

    let long = world
        .post(
            &path,
            &clinician,
            &json!({ "reason": "stroke", "duration_minutes": 61 }),
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        long.error_message(),
        "duration_minutes=61 is outside 1 to 60; open a new session when it ends"
    );

    let not_patient = format!("/v1/patients/{}/break-glass", world.auditor.id());
    let reply = world
        .post(&not_patient, &clinician, &json!({ "reason": "stroke" }))
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.error_message(),
        format!("no patient account has id {}", world.auditor.id())
    );
}

#[tokio::test]
async fn disclosure_list_holds_exactly_the_reads() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let caregiver = world.sign_in(&world.caregiver).await;
    let clinician = world.sign_in(&world.clinician).await;
    let auditor = world.sign_in(&world.auditor).await;
    let grant_id = world.grant_all(&patient, &world.caregiver).await;

    // Reads by the patient are not disclosures; denied reads disclose nothing.
    assert_eq!(
        world.get(&readings_path(&world), &patient).await.status,
        StatusCode::OK
    );
    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::FORBIDDEN
    );

    let first_read_at = world.clock_now();
    let page = world
        .get(&format!("{}?limit=5", readings_path(&world)), &caregiver)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    world.clock.advance(10);
    let devices_path = format!("/v1/patients/{}/devices", world.patient.id());
    assert_eq!(
        world.get(&devices_path, &caregiver).await.status,
        StatusCode::OK
    );

    let path = format!("/v1/patients/{}/break-glass", world.patient.id());
    let opened = world
        .post(&path, &clinician, &json!({ "reason": "collapsed" }))
        .await;
    let break_glass_id = opened.body["break_glass"]["id"].as_i64().unwrap();
    world.clock.advance(10);
    assert_eq!(
        world.get(&readings_path(&world), &clinician).await.status,
        StatusCode::OK
    );

    let listing = world
        .get(
            &format!("/v1/patients/{}/disclosures", world.patient.id()),
            &patient,
        )
        .await;
    assert_eq!(listing.status, StatusCode::OK);
    let summary: Vec<Value> = listing.body["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            json!([
                entry["accessor_username"],
                entry["data_type"],
                entry["basis"],
                entry["item_count"],
                entry["disclosed_at_s"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            json!(["carl-caregiver", "glucose", { "kind": "grant", "id": grant_id }, 5, first_read_at]),
            json!(["carl-caregiver", "device_status", { "kind": "grant", "id": grant_id }, 3, first_read_at + 10]),
            json!(["dr-clara", "glucose", { "kind": "break_glass", "id": break_glass_id }, READING_COUNT, first_read_at + 20]),
        ]
    );

    let audit_view = world
        .get(
            &format!("/v1/patients/{}/disclosures", world.patient.id()),
            &auditor,
        )
        .await;
    assert_eq!(audit_view.body, listing.body);
    let all = world.get("/v1/audit/disclosures", &auditor).await;
    assert_eq!(all.body["disclosures"], listing.body["disclosures"]);
    let sessions = world.get("/v1/audit/break-glass", &auditor).await;
    assert_eq!(sessions.body["break_glass"][0]["id"], break_glass_id);
    support::assert_no_secrets();
}

#[tokio::test]
async fn readings_page_with_cursor() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _page in 0..10 {
        let mut path = format!("{}?limit=5", readings_path(&world));
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = world.get(&path, &patient).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        for reading in reply.body["readings"].as_array().unwrap() {
            seen.push(reading.clone());
        }
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), READING_COUNT as usize);
    assert_eq!(
        seen[0],
        json!({
            "device_id": world.cgm,
            "seq": 0,
            "device_time": "2023-12-31 23:00:00",
            "device_time_s": FIRST_READING_S,
            "glucose_mg_dl": 100,
        })
    );
    let seqs: Vec<u64> = seen
        .iter()
        .map(|reading| reading["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..READING_COUNT).collect::<Vec<_>>());
}

#[tokio::test]
async fn readings_filter_by_device_time() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let from = FIRST_READING_S + 300;
    let to = FIRST_READING_S + 900;
    let path = format!("{}?from={from}&to={to}", readings_path(&world));
    let reply = world.get(&path, &patient).await;
    let seqs: Vec<u64> = reply.body["readings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reading| reading["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
}

#[tokio::test]
async fn patient_devices_lists_only_own_devices() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let reply = world
        .get(
            &format!("/v1/patients/{}/devices", world.patient.id()),
            &patient,
        )
        .await;
    let mut ids: Vec<&str> = reply.body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|device| device["device_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![
        world.cgm.as_str(),
        world.second_cgm.as_str(),
        world.pump.as_str(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(!ids.contains(&world.unlinked_cgm.as_str()));
}

#[tokio::test]
async fn operator_sees_devices_but_no_readings() {
    let world = World::new();
    let operator = world.sign_in(&world.operator).await;
    let reply = world.get("/v1/devices", &operator).await;
    assert_eq!(reply.status, StatusCode::OK);
    let devices = reply.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 5);
    for device in devices {
        let keys: Vec<&String> = device.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["device_id", "model", "status"]);
    }
    let denied = world.get(&readings_path(&world), &operator).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.error_message(),
        "operators have no access to health data; GET /v1/devices lists the fleet"
    );
}

#[tokio::test]
async fn researcher_gets_403_on_patient_routes() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let researcher = world.sign_in(&world.researcher).await;
    // Even a grant cannot be given to a researcher, so none exists here.
    world.grant_all(&patient, &world.caregiver).await;
    for suffix in ["readings", "devices", "grants", "disclosures"] {
        let path = format!("/v1/patients/{}/{suffix}", world.patient.id());
        let reply = world.get(&path, &researcher).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{suffix}");
        assert_eq!(reply.error_code(), "forbidden", "{suffix}");
    }
}
