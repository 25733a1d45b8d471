//! Read access to the telemetry store: the device registry and the glucose readings that
//! the gateway stored, behind the [`HealthData`] trait.

use std::sync::{Mutex, MutexGuard, PoisonError};

use medtunnel_store::{DeviceModel, DeviceStatus, Store, StoreError};
use serde::Serialize;

/// A device as the API shows it: no key, no PSK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    /// Device id.
    pub device_id: String,
    /// `cgm`, `insulin_pump` or `pacemaker`.
    pub model: &'static str,
    /// `active` or `revoked`.
    pub status: &'static str,
}

/// One glucose reading, located by its device and sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlucoseReading {
    /// Device that measured it.
    pub device_id: String,
    /// The device's application sequence number.
    pub seq: u64,
    /// Device time in Unix seconds.
    pub device_time_s: i64,
    /// Glucose in mg/dL.
    pub glucose_mg_dl: u16,
}

/// Position in the reading order (device time, device id, sequence number); a page
/// starts after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadingPosition {
    /// Device time in Unix seconds.
    pub device_time_s: i64,
    /// Device id.
    pub device_id: String,
    /// Sequence number.
    pub seq: u64,
}

impl GlucoseReading {
    /// Returns the position of this reading in the reading order.
    pub fn position(&self) -> ReadingPosition {
        ReadingPosition {
            device_time_s: self.device_time_s,
            device_id: self.device_id.clone(),
            seq: self.seq,
        }
    }
}

/// Failure of a [`HealthData`] call.
pub type HealthDataError = Box<dyn std::error::Error + Send + Sync>;

/// The telemetry data that the API serves. Blocking, like [`crate::AccessStore`].
pub trait HealthData: Send + Sync {
    /// Lists all registered devices by id.
    fn all_devices(&self) -> Result<Vec<DeviceSummary>, HealthDataError>;
    /// Returns the devices among `device_ids` that are registered, in the given order.
    fn devices(&self, device_ids: &[String]) -> Result<Vec<DeviceSummary>, HealthDataError>;
    /// Returns up to `limit` glucose readings of the CGMs among `device_ids` with device
    /// time in `from_s..to_s` (`None` for no bound), after `after`, in reading order.
    fn glucose_readings(
        &self,
        device_ids: &[String],
        from_s: Option<i64>,
        to_s: Option<i64>,
        after: Option<&ReadingPosition>,
        limit: usize,
    ) -> Result<Vec<GlucoseReading>, HealthDataError>;
}

/// [`HealthData`] on the telemetry [`Store`].
pub struct StoreHealthData {
    store: Mutex<Store>,
}

impl StoreHealthData {
    /// Wraps an open store.
    pub fn new(store: Store) -> Self {
        StoreHealthData {
            store: Mutex::new(store),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock was held leaves at most an open transaction, which
        // rusqlite rolls back when it is dropped, so the store is still usable.
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl HealthData for StoreHealthData {
    fn all_devices(&self) -> Result<Vec<DeviceSummary>, HealthDataError> {
        let devices = self.lock().list_devices()?;
        Ok(devices
            .iter()
            .map(|device| summary(&device.device_id, device.model, device.status))
            .collect())
    }

    fn devices(&self, device_ids: &[String]) -> Result<Vec<DeviceSummary>, HealthDataError> {
        let store = self.lock();
        let mut devices = Vec::with_capacity(device_ids.len());
        for device_id in device_ids {
            if let Some(device) = store.device(device_id)? {
                devices.push(summary(&device.device_id, device.model, device.status));
            }
        }
        Ok(devices)
    }

    fn glucose_readings(
        &self,
        device_ids: &[String],
        from_s: Option<i64>,
        to_s: Option<i64>,
        after: Option<&ReadingPosition>,
        limit: usize,
    ) -> Result<Vec<GlucoseReading>, HealthDataError> {
        let store = self.lock();
        // Readings at the cursor's time may still follow it, so the range starts there.
        let start = match (from_s, after) {
            (Some(from), Some(after)) => Some(from.max(after.device_time_s)),
            (from, after) => from.or(after.map(|position| position.device_time_s)),
        };
        let mut readings = Vec::new();
        for device_id in device_ids {
            if !is_cgm(&store, device_id)? {
                continue;
            }
            // NOTE: this loads every reading of the range and pages in memory, so a
            // wide range costs time and memory in proportion to its size. A query with
            // the cursor and limit in SQL is to replace it.
            for stored in store.readings(device_id, start, to_s)? {
                readings.push(GlucoseReading {
                    device_id: stored.device_id,
                    seq: stored.seq,
                    device_time_s: stored.device_time_s,
                    glucose_mg_dl: stored.measurement.glucose_mg_dl,
                });
            }
        }
        readings.sort_by_key(GlucoseReading::position);
        if let Some(after) = after {
            readings.retain(|reading| reading.position() > *after);
        }
        readings.truncate(limit);
        Ok(readings)
    }
}

fn is_cgm(store: &Store, device_id: &str) -> Result<bool, StoreError> {
    Ok(store
        .device(device_id)?
        .is_some_and(|device| device.model == DeviceModel::Cgm))
}

fn summary(device_id: &str, model: DeviceModel, status: DeviceStatus) -> DeviceSummary {
    DeviceSummary {
        device_id: device_id.to_owned(),
        model: model.as_str(),
        status: match status {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        },
    }
}
