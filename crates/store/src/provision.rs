//! Factory provisioning: the cloud's static key and per-device identities, written as JSON
//! key files and registered in the store.
//!
//! A directory contains `cloud-key.json` (the cloud's static X25519 key) and
//! `devices/<device_id>.json` (one identity per device). Every key file is created with
//! mode 0600 before any byte is written, then linked into place, so it is never readable
//! by others and never seen half-written. Loading a file that others can read logs a
//! warning and proceeds.
//!
//! NOTE: the key files hold secrets in plain hex. Key storage behind a secure-element or
//! HSM interface is to replace them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use medtunnel_proto::crypto::{
    CryptoProvider, PublicKey, RustCrypto, SecretKey, SymmetricKey, DH_LEN, KEY_LEN,
};
use rand_core::{CryptoRngCore, OsRng};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::devices::check_device_id;
use crate::{DeviceModel, NewDevice, Store, StoreError};

/// File name of the cloud key inside the provisioning directory.
pub const CLOUD_KEY_FILE: &str = "cloud-key.json";
/// Directory of device identity files inside the provisioning directory.
pub const DEVICES_DIR: &str = "devices";

/// The cloud's static key pair. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct CloudIdentity {
    /// Id that devices use to name this key.
    pub cloud_key_id: u32,
    /// The cloud's static X25519 secret key.
    pub secret: SecretKey,
    /// The matching public key.
    pub public: PublicKey,
}

/// Everything a device needs to open its channel. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct DeviceIdentityFile {
    /// Unique device id.
    pub device_id: String,
    /// Kind of device.
    pub model: DeviceModel,
    /// Tunnel key id for the handshake header.
    pub key_id: u32,
    /// The device's static X25519 secret key.
    pub device_secret: SecretKey,
    /// The matching public key.
    pub device_public: PublicKey,
    /// The device's pre-shared key.
    pub psk: SymmetricKey,
    /// The cloud's static public key.
    pub cloud_public: PublicKey,
    /// Id of the cloud key.
    pub cloud_key_id: u32,
}

/// Failure of provisioning or of loading a key file. Messages name the file and field
/// but never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// A file operation failed.
    #[error("{action} {} failed: {source}", path.display())]
    Io {
        /// Operation attempted, for example "writing".
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The key file does not exist.
    #[error("key file {} not found; provision it first", path.display())]
    Missing {
        /// The expected path.
        path: PathBuf,
    },
    /// The key file exists already, so a new one is not written over it.
    #[error("key file {} exists already; remove it or choose another device id", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The key file is not JSON of the expected shape.
    #[error("key file {} is not valid: {problem}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The JSON parser's message.
        problem: String,
    },
    /// A field of the key file has an invalid value.
    #[error("key file {}: field \"{field}\" {problem}", path.display())]
    InvalidField {
        /// The file.
        path: PathBuf,
        /// The field name.
        field: &'static str,
        /// Problem with the value, and the expected form.
        problem: String,
    },
    /// The store has no cloud key to provision devices for.
    #[error("the store has no cloud key; provision the cloud before the devices")]
    NoCloudKey,
    /// The cloud key ids are used up.
    #[error("no cloud key id is left above {0}")]
    CloudKeyIdsExhausted(u32),
    /// The store rejected the operation.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Loads the cloud key from `dir`, or creates one there if none exists, and makes sure
/// the store has its public key.
pub fn provision_cloud(dir: &Path, store: &mut Store) -> Result<CloudIdentity, ProvisionError> {
    provision_cloud_with_rng(dir, store, &mut OsRng)
}

