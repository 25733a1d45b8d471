//! Device identity behind a key-store interface.
//!
//! A production device keeps its static key in a secure element and never exports it;
//! the simulator reads it from an identity file written by `medtunnel provision`.

use std::path::{Path, PathBuf};

use medtunnel_proto::crypto::{CryptoProvider, PublicKey, SecretKey, SymmetricKey};
use medtunnel_proto::handshake::DeviceKeys;
use serde::Deserialize;
use zeroize::Zeroize;

/// Failure to load a device identity.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The identity file could not be read.
    #[error("cannot read device identity {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// The identity file is not valid JSON of the expected shape.
    #[error("device identity {path} is malformed: {message}; re-run `medtunnel provision`")]
    Malformed {
        /// File path.
        path: PathBuf,
        /// Description of the problem, without any key bytes.
        message: String,
    },
    /// A key field is not 32 bytes of hex.
    #[error("device identity {path}: field `{field}` must be 64 hex digits (32 bytes)")]
    BadKey {
        /// File path.
        path: PathBuf,
        /// Field name.
        field: &'static str,
    },
}

/// Source of the keys a device needs for its tunnel.
///
/// NOTE: this interface hands the static secret to the channel core, as a software store
/// must. A secure-element store will instead perform the X25519 operations inside the
/// element, which needs a core API that takes a DH callback.
pub trait KeyStore {
    /// Device id, as registered at the cloud.
    fn device_id(&self) -> &str;
    /// Builds the keys for the channel core.
    fn device_keys<P: CryptoProvider>(&self, provider: &P) -> DeviceKeys;
}

/// Identity read from a JSON file written by provisioning.
pub struct SoftwareKeyStore {
    device_id: String,
    model: String,
    key_id: u32,
    cloud_key_id: u32,
    device_secret: SecretKey,
    cloud_public: PublicKey,
    psk: SymmetricKey,
}

#[derive(Deserialize)]
struct IdentityFile {
    device_id: String,
    model: String,
    key_id: u32,
    cloud_key_id: u32,
    device_secret: String,
    cloud_public: String,
    psk: String,
}

impl Drop for IdentityFile {
    fn drop(&mut self) {
        self.device_secret.zeroize();
        self.psk.zeroize();
    }
}

impl SoftwareKeyStore {
    /// Loads an identity file.
    pub fn load(path: &Path) -> Result<Self, KeyStoreError> {
        let mut text = std::fs::read_to_string(path).map_err(|source| KeyStoreError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parsed: Result<IdentityFile, _> = serde_json::from_str(&text);
        text.zeroize();
        let file = parsed.map_err(|error| KeyStoreError::Malformed {
            path: path.to_owned(),
            // serde_json's message names the line and column, never the value.
            message: format!("{} at line {}", classify(&error), error.line()),
        })?;
        let key = |field: &'static str, hex_text: &str| {
            parse_key(hex_text).ok_or_else(|| KeyStoreError::BadKey {
                path: path.to_owned(),
                field,
            })
        };
        Ok(SoftwareKeyStore {
            device_secret: SecretKey::from_bytes(key("device_secret", &file.device_secret)?),
            cloud_public: PublicKey::from_bytes(key("cloud_public", &file.cloud_public)?),
            psk: SymmetricKey::from_bytes(key("psk", &file.psk)?),
            device_id: file.device_id.clone(),
            model: file.model.clone(),
            key_id: file.key_id,
            cloud_key_id: file.cloud_key_id,
        })
    }

    /// Device model name, such as `cgm`.
    pub fn model(&self) -> &str {
        &self.model
    }
}

fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "missing or wrongly typed field",
        serde_json::error::Category::Eof => "unexpected end of file",
    }
}

fn parse_key(hex_text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut bytes).ok()?;
    Some(bytes)
}

impl KeyStore for SoftwareKeyStore {
    fn device_id(&self) -> &str {
        &self.device_id
    }

    fn device_keys<P: CryptoProvider>(&self, provider: &P) -> DeviceKeys {
        DeviceKeys::new(
            provider,
            self.key_id,
            self.cloud_key_id,
            self.device_secret.clone(),
            self.cloud_public,
            self.psk.clone(),
        )
    }
}
