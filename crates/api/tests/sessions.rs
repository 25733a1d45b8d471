//! Sign-in, second factor, lockout, sign-out and token expiry.

mod support;

use axum::http::{Method, StatusCode};
use medtunnel_api::totp::STEP_S;
use medtunnel_api::Role;
use serde_json::json;
use support::{send, World};

async fn sign_in_with(world: &World, body: serde_json::Value) -> support::Reply {
    send(
        &world.router,
        Method::POST,
        "/v1/sessions",
        None,
        Some(&body),
    )
    .await
}

#[tokio::test]
async fn wrong_passwords_lead_to_lockout() {
    let world = World::new();
    let wrong = json!({ "username": "pat", "password": "not-the-password" });
    for attempt in 1..=4 {
        let reply = sign_in_with(&world, wrong.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(
            reply.error_code(),
            "invalid_credentials",
            "attempt {attempt}"
        );
    }
    let fifth = sign_in_with(&world, wrong.clone()).await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fifth.error_code(), "account_locked");
    assert_eq!(fifth.headers["retry-after"], "30");

    // While locked, even the right password is rejected.
    let right = json!({ "username": "pat", "password": world.patient.password });
    let locked = sign_in_with(&world, right.clone()).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        locked.body,
        json!({ "error": {
            "code": "account_locked",
            "message": "the account is locked after too many failed sign-ins; try again in 30 seconds",
        }})
    );

    // The next failure after the lock doubles it.
    world.clock.advance(30);
    let sixth = sign_in_with(&world, wrong).await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sixth.headers["retry-after"], "60");

    // After the lock, the right password works and clears the count.
    world.clock.advance(60);
    assert_eq!(
        sign_in_with(&world, right).await.status,
        StatusCode::CREATED
    );
    support::assert_no_secrets();
}

#[tokio::test]
async fn unknown_user_gets_same_answer_as_wrong_password() {
    let world = World::new();
    let unknown = sign_in_with(
        &world,
        json!({ "username": "nobody", "password": "whatever-password" }),
    )
    .await;
    let wrong = sign_in_with(
        &world,
        json!({ "username": "pat", "password": "whatever-password" }),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body, wrong.body);
}

#[tokio::test]
async fn clinician_without_second_factor_cannot_sign_in() {
    let world = World::new();
    let body = json!({ "username": "dr-clara", "password": world.clinician.password });
    let reply = sign_in_with(&world, body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        json!({ "error": {
            "code": "second_factor_required",
            "message": "this account requires a second factor; send the 6-digit code of your authenticator app as \"totp\"",
        }})
    );
    assert!(reply.body.get("token").is_none());
}

#[tokio::test]
async fn operator_without_second_factor_cannot_sign_in() {
    let world = World::new();
    let body = json!({ "username": "otto-ops", "password": world.operator.password });
    let reply = sign_in_with(&world, body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "second_factor_required");
}

#[tokio::test]
async fn wrong_second_factor_is_rejected_and_counted() {
    let world = World::new();
    let secret = world.clinician.totp.as_ref().unwrap();
    let stale_code = secret.code_at(world.clock_now() - 3 * STEP_S);
    let body =
        json!({ "username": "dr-clara", "password": world.clinician.password, "totp": stale_code });
    for attempt in 1..=4 {
        let reply = sign_in_with(&world, body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert_eq!(
            reply.error_code(),
            "invalid_second_factor",
            "attempt {attempt}"
        );
    }
    assert_eq!(
        sign_in_with(&world, body).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn second_factor_code_is_accepted_once() {
    let world = World::new();
    let code = world
        .clinician
        .totp
        .as_ref()
        .unwrap()
        .code_at(world.clock_now());
    let body =
        json!({ "username": "dr-clara", "password": world.clinician.password, "totp": code });
    assert_eq!(
        sign_in_with(&world, body.clone()).await.status,
        StatusCode::CREATED
    );
    let replayed = sign_in_with(&world, body).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed.error_code(), "invalid_second_factor");
}

#[tokio::test]
async fn sign_in_returns_token_with_one_hour_expiry() {
    let world = World::new();
    let body = json!({ "username": "pat", "password": world.patient.password });
    let now = world.clock_now();
    let reply = sign_in_with(&world, body).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_at_s"], now + 3600);
    assert_eq!(reply.body["account"]["username"], "pat");
    assert_eq!(reply.body["account"]["role"], "patient");
    assert_eq!(reply.body["token"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn token_after_sign_out_gets_401() {
    let world = World::new();
    let token = world.sign_in(&world.patient).await;
    assert_eq!(world.get("/v1/me", &token).await.status, StatusCode::OK);
    let signed_out = world.delete("/v1/sessions/current", &token).await;
    assert_eq!(signed_out.status, StatusCode::NO_CONTENT);
    let reply = world.get("/v1/me", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        json!({ "error": {
            "code": "invalid_token",
            "message": "the bearer token is invalid, expired or revoked; sign in again",
        }})
    );
    support::assert_no_secrets();
}

#[tokio::test]
async fn token_after_expiry_gets_401() {
    let world = World::new();
    let token = world.sign_in(&world.patient).await;
    // Signing in moved the clock one step; the token lives 3600 s from its issue.
    world.clock.advance(3600 - STEP_S - 1);
    assert_eq!(world.get("/v1/me", &token).await.status, StatusCode::OK);
    world.clock.advance(1);
    let reply = world.get("/v1/me", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "invalid_token");
}

#[tokio::test]
async fn disabled_account_loses_tokens_and_sign_in() {
    let world = World::new();
    let token = world.sign_in(&world.caregiver).await;
    medtunnel_api::admin::disable_account(
        world.state.access(),
        "carl-caregiver",
        world.clock_now(),
    )
    .unwrap();
    assert_eq!(
        world.get("/v1/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let body = json!({ "username": "carl-caregiver", "password": world.caregiver.password });
    let reply = sign_in_with(&world, body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "invalid_credentials");
}

#[tokio::test]
async fn malformed_authorization_headers_get_401() {
    let world = World::new();
    let reply = world.get("/v1/me", "not-a-real-token").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "invalid_token");

    let request = axum::http::Request::builder()
        .uri("/v1/me")
        .header("authorization", "Basic cGF0OnNlY3JldA==")
        .body(axum::body::Body::empty())
        .unwrap();
    let reply = support::send_request(&world.router, request, false).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code(), "unauthenticated");
}

#[tokio::test]
async fn short_password_is_rejected_at_creation() {
    let world = World::new();
    let error = medtunnel_api::admin::create_account(
        world.state.access(),
        "short-pw",
        Role::Patient,
        "elevenchars",
        medtunnel_api::PasswordCost::insecure_for_tests(),
        world.clock_now(),
    )
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "the password has 11 characters; use at least 12"
    );
}
