//! The API's one error type and the one place where errors become HTTP responses.
//!
//! Where each failure goes:
//!
//! | failure | variant | status | `code` |
//! |---|---|---|---|
//! | no `Authorization: Bearer` header | [`ApiError::MissingToken`] | 401 | `unauthenticated` |
//! | unknown, expired or revoked token | [`ApiError::InvalidToken`] | 401 | `invalid_token` |
//! | wrong user name or password | [`ApiError::InvalidCredentials`] | 401 | `invalid_credentials` |
//! | correct password, TOTP code missing | [`ApiError::SecondFactorRequired`] | 401 | `second_factor_required` |
//! | wrong or reused TOTP code | [`ApiError::InvalidSecondFactor`] | 401 | `invalid_second_factor` |
//! | too many failed sign-ins | [`ApiError::AccountLocked`] | 429 | `account_locked` |
//! | role, grant or ownership does not allow it | [`ApiError::Forbidden`] | 403 | `forbidden` |
//! | named record does not exist | [`ApiError::NotFound`] | 404 | `not_found` |
//! | no such route | [`ApiError::RouteNotFound`] | 404 | `route_not_found` |
//! | route exists, method does not | [`ApiError::MethodNotAllowed`] | 405 | `method_not_allowed` |
//! | malformed body, query or path value | [`ApiError::InvalidRequest`] | 400 | `invalid_request` |
//! | request clashes with stored state | [`ApiError::Conflict`] | 409 | `conflict` |
//! | change request's state does not allow the action | [`ApiError::InvalidRequestState`] | 409 | `invalid_request_state` |
//! | requester or reviewer tries to co-sign or review their own change | [`ApiError::SecondClinicianRequired`] | 409 | `second_clinician_required` |
//! | device not enrolled for therapy commands | [`ApiError::DeviceNotEnrolled`] | 409 | `device_not_enrolled` |
//! | a service this route needs is not configured | [`ApiError::ServiceUnavailable`] | 503 | `service_unavailable` |
//! | storage failure or bug on our side | [`ApiError::Internal`] | 500 | `internal_error` |
//!
//! A [`medtunnel_therapy::TherapyError`] for an unknown request id or a device of another
//! patient becomes 404. The request's state, the same-person rule and a missing
//! enrollment give the three therapy rows above, and storage, key and audit failures
//! are internal.
//!
//! Every body is `{"error": {"code": "...", "message": "..."}}`. An internal error is
//! logged once, at `error` level, with a correlation id that the body repeats, and its
//! cause never reaches the client. No message contains a password, hash, token, TOTP
//! secret or health value: handlers build messages from ids, names and limits only.

use std::error::Error;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde_json::json;

use medtunnel_therapy::TherapyError;

use crate::access::AccessStoreError;

/// Failure of a request, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request carries no bearer token.
    #[error("this route requires a bearer token; sign in at POST /v1/sessions and send the token as \"Authorization: Bearer <token>\"")]
    MissingToken,
    /// The bearer token is unknown, expired or revoked, or its account is disabled.
    #[error("the bearer token is invalid, expired or revoked; sign in again")]
    InvalidToken,
    /// The user name or password is wrong.
    #[error("the user name or password is wrong")]
    InvalidCredentials,
    /// The role needs a TOTP code and the sign-in gave none.
    #[error("this account requires a second factor; send the 6-digit code of your authenticator app as \"totp\"")]
    SecondFactorRequired,
    /// The TOTP code is wrong, expired or was used before.
    #[error("the second-factor code is wrong, expired or already used; wait for the next code and try again")]
    InvalidSecondFactor,
    /// The account is locked after too many failed sign-ins.
    #[error("the account is locked after too many failed sign-ins; try again in {retry_after_s} seconds")]
    AccountLocked {
        /// Seconds until the lock ends.
        retry_after_s: i64,
    },
    /// The caller may not do this. The message names the rule that applied.
    #[error("{0}")]
    Forbidden(String),
    /// A record named in the request does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No route matches the path.
    #[error("no route matches this path; GET /openapi.json lists the routes")]
    RouteNotFound,
    /// The route does not accept the method.
    #[error("this route does not accept the request method; GET /openapi.json lists the methods")]
    MethodNotAllowed,
    /// The body, query or path is malformed or out of range.
    #[error("{0}")]
    InvalidRequest(String),
    /// The request clashes with stored state.
    #[error("{0}")]
    Conflict(String),
    /// The change request is in a state where the action is not possible, such as a
    /// review of an approved request.
    #[error("{0}")]
    InvalidRequestState(String),
    /// A clinician tried to review or co-sign a change they requested or reviewed; a
    /// different clinician must do it.
    #[error("{0}")]
    SecondClinicianRequired(String),
    /// The device takes no therapy commands until an operator enrolls it.
    #[error("{0}")]
    DeviceNotEnrolled(String),
    /// A service the route needs is not configured on this server.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// A failure on our side. Its cause is logged, never sent.
    #[error("an internal error occurred")]
    Internal(InternalError),
}

