//! The route table. The router, the OpenAPI document and the authorization tests are
//! all built from [`routes`], so no route can exist in one of them and not the others.

mod change_body;
mod change_requests;
mod consent;
mod fleet;
mod me;
pub(crate) mod openapi;
mod patients;
mod sessions;

use axum::http::Method;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;

use crate::error::ApiError;
use crate::state::ApiState;

/// HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl RouteMethod {
    /// Returns the method for building requests.
    pub fn as_http(self) -> Method {
        match self {
            RouteMethod::Get => Method::GET,
            RouteMethod::Post => Method::POST,
            RouteMethod::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            RouteMethod::Get => MethodFilter::GET,
            RouteMethod::Post => MethodFilter::POST,
            RouteMethod::Delete => MethodFilter::DELETE,
        }
    }
}

/// Whether a route needs a bearer token. Authorization rules apply after this check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Open to anonymous requests.
    Anonymous,
    /// Requires `Authorization: Bearer <token>`; without one the response is 401.
    BearerToken,
}

/// A query parameter or a field of a JSON body, for the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Name.
    pub name: &'static str,
    /// OpenAPI type: `string`, `integer`, `boolean`, `object` or `array` (of strings).
    pub kind: &'static str,
    /// Whether it must be present.
    pub required: bool,
    /// Description of the value it sets, with its unit.
    pub description: &'static str,
}

/// One route of the API.
pub struct Route {
    /// HTTP method.
    pub method: RouteMethod,
    /// Path template, with `{name}` for each path parameter.
    pub path: &'static str,
    /// Stable operation name.
    pub operation_id: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Whether a bearer token is needed.
    pub authentication: Authentication,
    /// Status of a successful response.
    pub success_status: u16,
    /// Query parameters.
    pub query: &'static [Field],
    /// Fields of the JSON request body; empty for routes without a body.
    pub body: &'static [Field],
    handler: fn(MethodFilter) -> MethodRouter<ApiState>,
}

use Authentication::{Anonymous, BearerToken};
use RouteMethod::{Delete, Get, Post};

