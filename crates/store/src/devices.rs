//! Device registry and cloud keys.
//!
//! NOTE: the pre-shared keys are stored unencrypted in the SQLite file, so anyone who can
//! read the file can impersonate the cloud to every device that also leaked its static
//! key. Key storage behind an HSM interface (PKCS#11) is to replace the `psk` column.

use medtunnel_proto::crypto::{PublicKey, SymmetricKey, DH_LEN, KEY_LEN};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use zeroize::Zeroizing;

use crate::{now_ms, Store, StoreError};

/// Maximum length of a device id, in bytes. The id is also a file name.
const MAX_DEVICE_ID_LEN: usize = 64;

/// Kind of medical device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceModel {
    /// Continuous glucose monitor.
    Cgm,
    /// Insulin pump.
    InsulinPump,
    /// Remote-monitoring unit of a cardiac implant.
    Pacemaker,
}

impl DeviceModel {
    /// Returns the name stored in the database and in identity files.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceModel::Cgm => "cgm",
            DeviceModel::InsulinPump => "insulin_pump",
            DeviceModel::Pacemaker => "pacemaker",
        }
    }

    /// Parses a stored name: `cgm`, `insulin_pump` or `pacemaker`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cgm" => Some(DeviceModel::Cgm),
            "insulin_pump" => Some(DeviceModel::InsulinPump),
            "pacemaker" => Some(DeviceModel::Pacemaker),
            _ => None,
        }
    }
}

/// Whether a device may open channels and store data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// The device may connect.
    Active,
    /// The device was revoked; the gateway must reject its handshakes.
    Revoked,
}

impl DeviceStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "active" => Some(DeviceStatus::Active),
            "revoked" => Some(DeviceStatus::Revoked),
            _ => None,
        }
    }
}

/// A device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Unique id: 1 to 64 characters from A-Z, a-z, 0-9, `.`, `_`, `-`, not starting
    /// with `.`.
    pub device_id: String,
    /// Kind of device.
    pub model: DeviceModel,
    /// Tunnel key id that the device sends in its handshake header; unique.
    pub key_id: u32,
    /// The device's static X25519 public key.
    pub static_public: PublicKey,
    /// The device's pre-shared key.
    pub psk: SymmetricKey,
    /// Id of the cloud key the device was provisioned with; must be registered.
    pub cloud_key_id: u32,
}

/// A registered device. `Debug` shows no secret: the PSK prints as redacted.
///
/// Holding a record does not mean the device may connect: check `status`.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// Unique id.
    pub device_id: String,
    /// Kind of device.
    pub model: DeviceModel,
    /// Tunnel key id of the handshake header.
    pub key_id: u32,
    /// The device's static X25519 public key.
    pub static_public: PublicKey,
    /// The device's pre-shared key.
    pub psk: SymmetricKey,
    /// Id of the cloud key the device was provisioned with.
    pub cloud_key_id: u32,
    /// Whether the device may connect.
    pub status: DeviceStatus,
    /// Registration time in Unix milliseconds.
    pub created_at_ms: i64,
}

impl DeviceRecord {
    /// Returns true if the device may open channels and store data.
    pub fn is_active(&self) -> bool {
        self.status == DeviceStatus::Active
    }
}

const DEVICE_COLUMNS: &str =
    "device_id, model, key_id, static_public, psk, cloud_key_id, status, created_at_ms";

