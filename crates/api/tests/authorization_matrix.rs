//! Every route of the router's own table, called by every role and anonymously, with and
//! without a grant from the patient, against the status each case must get.

mod support;

use axum::http::{Method, StatusCode};
use medtunnel_api::{routes, Authentication, Role, Route, RouteMethod};
use serde_json::{json, Value};
use support::{send, World};

/// Caller of one case: `None` is anonymous.
type Subject = Option<Role>;

/// The status a case must get. A route missing here fails the test, so every new route
/// needs its row.
fn expected_status(route: &Route, subject: Subject, granted: bool) -> StatusCode {
    let Some(role) = subject else {
        return match route.authentication {
            Authentication::Anonymous => status(route.success_status),
            Authentication::BearerToken => StatusCode::UNAUTHORIZED,
        };
    };
    let allowed = |yes: bool| {
        if yes {
            status(route.success_status)
        } else {
            StatusCode::FORBIDDEN
        }
    };
    let grantee = matches!(role, Role::Caregiver | Role::Clinician);
    match (route.method, route.path) {
        (RouteMethod::Get, "/health" | "/openapi.json") => StatusCode::OK,
        (RouteMethod::Post, "/v1/sessions") => StatusCode::CREATED,
        (RouteMethod::Delete, "/v1/sessions/current") => StatusCode::NO_CONTENT,
        (RouteMethod::Get, "/v1/me" | "/v1/me/notifications") => StatusCode::OK,
        // The notification belongs to the patient; for anyone else it does not exist.
        (RouteMethod::Post, "/v1/me/notifications/{notification_id}/read") => {
            if role == Role::Patient {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            }
        }
        (RouteMethod::Get, "/v1/devices") => allowed(role == Role::Operator),
        (RouteMethod::Get, "/v1/audit/disclosures" | "/v1/audit/break-glass") => {
            allowed(role == Role::Auditor)
        }
        (
            RouteMethod::Get,
            "/v1/patients/{patient_id}/devices" | "/v1/patients/{patient_id}/readings",
        ) => allowed(role == Role::Patient || (grantee && granted)),
        (
            RouteMethod::Get,
            "/v1/patients/{patient_id}/grants" | "/v1/patients/{patient_id}/disclosures",
        ) => allowed(matches!(role, Role::Patient | Role::Auditor)),
        (RouteMethod::Post, "/v1/patients/{patient_id}/grants")
        | (RouteMethod::Delete, "/v1/patients/{patient_id}/grants/{grant_id}") => {
            allowed(role == Role::Patient)
        }
        (RouteMethod::Post, "/v1/patients/{patient_id}/break-glass") => {
            allowed(role == Role::Clinician)
        }
        // Changes need the patient or a request_changes grant; break-glass allows none.
        (RouteMethod::Post, "/v1/patients/{patient_id}/change-requests") => {
            allowed(role == Role::Patient || (grantee && granted))
        }
        (RouteMethod::Get, "/v1/patients/{patient_id}/change-requests/{request_id}") => {
            allowed(role == Role::Patient || (grantee && granted))
        }
        (
            RouteMethod::Post,
            "/v1/change-requests/{request_id}/review" | "/v1/change-requests/{request_id}/cosign",
        ) => allowed(role == Role::Clinician && granted),
        (method, path) => panic!("no expected status for {method:?} {path}; add a row"),
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// Returns the error code that goes with an error status in this matrix.
fn expected_error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        other => panic!("no error code for {other} in this matrix"),
    }
}

/// Ids a case's request needs, prepared in its world.
struct Fixture {
    /// A grant from the patient to a second caregiver, which no case's caller holds.
    other_grant_id: i64,
    /// A notification of the patient.
    notification_id: i64,
    /// A change request of the patient that waits for review.
    pending_review_id: i64,
    /// A change request of the patient that waits for a co-signature.
    needs_cosign_id: i64,
}

