//! State shared by every connection: the database, the cloud key, a cache of per-device
//! handshake keys, the counters and the monotonic clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use medtunnel_proto::crypto::{PublicKey, SymmetricKey};
use medtunnel_proto::error::Error as ChannelError;
use medtunnel_proto::handshake::{CloudKeys, PeerKeys};
use medtunnel_proto::transport::Limits;
use medtunnel_store::{DeviceRecord, Store, StoreError};
use medtunnel_therapy::{CommandDelivery, TherapyError};

use crate::{GatewayError, GatewayStats, Provider};

/// Everything a connection task needs from the gateway.
pub(crate) struct Shared {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) cloud: CloudKeys,
    pub(crate) peers: PeerCache,
    pub(crate) stats: Arc<GatewayStats>,
    pub(crate) limits: Limits,
    pub(crate) commit_batch: usize,
    pub(crate) delivery: Arc<Mutex<CommandDelivery>>,
    pub(crate) command_poll_interval: std::time::Duration,
    started: Instant,
}

impl Shared {
    pub(crate) fn new(
        store: Store,
        cloud: CloudKeys,
        stats: Arc<GatewayStats>,
        limits: Limits,
        commit_batch: usize,
        delivery: CommandDelivery,
        command_poll_interval: std::time::Duration,
    ) -> Self {
        Shared {
            store: Arc::new(Mutex::new(store)),
            cloud,
            peers: PeerCache::default(),
            stats,
            limits,
            commit_batch,
            delivery: Arc::new(Mutex::new(delivery)),
            command_poll_interval,
            started: Instant::now(),
        }
    }

    /// Runs `work` on the therapy tables in a blocking thread, like
    /// [`Shared::with_store`].
    pub(crate) async fn with_delivery<T, F>(&self, work: F) -> Result<T, TherapyError>
    where
        T: Send + 'static,
        F: FnOnce(&mut CommandDelivery) -> Result<T, TherapyError> + Send + 'static,
    {
        let delivery = Arc::clone(&self.delivery);
        let task = tokio::task::spawn_blocking(move || {
            // A panic in another call leaves no half-written state in memory: every call
            // commits to the database before it returns.
            let mut delivery = delivery
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            work(&mut delivery)
        });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(TherapyError::NotPermitted(format!(
                "therapy task failed: {error}"
            ))),
        }
    }

    /// Milliseconds since the gateway started, the clock of every channel's key limits.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `work` on the database in a blocking thread. SQLite has one writer, so the
    /// calls of all connections take turns on one lock.
    pub(crate) async fn with_store<T, F>(&self, work: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        let task = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .map_err(|_| GatewayError::StoreTask("database lock poisoned".to_owned()))?;
            work(&mut store).map_err(GatewayError::from)
        });
        match task.await {
            Ok(result) => result,
            Err(error) => Err(GatewayError::StoreTask(error.to_string())),
        }
    }
}

/// Returns the wall-clock time in Unix milliseconds, or 0 if the clock is before 1970.
pub(crate) fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Per-device [`PeerKeys`] by key id, so the static-static Diffie-Hellman runs once per
/// device and not on every handshake.
///
/// An entry is used only while the registry still has the same device id, public key,
/// PSK and cloud key id for its key id. Otherwise the keys are computed again. Entries
/// are created only for key ids found in the registry, so there is at most one per
/// registered device.
#[derive(Default)]
pub(crate) struct PeerCache {
    entries: Mutex<HashMap<u32, Arc<CachedPeer>>>,
}

struct CachedPeer {
    device_id: String,
    static_public: PublicKey,
    psk: SymmetricKey,
    cloud_key_id: u32,
    keys: Arc<PeerKeys>,
}

impl CachedPeer {
    fn matches(&self, device: &DeviceRecord) -> bool {
        // Both values come from our own database, so the comparison needs no constant
        // time.
        self.device_id == device.device_id
            && self.static_public == device.static_public
            && self.cloud_key_id == device.cloud_key_id
            && self.psk.expose_secret() == device.psk.expose_secret()
    }
}

impl PeerCache {
    /// Returns the cached keys of `device`, computing them if needed.
    pub(crate) fn get(
        &self,
        cloud: &CloudKeys,
        device: &DeviceRecord,
    ) -> Result<Arc<PeerKeys>, ChannelError> {
        if let Some(entry) = self.lock().get(&device.key_id) {
            if entry.matches(device) {
                return Ok(Arc::clone(&entry.keys));
            }
        }
        let keys = Arc::new(PeerKeys::new(
            &Provider::default(),
            &cloud.static_secret,
            device.key_id,
            device.cloud_key_id,
            device.static_public,
            device.psk.clone(),
        )?);
        let entry = CachedPeer {
            device_id: device.device_id.clone(),
            static_public: device.static_public,
            psk: device.psk.clone(),
            cloud_key_id: device.cloud_key_id,
            keys: Arc::clone(&keys),
        };
        self.lock().insert(device.key_id, Arc::new(entry));
        Ok(keys)
    }

    /// Drops the entry of a key id, for a device found revoked.
    pub(crate) fn remove(&self, key_id: u32) {
        self.lock().remove(&key_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<CachedPeer>>> {
        // The map is valid after a panic in another thread, because every operation on
        // it is a single insert, remove or lookup.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
