//! Every error shares one JSON shape; statuses and bodies are exact.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use support::{send, send_request, World};

fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

#[tokio::test]
async fn unknown_route_gets_404_body() {
    let world = World::new();
    let reply = send(&world.router, Method::GET, "/v1/nowhere", None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply.body,
        error_body(
            "route_not_found",
            "no route matches this path; GET /openapi.json lists the routes"
        )
    );
}

#[tokio::test]
async fn wrong_method_gets_405_body() {
    let world = World::new();
    let reply = send(&world.router, Method::PUT, "/v1/sessions", None, None).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        reply.body,
        error_body(
            "method_not_allowed",
            "this route does not accept the request method; GET /openapi.json lists the methods"
        )
    );
}

#[tokio::test]
async fn missing_token_gets_401_body() {
    let world = World::new();
    let reply = send(&world.router, Method::GET, "/v1/me", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.body,
        error_body(
            "unauthenticated",
            "this route requires a bearer token; sign in at POST /v1/sessions and send the token as \"Authorization: Bearer <token>\""
        )
    );
}

#[tokio::test]
async fn malformed_json_gets_400_body() {
    let world = World::new();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/sessions")
        .header("content-type", "application/json")
        .body(Body::from("{\"username\": "))
        .unwrap();
    let reply = send_request(&world.router, request, true).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "the request body is not valid JSON (at line 1, column 13); send one JSON object"
        )
    );
}

#[tokio::test]
async fn body_without_json_content_type_gets_400() {
    let world = World::new();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/sessions")
        .body(Body::from("{}"))
        .unwrap();
    let reply = send_request(&world.router, request, true).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "the request body must be JSON, sent with \"Content-Type: application/json\""
        )
    );
}

#[tokio::test]
async fn missing_field_is_named() {
    let world = World::new();
    let body = json!({ "username": "pat" });
    let reply = send(
        &world.router,
        Method::POST,
        "/v1/sessions",
        None,
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "the request body is invalid: missing field `password` at line 1 column 18"
        )
    );
}

#[tokio::test]
async fn wrong_typed_value_is_not_echoed() {
    let world = World::new();
    let body = json!({ "username": "pat", "password": 918273645546372_i64 });
    let reply = send(
        &world.router,
        Method::POST,
        "/v1/sessions",
        None,
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        !reply.error_message().contains("918273645546372"),
        "{}",
        reply.body
    );
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "the request body has a value of the wrong type or out of range at line 1, column 27; GET /openapi.json lists the expected fields"
        )
    );
}

#[tokio::test]
async fn page_limit_above_maximum_gets_400() {
    let world = World::new();
    let token = world.sign_in(&world.patient).await;
    let path = format!("/v1/patients/{}/readings?limit=1001", world.patient.id());
    let reply = world.get(&path, &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "limit=1001 is outside 1 to 1000; request at most 1000 readings per page and follow next_cursor"
        )
    );
}

#[tokio::test]
async fn invalid_cursor_and_range_get_400() {
    let world = World::new();
    let token = world.sign_in(&world.patient).await;
    let base = format!("/v1/patients/{}/readings", world.patient.id());
    let reply = world.get(&format!("{base}?cursor=zz"), &token).await;
    assert_eq!(
        reply.body,
        error_body(
            "invalid_request",
            "the cursor is invalid; pass the next_cursor of the previous page unchanged"
        )
    );
    let reply = world.get(&format!("{base}?from=20&to=10"), &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.error_message(),
        "from=20 is not before to=10; give a range whose start is before its end"
    );
    let reply = world.get(&format!("{base}?limit=ten"), &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_request");
}

#[tokio::test]
async fn invalid_path_id_gets_400() {
    let world = World::new();
    let token = world.sign_in(&world.patient).await;
    let reply = world.get("/v1/patients/abc/readings", &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "invalid_request");
}

#[tokio::test]
async fn storage_failure_gets_generic_500() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.db");
    let world = World::with_access_file(&path);
    let token = world.sign_in(&world.patient).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE notifications")
        .unwrap();

    let reply = world.get("/v1/me/notifications", &token).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.error_code(), "internal_error");
    let message = reply.error_message();
    let reference = message
        .strip_prefix("an internal error occurred; quote reference ")
        .and_then(|rest| rest.strip_suffix(" when reporting it"))
        .unwrap_or_else(|| panic!("unexpected message {message:?}"));
    assert_eq!(reference.len(), 16);
    assert!(
        !message.contains("notifications"),
        "the cause leaked: {message}"
    );

    let logs = support::logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains(reference))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);
    assert!(lines[0].contains("no such table"), "{}", lines[0]);
}