/// [`provision_cloud`] with a caller-chosen random number generator.
pub fn provision_cloud_with_rng(
    dir: &Path,
    store: &mut Store,
    rng: &mut impl CryptoRngCore,
) -> Result<CloudIdentity, ProvisionError> {
    let path = dir.join(CLOUD_KEY_FILE);
    if !path.exists() {
        let cloud_key_id = match store.latest_cloud_key()? {
            None => 1,
            Some((id, _)) => id
                .checked_add(1)
                .ok_or(ProvisionError::CloudKeyIdsExhausted(id))?,
        };
        let secret = random_secret(rng);
        let identity = CloudIdentity {
            cloud_key_id,
            public: RustCrypto.x25519_public(&secret),
            secret,
        };
        create_dir(dir)?;
        let staged = stage_secret_file(&path, &cloud_json(&identity)?)?;
        match staged.publish() {
            Ok(()) => tracing::info!(cloud_key_id, path = %path.display(), "created cloud key"),
            // Another process created the key first; use that one.
            Err(ProvisionError::Exists { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    let identity = load_cloud_identity(&path)?;
    store.register_cloud_key(identity.cloud_key_id, &identity.public)?;
    Ok(identity)
}

/// Creates `count` devices named `<name_prefix>0001`, `<name_prefix>0002`, ... (skipping
/// ids in use), each with a fresh X25519 key pair, a fresh PSK and an unused random key
/// id, registers them with the store's latest cloud key, and writes their identity files.
pub fn provision_devices(
    dir: &Path,
    store: &mut Store,
    model: DeviceModel,
    count: usize,
    name_prefix: &str,
) -> Result<Vec<DeviceIdentityFile>, ProvisionError> {
    provision_devices_with_rng(dir, store, model, count, name_prefix, &mut OsRng)
}

/// [`provision_devices`] with a caller-chosen random number generator.
pub fn provision_devices_with_rng(
    dir: &Path,
    store: &mut Store,
    model: DeviceModel,
    count: usize,
    name_prefix: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<DeviceIdentityFile>, ProvisionError> {
    let (cloud_key_id, cloud_public) = store
        .latest_cloud_key()?
        .ok_or(ProvisionError::NoCloudKey)?;
    let devices_dir = dir.join(DEVICES_DIR);
    create_dir(&devices_dir)?;

    let mut identities = Vec::with_capacity(count);
    let mut number = 0u64;
    for _ in 0..count {
        let device_id = loop {
            number += 1;
            let candidate = format!("{name_prefix}{number:04}");
            check_device_id(&candidate)?;
            if store.device(&candidate)?.is_none()
                && !device_identity_path(dir, &candidate).exists()
            {
                break candidate;
            }
        };
        let key_id = loop {
            let candidate = rng.next_u32();
            if store.device_by_key_id(candidate)?.is_none() {
                break candidate;
            }
        };
        let device_secret = random_secret(rng);
        let mut psk = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(psk.as_mut());
        let identity = DeviceIdentityFile {
            device_public: RustCrypto.x25519_public(&device_secret),
            device_id,
            model,
            key_id,
            device_secret,
            psk: SymmetricKey::from_bytes(*psk),
            cloud_public,
            cloud_key_id,
        };

        // Stage the file first, so that a failed write registers nothing, and link it
        // into place after the registration has committed.
        let path = device_identity_path(dir, &identity.device_id);
        let staged = stage_secret_file(&path, &device_json(&identity)?)?;
        store.register_device(&NewDevice {
            device_id: identity.device_id.clone(),
            model,
            key_id,
            static_public: identity.device_public,
            psk: identity.psk.clone(),
            cloud_key_id,
        })?;
        staged.publish()?;
        identities.push(identity);
    }
    Ok(identities)
}

/// Returns the path of a device's identity file.
pub fn device_identity_path(dir: &Path, device_id: &str) -> PathBuf {
    dir.join(DEVICES_DIR).join(format!("{device_id}.json"))
}

/// Loads and checks `cloud-key.json`: hex fields of 32 bytes, and a public key that
/// matches the secret key.
pub fn load_cloud_identity(path: &Path) -> Result<CloudIdentity, ProvisionError> {
    let text = read_key_file(path)?;
    let json: CloudKeyJson = parse_json(path, &text)?;
    let field = FieldParser { path };
    let secret = SecretKey::from_bytes(*field.secret_bytes("secret", &json.secret)?);
    let public = PublicKey::from_bytes(field.public_bytes("public", &json.public)?);
    field.check_pair("public", &secret, &public)?;
    Ok(CloudIdentity {
        cloud_key_id: json.cloud_key_id,
        secret,
        public,
    })
}

/// Loads and checks a device identity file.
pub fn load_device_identity(path: &Path) -> Result<DeviceIdentityFile, ProvisionError> {
    let text = read_key_file(path)?;
    let json: DeviceJson = parse_json(path, &text)?;
    let field = FieldParser { path };
    let model =
        DeviceModel::from_name(&json.model).ok_or_else(|| ProvisionError::InvalidField {
            path: path.to_owned(),
            field: "model",
            problem: format!("{:?} is not cgm, insulin_pump or pacemaker", json.model),
        })?;
    let device_secret =
        SecretKey::from_bytes(*field.secret_bytes("device_secret", &json.device_secret)?);
    let device_public =
        PublicKey::from_bytes(field.public_bytes("device_public", &json.device_public)?);
    field.check_pair("device_public", &device_secret, &device_public)?;
    Ok(DeviceIdentityFile {
        device_id: json.device_id,
        model,
        key_id: json.key_id,
        device_secret,
        device_public,
        psk: SymmetricKey::from_bytes(*field.secret_bytes("psk", &json.psk)?),
        cloud_public: PublicKey::from_bytes(
            field.public_bytes("cloud_public", &json.cloud_public)?,
        ),
        cloud_key_id: json.cloud_key_id,
    })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudKeyJson {
    cloud_key_id: u32,
    secret: Zeroizing<String>,
    public: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceJson {
    device_id: String,
    model: String,
    key_id: u32,
    device_secret: Zeroizing<String>,
    device_public: String,
    psk: Zeroizing<String>,
    cloud_public: String,
    cloud_key_id: u32,
}

fn cloud_json(identity: &CloudIdentity) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
    to_json(&CloudKeyJson {
        cloud_key_id: identity.cloud_key_id,
        secret: Zeroizing::new(hex::encode(identity.secret.expose_secret())),
        public: hex::encode(identity.public.as_bytes()),
    })
}

fn device_json(identity: &DeviceIdentityFile) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
    to_json(&DeviceJson {
        device_id: identity.device_id.clone(),
        model: identity.model.as_str().to_owned(),
        key_id: identity.key_id,
        device_secret: Zeroizing::new(hex::encode(identity.device_secret.expose_secret())),
        device_public: hex::encode(identity.device_public.as_bytes()),
        psk: Zeroizing::new(hex::encode(identity.psk.expose_secret())),
        cloud_public: hex::encode(identity.cloud_public.as_bytes()),
        cloud_key_id: identity.cloud_key_id,
    })
}

fn to_json(value: &impl Serialize) -> Result<Zeroizing<Vec<u8>>, ProvisionError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(512));
    // Writing these structs of strings and integers into a Vec cannot fail.
    serde_json::to_writer_pretty(&mut *bytes, value).map_err(|error| {
        ProvisionError::Malformed {
            path: PathBuf::new(),
            problem: error.to_string(),
        }
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn parse_json<T: for<'de> Deserialize<'de>>(path: &Path, text: &str) -> Result<T, ProvisionError> {
    // NOTE: serde_json may keep short-lived copies of string fields in buffers that are
    // not zeroized.
    serde_json::from_str(text).map_err(|error| ProvisionError::Malformed {
        path: path.to_owned(),
        problem: error.to_string(),
    })
}

/// Decodes hex fields of a key file, naming the field on failure and never the value.
struct FieldParser<'a> {
    path: &'a Path,
}

impl FieldParser<'_> {
    fn secret_bytes(
        &self,
        field: &'static str,
        text: &str,
    ) -> Result<Zeroizing<[u8; 32]>, ProvisionError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), bytes.as_mut()).map_err(|_| self.not_hex(field, text))?;
        Ok(bytes)
    }

    fn public_bytes(
        &self,
        field: &'static str,
        text: &str,
    ) -> Result<[u8; DH_LEN], ProvisionError> {
        let mut bytes = [0u8; DH_LEN];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| self.not_hex(field, text))?;
        Ok(bytes)
    }

    fn not_hex(&self, field: &'static str, text: &str) -> ProvisionError {
        ProvisionError::InvalidField {
            path: self.path.to_owned(),
            field,
            problem: format!(
                "is not 64 hex digits (32 bytes): found {} characters",
                text.trim().chars().count()
            ),
        }
    }

    fn check_pair(
        &self,
        field: &'static str,
        secret: &SecretKey,
        public: &PublicKey,
    ) -> Result<(), ProvisionError> {
        if RustCrypto.x25519_public(secret) == *public {
            return Ok(());
        }
        Err(ProvisionError::InvalidField {
            path: self.path.to_owned(),
            field,
            problem: "does not match the public key of the secret key in the same file".to_owned(),
        })
    }
}

