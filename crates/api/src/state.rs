//! Shared state of the API: the two stores, the clock and the configuration.

use std::path::Path;
use std::sync::Arc;

use medtunnel_store::{Store, StoreError};
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
}

impl ApiState {
    /// Opens the cloud database at `db_path` (created if missing) with the system clock
    /// and the default configuration. The telemetry tables and the access tables live in
    /// the same file, each with its own migrations.
    pub fn open(db_path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = db_path.as_ref();
        let store = Store::open(path)?;
        let access = SqliteAccessStore::open(path, SystemClock.now_s())?;
        Ok(ApiState::new(
            Arc::new(access),
            Arc::new(StoreHealthData::new(store)),
            Arc::new(SystemClock),
            ApiConfig::default(),
        ))
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
            clock,
            config: Arc::new(config),
        }
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
