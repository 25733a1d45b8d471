//! Extractors whose rejections are [`ApiError`]s, so that a malformed request gets the
//! same JSON error body as every other failure.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// A JSON request body. Requires `Content-Type: application/json`.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::InvalidRequest(
                "the request body must be JSON, sent with \"Content-Type: application/json\""
                    .to_owned(),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::InvalidRequest(format!(
                    "reading the request body failed: {}",
                    rejection.body_text()
                ))
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::InvalidRequest(describe_json_error(&error)))
    }
}

/// Describes a body that did not parse. serde quotes a value of the wrong type in its
/// message, and that value may be a password, so such messages give only the position.
fn describe_json_error(error: &serde_json::Error) -> String {
    let position = format!("line {}, column {}", error.line(), error.column());
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            format!("the request body is not valid JSON (at {position}); send one JSON object")
        }
        Category::Data => {
            let text = error.to_string();
            let names_only = ["missing field", "unknown field", "unknown variant"]
                .iter()
                .any(|prefix| text.starts_with(prefix));
            if names_only {
                format!("the request body is invalid: {text}")
            } else {
                format!(
                    "the request body has a value of the wrong type or out of range at \
                     {position}; GET /openapi.json lists the expected fields"
                )
            }
        }
    }
}

/// A query string.
pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| {
                ApiError::InvalidRequest(format!("invalid query string: {}", rejection.body_text()))
            })
    }
}

/// Path parameters.
pub(crate) struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|rejection| {
                ApiError::InvalidRequest(format!("invalid path: {}", rejection.body_text()))
            })
    }
}

/// IP address of the client's TCP connection, for audit records. It is `None` when the
/// router runs without [`crate::serve`], which records connections, as in tests.
///
/// NOTE: behind a reverse proxy this is the proxy's address, because forwarding headers
/// are not read.
pub(crate) struct ClientAddress(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip().to_string());
        Ok(ClientAddress(address))
    }
}