/// Builds a world where a second clinician broke the glass (which notifies the patient)
/// and a second caregiver has a grant. The patient requested a change that waits for
/// review, and the second clinician one that waits for a co-signature. With `granted`,
/// the caregiver and the clinician also have grants to read and request changes to all
/// data types.
async fn prepare(world: &World, granted: bool) -> Fixture {
    let patient_token = world.sign_in(&world.patient).await;
    let other_caregiver = world.add_person("cora-caregiver", Role::Caregiver);
    let other_grant_id = world.grant_all(&patient_token, &other_caregiver).await;
    if granted {
        for grantee in [&world.caregiver, &world.clinician] {
            world.grant_all(&patient_token, grantee).await;
            world
                .grant(
                    &patient_token,
                    grantee,
                    &ALL_DATA_TYPES,
                    &["request_changes"],
                )
                .await;
        }
    }
    let other_clinician = world.add_person("dr-other", Role::Clinician);
    world
        .grant(
            &patient_token,
            &other_clinician,
            &ALL_DATA_TYPES,
            &["request_changes"],
        )
        .await;
    let other_clinician_token = world.sign_in(&other_clinician).await;
    let path = format!("/v1/patients/{}/break-glass", world.patient.id());
    let body = json!({ "reason": "unconscious in the emergency room" });
    let reply = world.post(&path, &other_clinician_token, &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let notifications = world.get("/v1/me/notifications", &patient_token).await;
    let notification_id = notifications.body["notifications"][0]["id"]
        .as_i64()
        .unwrap();

    world.report_pump_status(Some([7; 16]));
    let changes = format!("/v1/patients/{}/change-requests", world.patient.id());
    let temp_basal = json!({
        "device_id": world.pump,
        "change": { "kind": "temp_basal", "percent": 150, "duration_minutes": 30 },
    });
    let pending = world.post(&changes, &patient_token, &temp_basal).await;
    assert_eq!(
        pending.body["state"], "pending_review",
        "{:?}",
        pending.body
    );
    let profile = json!({
        "device_id": world.pump,
        "change": {
            "kind": "basal_profile",
            "segments": [{ "start_minute": 0, "units_per_hour": 1.2 }],
        },
    });
    let high_risk = world.post(&changes, &other_clinician_token, &profile).await;
    assert_eq!(
        high_risk.body["state"], "needs_cosign",
        "{:?}",
        high_risk.body
    );
    Fixture {
        other_grant_id,
        notification_id,
        pending_review_id: pending.body["id"].as_i64().unwrap(),
        needs_cosign_id: high_risk.body["id"].as_i64().unwrap(),
    }
}

const ALL_DATA_TYPES: [&str; 4] = ["glucose", "insulin", "cardiac", "device_status"];

/// Builds the concrete path and body of a route's request in a world.
fn request_for(route: &Route, world: &World, fixture: &Fixture) -> (String, Option<Value>) {
    let request_id = match route.path {
        "/v1/change-requests/{request_id}/cosign" => fixture.needs_cosign_id,
        _ => fixture.pending_review_id,
    };
    let path = route
        .path
        .replace("{patient_id}", &world.patient.id().to_string())
        .replace("{request_id}", &request_id.to_string())
        .replace("{grant_id}", &fixture.other_grant_id.to_string())
        .replace("{notification_id}", &fixture.notification_id.to_string());
    let body = match (route.method, route.path) {
        (RouteMethod::Post, "/v1/sessions") => Some(json!({
            "username": world.patient.username(),
            "password": world.patient.password,
        })),
        (RouteMethod::Post, "/v1/patients/{patient_id}/grants") => Some(json!({
            "grantee": "carl-caregiver",
            "data_types": ["glucose"],
            "actions": ["read"],
        })),
        (RouteMethod::Post, "/v1/patients/{patient_id}/break-glass") => Some(json!({
            "reason": "patient found unresponsive",
            "duration_minutes": 30,
        })),
        (RouteMethod::Post, "/v1/patients/{patient_id}/change-requests") => Some(json!({
            "device_id": world.pump,
            "change": { "kind": "temp_basal", "percent": 110, "duration_minutes": 30 },
        })),
        (RouteMethod::Post, "/v1/change-requests/{request_id}/review") => {
            Some(json!({ "approve": true }))
        }
        _ => None,
    };
    (path, body)
}

fn method(route: &Route) -> Method {
    route.method.as_http()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_role_and_grant_gets_expected_status() {
    let subjects: Vec<Subject> = std::iter::once(None)
        .chain(Role::ALL.into_iter().map(Some))
        .collect();
    let mut cases = 0;
    let mut failures = Vec::new();
    for route in routes() {
        for &subject in &subjects {
            for granted in [false, true] {
                // A fresh world per case, because some routes change state (sign-out,
                // revoke, break-glass) that later cases would otherwise see.
                let world = World::new();
                let fixture = prepare(&world, granted).await;
                let token = match subject {
                    None => None,
                    Some(role) => Some(world.sign_in(person_of(&world, role)).await),
                };
                let (path, body) = request_for(route, &world, &fixture);
                let reply = send(
                    &world.router,
                    method(route),
                    &path,
                    token.as_deref(),
                    body.as_ref(),
                )
                .await;
                let expected = expected_status(route, subject, granted);
                cases += 1;
                let label = format!(
                    "{:?} {} as {} {}",
                    route.method,
                    route.path,
                    subject.map_or("anonymous", Role::as_str),
                    if granted {
                        "with grant"
                    } else {
                        "without grant"
                    }
                );
                if reply.status != expected {
                    failures.push(format!(
                        "{label}: got {}, expected {expected}: {}",
                        reply.status, reply.body
                    ));
                    continue;
                }
                if !expected.is_success() && reply.error_code() != expected_error_code(expected) {
                    failures.push(format!("{label}: error body {}", reply.body));
                }
            }
        }
    }
    assert_eq!(cases, routes().len() * 7 * 2);
    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    support::assert_no_secrets();
}

fn person_of(world: &World, role: Role) -> &support::Person {
    match role {
        Role::Patient => &world.patient,
        Role::Caregiver => &world.caregiver,
        Role::Clinician => &world.clinician,
        Role::Researcher => &world.researcher,
        Role::Operator => &world.operator,
        Role::Auditor => &world.auditor,
    }
}

#[tokio::test]
async fn anonymous_gets_401_outside_open_routes() {
    let world = World::new();
    let open: Vec<&str> = routes()
        .iter()
        .filter(|route| route.authentication == Authentication::Anonymous)
        .map(|route| route.path)
        .collect();
    assert_eq!(open, ["/health", "/openapi.json", "/v1/sessions"]);
    for route in routes()
        .iter()
        .filter(|route| route.authentication == Authentication::BearerToken)
    {
        let path = route.path.replace(['{', '}'], "");
        let path = path
            .replace("patient_id", "1")
            .replace("grant_id", "1")
            .replace("notification_id", "1")
            .replace("request_id", "1");
        let reply = send(&world.router, method(route), &path, None, None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{:?} {}",
            route.method,
            route.path
        );
        assert_eq!(
            reply.error_code(),
            "unauthenticated",
            "{:?} {}",
            route.method,
            route.path
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let world = World::new();
    let reply = send(&world.router, Method::GET, "/openapi.json", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["openapi"], "3.0.3");
    let paths = reply.body["paths"].as_object().unwrap();
    let mut operations = 0;
    for route in routes() {
        let method = format!("{:?}", route.method).to_lowercase();
        let operation = &paths[route.path][&method];
        assert_eq!(
            operation["operationId"], route.operation_id,
            "{method} {}",
            route.path
        );
        assert!(operation["responses"][route.success_status.to_string()].is_object());
        operations += 1;
    }
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, operations);
}
