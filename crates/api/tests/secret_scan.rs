//! Runs every route, success and failure paths alike, then scans all response bodies and
//! log lines for passwords, hashes, tokens, TOTP secrets and device keys.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{find_secrets, send, World};

#[tokio::test]
async fn no_secret_in_bodies_or_logs() {
    let world = World::new();
    let patient = world.sign_in(&world.patient).await;
    let caregiver = world.sign_in(&world.caregiver).await;
    let clinician = world.sign_in(&world.clinician).await;
    let operator = world.sign_in(&world.operator).await;
    let auditor = world.sign_in(&world.auditor).await;
    let researcher = world.sign_in(&world.researcher).await;
    let id = world.patient.id();

    // Failed sign-ins of every kind, with the real password in the wrong place.
    let attempts = [
        json!({ "username": "pat", "password": "wrong-password-1" }),
        json!({ "username": world.patient.password, "password": world.patient.password }),
        json!({ "username": "dr-clara", "password": world.clinician.password }),
        json!({ "username": "dr-clara", "password": world.clinician.password, "totp": "000000" }),
        json!({ "username": "pat", "password": 12, "totp": world.patient.password }),
    ];
    for body in &attempts {
        send(
            &world.router,
            Method::POST,
            "/v1/sessions",
            None,
            Some(body),
        )
        .await;
    }
    for _ in 0..6 {
        let body = json!({ "username": "audrey", "password": "wrong-password-2" });
        send(
            &world.router,
            Method::POST,
            "/v1/sessions",
            None,
            Some(&body),
        )
        .await;
    }

    let grant_id = world.grant_all(&patient, &world.caregiver).await;
    world
        .get(&format!("/v1/patients/{id}/readings"), &caregiver)
        .await;
    world
        .get(&format!("/v1/patients/{id}/devices"), &caregiver)
        .await;
    world
        .post(
            &format!("/v1/patients/{id}/break-glass"),
            &clinician,
            &json!({ "reason": "coma" }),
        )
        .await;
    world
        .get(&format!("/v1/patients/{id}/readings?limit=2"), &clinician)
        .await;
    world
        .get(&format!("/v1/patients/{id}/readings"), &researcher)
        .await;
    world.get("/v1/devices", &operator).await;
    world.get("/v1/audit/disclosures", &auditor).await;
    world.get("/v1/audit/break-glass", &auditor).await;
    world
        .get(&format!("/v1/patients/{id}/disclosures"), &patient)
        .await;
    world
        .get(&format!("/v1/patients/{id}/grants"), &patient)
        .await;
    world.get("/v1/me/notifications", &patient).await;
    world.get("/v1/me", &clinician).await;
    world
        .delete(&format!("/v1/patients/{id}/grants/{grant_id}"), &patient)
        .await;
    world
        .get(&format!("/v1/patients/{id}/readings"), &caregiver)
        .await;
    world.get("/openapi.json", &patient).await;
    world.delete("/v1/sessions/current", &caregiver).await;
    let after = world.get("/v1/me", &caregiver).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // The scenario logged its security events, so the scan has something to read.
    let logs = support::logs();
    for event in [
        "sign_in",
        "account_locked",
        "grant_created",
        "grant_revoked",
        "break_glass_opened",
        "disclosure",
        "sign_out",
    ] {
        assert!(
            logs.contains(&format!("event=\"{event}\"")),
            "no {event} event in the logs"
        );
    }
    support::assert_no_secrets();
}

#[test]
fn scanner_finds_planted_secrets() {
    support::init_capture();
    let secrets = vec![
        "0123456789abcdef0123".to_owned(),
        "correct-horse-battery".to_owned(),
    ];
    let texts = vec![
        "clean text".to_owned(),
        "token=0123456789abcdef0123 trailing".to_owned(),
        "hash $argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_owned(),
        "prefix-correct-horse-battery".to_owned(),
        "correct-horse-batter without the last letter".to_owned(),
    ];
    let findings = find_secrets(&texts, &secrets);
    assert_eq!(
        findings,
        [
            "text 1 contains the secret starting 0123",
            "text 2 contains an argon2 hash",
            "text 3 contains the secret starting corr",
        ]
    );
}
