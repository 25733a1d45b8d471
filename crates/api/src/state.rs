//! Shared state of the API: the two stores, the therapy service, the clock and the
//! configuration.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use medtunnel_store::{Store, StoreError};
use medtunnel_therapy::{TherapyConfig, TherapyError, TherapyService};
use tracing::Span;

use crate::access::{AccessStore, AccessStoreError, SqliteAccessStore};
use crate::clock::{Clock, SystemClock};
use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::health_data::{HealthData, StoreHealthData};

/// Everything a request handler needs. Cloning is cheap: clones share the stores.
#[derive(Clone)]
pub struct ApiState {
    access: Arc<dyn AccessStore>,
    health: Arc<dyn HealthData>,
    therapy: Option<Arc<Mutex<TherapyService>>>,
    clock: Arc<dyn Clock>,
    config: Arc<ApiConfig>,
}

/// Failure of [`ApiState::open`].
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The telemetry store could not be opened.
    #[error("opening the telemetry store failed: {0}")]
    Store(#[from] StoreError),
    /// The access tables could not be opened or migrated.
    #[error("opening the access tables failed: {0}")]
    Access(#[from] AccessStoreError),
    /// The therapy service (its tables, audit log and keys) could not be opened.
    #[error("opening the therapy service failed: {0}")]
    Therapy(#[from] TherapyError),
}

impl ApiState {
    /// Opens the cloud database at `db_path` (created if missing) with the system clock
    /// and the default configuration. The telemetry tables and the access tables live in
    /// the same file, each with its own migrations. The therapy service opens the
    /// directory that contains `db_path`, so the file must be named `cloud.db`, and it
    /// creates the command-signing and audit checkpoint keys there on first use.
    pub fn open(db_path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = db_path.as_ref();
        let store = Store::open(path)?;
        let now_s = SystemClock.now_s();
        let access = SqliteAccessStore::open(path, now_s)?;
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let therapy = TherapyService::open(dir, TherapyConfig::default(), now_s * 1000)?;
        let state = ApiState::new(
            Arc::new(access),
            Arc::new(StoreHealthData::new(store)),
            Arc::new(SystemClock),
            ApiConfig::default(),
        );
        Ok(state.with_therapy(therapy))
    }

    /// Builds a state from its parts, for example a [`crate::ManualClock`] in tests.
    pub fn new(
        access: Arc<dyn AccessStore>,
        health: Arc<dyn HealthData>,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
    ) -> Self {
        ApiState {
            access,
            health,
            therapy: None,
            clock,
            config: Arc::new(config),
        }
    }

    /// Adds the therapy service, which the change-request routes need. Without it they
    /// respond 503.
    pub fn with_therapy(mut self, therapy: TherapyService) -> Self {
        self.therapy = Some(Arc::new(Mutex::new(therapy)));
        self
    }

    /// Returns true if a therapy service was added with [`ApiState::with_therapy`].
    pub fn has_therapy(&self) -> bool {
        self.therapy.is_some()
    }

    /// Locks the therapy service. Blocking: call it inside [`ApiState::blocking`].
    pub(crate) fn therapy(&self) -> Result<MutexGuard<'_, TherapyService>, ApiError> {
        let therapy = self.therapy.as_ref().ok_or_else(|| {
            ApiError::ServiceUnavailable(
                "therapy change requests are not enabled on this server".to_owned(),
            )
        })?;
        // NOTE: the service's calls are not single transactions, so a panic while the lock
        // was held can leave a request without its audit entry. The lock is taken over
        // anyway, so that one panic does not stop every later change request.
        Ok(therapy.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Returns the current time in Unix milliseconds, the unit of the therapy service.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_s().saturating_mul(1000)
    }

    /// Returns the access store.
    pub fn access(&self) -> &dyn AccessStore {
        self.access.as_ref()
    }

    /// Returns the telemetry data.
    pub fn health(&self) -> &dyn HealthData {
        self.health.as_ref()
    }

    /// Returns the current time in Unix seconds.
    pub fn now_s(&self) -> i64 {
        self.clock.now_s()
    }

    /// Returns the configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Runs blocking work (storage, password hashing) on tokio's blocking thread pool,
    /// inside the request's tracing span.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&ApiState) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = self.clone();
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| work(&state)))
            .await
            .map_err(|error| ApiError::internal("running blocking request work", error))?
    }
}