impl Store {
    /// Registers a cloud static public key under `cloud_key_id`. Registering the same key
    /// again is accepted; a different key under a used id is rejected.
    pub fn register_cloud_key(
        &mut self,
        cloud_key_id: u32,
        public: &PublicKey,
    ) -> Result<(), StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<Vec<u8>> = transaction
            .query_row(
                "SELECT public_key FROM cloud_keys WHERE cloud_key_id = ?1",
                [cloud_key_id],
                |row| row.get(0),
            )
            .optional()?;
        match existing {
            Some(stored) if stored == public.as_bytes() => return Ok(()),
            Some(_) => return Err(StoreError::CloudKeyConflict(cloud_key_id)),
            None => {}
        }
        transaction.execute(
            "INSERT INTO cloud_keys (cloud_key_id, public_key, created_at_ms) VALUES (?1, ?2, ?3)",
            params![cloud_key_id, public.as_bytes().as_slice(), now_ms()],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Returns the cloud public key registered under `cloud_key_id`.
    pub fn cloud_key(&self, cloud_key_id: u32) -> Result<Option<PublicKey>, StoreError> {
        let bytes: Option<Vec<u8>> = self
            .connection
            .query_row(
                "SELECT public_key FROM cloud_keys WHERE cloud_key_id = ?1",
                [cloud_key_id],
                |row| row.get(0),
            )
            .optional()?;
        bytes
            .map(|bytes| public_key_from(&bytes, "cloud_keys.public_key"))
            .transpose()
    }

    /// Returns the cloud key with the highest id, the one new devices are provisioned with.
    pub fn latest_cloud_key(&self) -> Result<Option<(u32, PublicKey)>, StoreError> {
        let row: Option<(u32, Vec<u8>)> = self
            .connection
            .query_row(
                "SELECT cloud_key_id, public_key FROM cloud_keys
                 ORDER BY cloud_key_id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(id, bytes)| Ok((id, public_key_from(&bytes, "cloud_keys.public_key")?)))
            .transpose()
    }

    /// Registers a device as active, with empty channel state.
    pub fn register_device(&mut self, device: &NewDevice) -> Result<(), StoreError> {
        check_device_id(&device.device_id)?;
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;

        let id_taken: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = ?1)",
            [&device.device_id],
            |row| row.get(0),
        )?;
        if id_taken {
            return Err(StoreError::DeviceExists(device.device_id.clone()));
        }
        let key_owner: Option<String> = transaction
            .query_row(
                "SELECT device_id FROM devices WHERE key_id = ?1",
                [device.key_id],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(owner) = key_owner {
            return Err(StoreError::KeyIdInUse {
                key_id: device.key_id,
                device_id: owner,
            });
        }
        let cloud_key_known: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM cloud_keys WHERE cloud_key_id = ?1)",
            [device.cloud_key_id],
            |row| row.get(0),
        )?;
        if !cloud_key_known {
            return Err(StoreError::CloudKeyNotFound(device.cloud_key_id));
        }

        transaction.execute(
            &format!(
                "INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                device.device_id,
                device.model.as_str(),
                device.key_id,
                device.static_public.as_bytes().as_slice(),
                device.psk.expose_secret().as_slice(),
                device.cloud_key_id,
                DeviceStatus::Active.as_str(),
                now_ms(),
            ],
        )?;
        transaction.execute(
            "INSERT INTO channel_state (device_id) VALUES (?1)",
            [&device.device_id],
        )?;
        transaction.commit()?;
        tracing::info!(device_id = %device.device_id, key_id = device.key_id, "registered device");
        Ok(())
    }

    /// Looks a device up by the key id of its handshake header. Returns revoked devices
    /// too, so the caller must check [`DeviceRecord::is_active`].
    pub fn device_by_key_id(&self, key_id: u32) -> Result<Option<DeviceRecord>, StoreError> {
        self.query_devices(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE key_id = ?1"),
            [key_id],
        )
        .map(|mut devices| devices.pop())
    }

    /// Looks a device up by id. Returns revoked devices too.
    pub fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.query_devices(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = ?1"),
            [device_id],
        )
        .map(|mut devices| devices.pop())
    }

    /// Lists all devices, revoked ones included, ordered by id.
    pub fn list_devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.query_devices(
            &format!("SELECT {DEVICE_COLUMNS} FROM devices ORDER BY device_id"),
            [],
        )
    }

    /// Marks a device as revoked. Revoking a revoked device again changes nothing.
    /// Its readings and channel state are kept.
    pub fn revoke_device(&mut self, device_id: &str) -> Result<(), StoreError> {
        let changed = self.connection.execute(
            "UPDATE devices SET status = 'revoked', revoked_at_ms = ?2
             WHERE device_id = ?1 AND status = 'active'",
            params![device_id, now_ms()],
        )?;
        if changed == 0 && self.device(device_id)?.is_none() {
            return Err(StoreError::DeviceNotFound(device_id.to_owned()));
        }
        if changed > 0 {
            tracing::info!(device_id, "revoked device");
        }
        Ok(())
    }

    fn query_devices(
        &self,
        sql: &str,
        parameters: impl rusqlite::Params,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut statement = self.connection.prepare(sql)?;
        let mut rows = statement.query(parameters)?;
        let mut devices = Vec::new();
        while let Some(row) = rows.next()? {
            devices.push(device_from_row(row)?);
        }
        Ok(devices)
    }
}

fn device_from_row(row: &Row<'_>) -> Result<DeviceRecord, StoreError> {
    let model: String = row.get(1)?;
    let static_public: Vec<u8> = row.get(3)?;
    let psk: Zeroizing<Vec<u8>> = Zeroizing::new(row.get(4)?);
    let status: String = row.get(6)?;

    let psk_bytes: Zeroizing<[u8; KEY_LEN]> = Zeroizing::new(psk.as_slice().try_into().map_err(
        |_| StoreError::CorruptValue {
            column: "devices.psk",
            value: format!("of {} bytes", psk.len()),
        },
    )?);
    Ok(DeviceRecord {
        device_id: row.get(0)?,
        model: DeviceModel::from_name(&model).ok_or_else(|| StoreError::CorruptValue {
            column: "devices.model",
            value: format!("{model:?}"),
        })?,
        key_id: row.get(2)?,
        static_public: public_key_from(&static_public, "devices.static_public")?,
        psk: SymmetricKey::from_bytes(*psk_bytes),
        cloud_key_id: row.get(5)?,
        status: DeviceStatus::from_name(&status).ok_or_else(|| StoreError::CorruptValue {
            column: "devices.status",
            value: format!("{status:?}"),
        })?,
        created_at_ms: row.get(7)?,
    })
}

fn public_key_from(bytes: &[u8], column: &'static str) -> Result<PublicKey, StoreError> {
    let array: [u8; DH_LEN] = bytes.try_into().map_err(|_| StoreError::CorruptValue {
        column,
        value: format!("of {} bytes", bytes.len()),
    })?;
    Ok(PublicKey::from_bytes(array))
}

/// Checks that a device id is safe as a file name and in logs.
pub(crate) fn check_device_id(device_id: &str) -> Result<(), StoreError> {
    let valid = !device_id.is_empty()
        && device_id.len() <= MAX_DEVICE_ID_LEN
        && !device_id.starts_with('.')
        && device_id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidDeviceId(device_id.to_owned()))
    }
}
