//! Cloud HTTP API of medtunnel: the people-and-access layer.
//!
//! People sign in with their own accounts (argon2id passwords, and TOTP as second factor
//! for clinicians and operators) and get short-lived bearer tokens. Access is denied by
//! default. A patient owns their data and grants caregivers and clinicians scoped,
//! revocable access. A clinician may open time-limited break-glass access, and the
//! patient is notified of it. The patient, and grantees allowed to request changes, ask
//! for therapy settings changes, which the patient's policy decides and clinicians
//! review and co-sign (`medtunnel-therapy`). Every read of a patient's data by someone else is recorded
//! as a disclosure that the patient and auditors can list. Researchers and operators
//! never see an individual's health data.
//!
//! # Mounting
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let state = medtunnel_api::ApiState::open("cloud.db")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! medtunnel_api::serve(listener, state, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! [`router`] returns the plain `axum::Router` for callers that serve it themselves.
//! [`routes`] lists every route; the router and `GET /openapi.json` are built from it.
//!
//! Never logged or returned, by any code in this crate: passwords, password hashes,
//! bearer tokens, TOTP secrets and codes, and health values. The errors and their HTTP
//! mapping live in [`error`]; security events are logged under the tracing target
//! `medtunnel_api::audit`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
pub mod admin;
mod audit;
mod auth;
mod clock;
mod config;
pub mod error;
mod extract;
mod health_data;
mod model;
pub mod password;
mod policy;
mod routes;
mod signing;
mod state;
pub mod token;
pub mod totp;

use std::future::Future;

pub use access::{
    AccessResult, AccessStore, AccessStoreError, Credentials, NewAccount, NewBreakGlass,
    NewDisclosure, NewGrant, SqliteAccessStore,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ApiConfig, PasswordCost};
pub use error::ApiError;
pub use health_data::{
    DeviceSummary, GlucoseReading, HealthData, HealthDataError, ReadingPosition, StoreHealthData,
};
pub use model::{
    Account, AccountId, Action, Basis, BreakGlass, DataType, Disclosure, Grant, Notification, Role,
};
pub use routes::openapi::document as openapi_document;
pub use routes::{router, routes, Authentication, Field, Route, RouteMethod};
pub use state::{ApiState, OpenError};

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests
/// in flight and returns. With a therapy service, it also runs the service's signing
/// step every 500 ms, which signs approved change requests once their device is ready.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    let signing = state
        .has_therapy()
        .then(|| tokio::spawn(signing::run(state.clone())));
    tracing::info!(%address, "API listening");
    let service = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(task) = signing {
        task.abort();
    }
    served?;
    tracing::info!(%address, "API stopped");
    Ok(())
}