fn random_secret(rng: &mut impl CryptoRngCore) -> SecretKey {
    let mut bytes = Zeroizing::new([0u8; DH_LEN]);
    rng.fill_bytes(bytes.as_mut());
    SecretKey::from_bytes(*bytes)
}

fn create_dir(dir: &Path) -> Result<(), ProvisionError> {
    fs::create_dir_all(dir).map_err(|source| ProvisionError::Io {
        action: "creating directory",
        path: dir.to_owned(),
        source,
    })
}

/// Reads a key file into zeroizing memory, warning if other users may read it.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, ProvisionError> {
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => ProvisionError::Missing {
            path: path.to_owned(),
        },
        _ => ProvisionError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        },
    };
    let metadata = fs::metadata(path).map_err(io_error)?;
    #[cfg(unix)]
    {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:03o}"),
                "key file is accessible to other users; restrict it with chmod 600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(io_error)
}

/// A fully written and synced key file under a temporary name, not yet visible.
struct StagedFile {
    temporary: PathBuf,
    path: PathBuf,
}

/// Writes `contents` to a temporary file next to `path`, created with mode 0600.
fn stage_secret_file(path: &Path, contents: &[u8]) -> Result<StagedFile, ProvisionError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let io_error = |action| {
        let temporary = temporary.clone();
        move |source| ProvisionError::Io {
            action,
            path: temporary,
            source,
        }
    };
    // A leftover of a crashed run of a process with the same id is stale.
    match fs::remove_file(&temporary) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("removing stale")(error))
        }
        _ => {}
    }

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    // NOTE: on other platforms the file gets the default permissions.
    let mut file = options.open(&temporary).map_err(io_error("creating"))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error("writing")(source));
    }
    Ok(StagedFile {
        temporary,
        path: path.to_owned(),
    })
}

impl StagedFile {
    /// Makes the file visible under its final name, failing if that name exists.
    fn publish(self) -> Result<(), ProvisionError> {
        // A hard link, unlike a rename, never replaces an existing file.
        let linked = fs::hard_link(&self.temporary, &self.path);
        let _ = fs::remove_file(&self.temporary);
        match linked {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ProvisionError::Exists {
                    path: self.path.clone(),
                })
            }
            Err(source) => {
                return Err(ProvisionError::Io {
                    action: "linking",
                    path: self.path.clone(),
                    source,
                })
            }
        }
        sync_parent(&self.path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        // Removes the temporary file when publishing never happened; after `publish` it
        // is gone already and this does nothing.
        let _ = fs::remove_file(&self.temporary);
    }
}

/// Syncs the directory entry of `path`, so the new name survives a power loss.
fn sync_parent(path: &Path) -> Result<(), ProvisionError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    #[cfg(unix)]
    File::open(parent)
        .and_then(|directory| directory.sync_all())
        .map_err(|source| ProvisionError::Io {
            action: "syncing directory",
            path: parent.to_owned(),
            source,
        })?;
    #[cfg(not(unix))]
    let _ = (parent, File::open);
    Ok(())
}