/// Cause of an internal error, for the log only.
#[derive(Debug)]
pub struct InternalError {
    /// Operation that failed, for example "loading grants".
    context: &'static str,
    source: Box<dyn Error + Send + Sync>,
}

impl fmt::Display for InternalError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} failed: {}", self.context, self.source)
    }
}

impl ApiError {
    /// Wraps a failure on our side. `context` names the operation that failed.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        ApiError::Internal(InternalError {
            context,
            source: source.into(),
        })
    }

    /// Returns the HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken
            | ApiError::InvalidToken
            | ApiError::InvalidCredentials
            | ApiError::SecondFactorRequired
            | ApiError::InvalidSecondFactor => StatusCode::UNAUTHORIZED,
            ApiError::AccountLocked { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_)
            | ApiError::InvalidRequestState(_)
            | ApiError::SecondClinicianRequired(_)
            | ApiError::DeviceNotEnrolled(_) => StatusCode::CONFLICT,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable machine-readable code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "unauthenticated",
            ApiError::InvalidToken => "invalid_token",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::SecondFactorRequired => "second_factor_required",
            ApiError::InvalidSecondFactor => "invalid_second_factor",
            ApiError::AccountLocked { .. } => "account_locked",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Conflict(_) => "conflict",
            ApiError::InvalidRequestState(_) => "invalid_request_state",
            ApiError::SecondClinicianRequired(_) => "second_clinician_required",
            ApiError::DeviceNotEnrolled(_) => "device_not_enrolled",
            ApiError::ServiceUnavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl From<AccessStoreError> for ApiError {
    fn from(error: AccessStoreError) -> Self {
        match error {
            AccessStoreError::UsernameTaken(_) | AccessStoreError::DeviceAlreadyLinked { .. } => {
                ApiError::Conflict(error.to_string())
            }
            other => ApiError::internal("access store operation", other),
        }
    }
}

impl From<TherapyError> for ApiError {
    fn from(error: TherapyError) -> Self {
        match error {
            TherapyError::RequestNotFound(_) | TherapyError::DevicePatientMismatch { .. } => {
                ApiError::NotFound(error.to_string())
            }
            TherapyError::InvalidState { .. } => ApiError::InvalidRequestState(error.to_string()),
            TherapyError::NotPermitted(_) => ApiError::SecondClinicianRequired(format!(
                "{error}; ask another clinician with a grant from the patient"
            )),
            TherapyError::DeviceNotEnrolled(_) => ApiError::DeviceNotEnrolled(error.to_string()),
            TherapyError::NotEnrollable { .. } => ApiError::InvalidRequest(error.to_string()),
            other => ApiError::internal("therapy service operation", other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let message = match &self {
            ApiError::Internal(cause) => {
                let correlation_id = correlation_id();
                tracing::error!(%correlation_id, error = %cause, "request failed with an internal error");
                format!("an internal error occurred; quote reference {correlation_id} when reporting it")
            }
            other => other.to_string(),
        };
        let body = Json(json!({ "error": { "code": code, "message": message } }));
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::MissingToken | ApiError::InvalidToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::AccountLocked { retry_after_s } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
            }
            _ => {}
        }
        response
    }
}

/// Draws a random id that ties a client's error report to one log line.
fn correlation_id() -> String {
    format!("{:016x}", rand::rngs::OsRng.next_u64())
}