static ROUTES: &[Route] = &[
    Route {
        method: Get,
        path: "/health",
        operation_id: "health",
        summary: "Reports that the service is up.",
        authentication: Anonymous,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, openapi::health),
    },
    Route {
        method: Get,
        path: "/openapi.json",
        operation_id: "openapi",
        summary: "Returns this OpenAPI 3.0 description.",
        authentication: Anonymous,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, openapi::serve_document),
    },
    Route {
        method: Post,
        path: "/v1/sessions",
        operation_id: "sign_in",
        summary: "Signs in with user name, password and, for clinicians and operators, a TOTP code; returns a bearer token.",
        authentication: Anonymous,
        success_status: 201,
        query: &[],
        body: sessions::SIGN_IN_FIELDS,
        handler: |filter| on(filter, sessions::sign_in),
    },
    Route {
        method: Delete,
        path: "/v1/sessions/current",
        operation_id: "sign_out",
        summary: "Signs out: revokes the bearer token of this request.",
        authentication: BearerToken,
        success_status: 204,
        query: &[],
        body: &[],
        handler: |filter| on(filter, sessions::sign_out),
    },
    Route {
        method: Get,
        path: "/v1/me",
        operation_id: "me",
        summary: "Returns the signed-in account.",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, me::account),
    },
    Route {
        method: Get,
        path: "/v1/me/notifications",
        operation_id: "list_notifications",
        summary: "Lists the signed-in account's notifications, such as break-glass notices.",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, me::notifications),
    },
    Route {
        method: Post,
        path: "/v1/me/notifications/{notification_id}/read",
        operation_id: "mark_notification_read",
        summary: "Marks a notification of the signed-in account as read.",
        authentication: BearerToken,
        success_status: 204,
        query: &[],
        body: &[],
        handler: |filter| on(filter, me::mark_read),
    },
    Route {
        method: Get,
        path: "/v1/devices",
        operation_id: "list_fleet_devices",
        summary: "Lists every device with model and status, without patients or readings (operators).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, fleet::devices),
    },
    Route {
        method: Get,
        path: "/v1/audit/disclosures",
        operation_id: "list_all_disclosures",
        summary: "Lists the disclosures of all patients (auditors).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, fleet::disclosures),
    },
    Route {
        method: Get,
        path: "/v1/audit/break-glass",
        operation_id: "list_break_glass",
        summary: "Lists all break-glass sessions (auditors).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, fleet::break_glass),
    },
    Route {
        method: Get,
        path: "/v1/patients/{patient_id}/devices",
        operation_id: "list_patient_devices",
        summary: "Lists a patient's devices with model and status.",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, patients::devices),
    },
    Route {
        method: Get,
        path: "/v1/patients/{patient_id}/readings",
        operation_id: "list_readings",
        summary: "Lists a patient's glucose readings in device-time order, one page at a time.",
        authentication: BearerToken,
        success_status: 200,
        query: patients::READINGS_QUERY,
        body: &[],
        handler: |filter| on(filter, patients::readings),
    },
    Route {
        method: Get,
        path: "/v1/patients/{patient_id}/grants",
        operation_id: "list_grants",
        summary: "Lists a patient's grants, revoked and expired ones included (the patient and auditors).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, consent::list_grants),
    },
    Route {
        method: Post,
        path: "/v1/patients/{patient_id}/grants",
        operation_id: "create_grant",
        summary: "Grants a caregiver or clinician access to some of the patient's data types for a period (the patient).",
        authentication: BearerToken,
        success_status: 201,
        query: &[],
        body: consent::GRANT_FIELDS,
        handler: |filter| on(filter, consent::create_grant),
    },
    Route {
        method: Delete,
        path: "/v1/patients/{patient_id}/grants/{grant_id}",
        operation_id: "revoke_grant",
        summary: "Revokes a grant; the grantee's next request is checked without it (the patient).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, consent::revoke_grant),
    },
    Route {
        method: Post,
        path: "/v1/patients/{patient_id}/break-glass",
        operation_id: "open_break_glass",
        summary: "Opens time-limited emergency read access to a patient and notifies the patient (clinicians).",
        authentication: BearerToken,
        success_status: 201,
        query: &[],
        body: consent::BREAK_GLASS_FIELDS,
        handler: |filter| on(filter, consent::open_break_glass),
    },
    Route {
        method: Get,
        path: "/v1/patients/{patient_id}/disclosures",
        operation_id: "list_disclosures",
        summary: "Lists who read the patient's data, when, and on which basis (the patient and auditors).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, consent::list_disclosures),
    },
    Route {
        method: Post,
        path: "/v1/patients/{patient_id}/change-requests",
        operation_id: "submit_change_request",
        summary: "Requests a therapy settings change on a patient's pump or pacemaker; the response's state is the policy's decision (the patient, or a grantee with request_changes).",
        authentication: BearerToken,
        success_status: 201,
        query: &[],
        body: change_requests::SUBMIT_FIELDS,
        handler: |filter| on(filter, change_requests::submit),
    },
    Route {
        method: Get,
        path: "/v1/patients/{patient_id}/change-requests/{request_id}",
        operation_id: "get_change_request",
        summary: "Returns a change request with its state, reasons, reviewer and co-signer (the patient, a grantee with read, or break-glass).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, change_requests::show),
    },
    Route {
        method: Post,
        path: "/v1/change-requests/{request_id}/review",
        operation_id: "review_change_request",
        summary: "Approves or rejects a change request that waits for review (clinicians with request_changes, other than the requester).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: change_requests::REVIEW_FIELDS,
        handler: |filter| on(filter, change_requests::review),
    },
    Route {
        method: Post,
        path: "/v1/change-requests/{request_id}/cosign",
        operation_id: "cosign_change_request",
        summary: "Co-signs a high-risk change request (clinicians with request_changes, other than the requester and reviewer).",
        authentication: BearerToken,
        success_status: 200,
        query: &[],
        body: &[],
        handler: |filter| on(filter, change_requests::cosign),
    },
];

/// Returns every route of the API, the table the router is built from.
pub fn routes() -> &'static [Route] {
    ROUTES
}

/// Builds the router from [`routes`], with JSON error bodies for unknown routes and
/// methods.
pub fn router(state: ApiState) -> Router {
    let mut router = Router::new();
    for route in routes() {
        router = router.route(route.path, (route.handler)(route.method.filter()));
    }
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Runs each request in a span with its method and route template (never the concrete
/// path, which names patients), so that audit events record where they happened.
async fn request_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;

    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_owned();
    let span = tracing::info_span!("request", method = %request.method(), route = %route);
    next.run(request).instrument(span).await
}
