//! Ed25519 checkpoint keys and their files.
//!
//! A secret key file is one line with the 32-byte Ed25519 secret key (the RFC 8032 seed)
//! as 64 lowercase hex digits, created with mode 0600. A public key file is one line
//! with the 32-byte public key as 64 hex digits. The key id is the first 8 bytes of
//! `SHA-256(public key)` as 16 hex digits.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::AuditError;

/// Length of the key id in hex digits.
const KEY_ID_HEX_LEN: usize = 16;

/// The secret key that signs checkpoints. Zeroized on drop, and `Debug` prints only the
/// key id.
pub struct CheckpointKey {
    signing: SigningKey,
    public: CheckpointPublicKey,
}

impl CheckpointKey {
    /// Generates a new key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// Creates the key whose RFC 8032 secret key (seed) is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = CheckpointPublicKey::new(signing.verifying_key());
        CheckpointKey { signing, public }
    }

    /// Generates a key with the operating system's generator and writes it to a new file
    /// at `path` with mode 0600. Fails if the file exists.
    pub fn create_file(path: &Path) -> Result<Self, AuditError> {
        let key = Self::generate(&mut rand_core::OsRng);
        let text = Zeroizing::new(format!("{}\n", hex::encode(key.signing.as_bytes())));
        write_new_file(path, text.as_bytes(), true)?;
        Ok(key)
    }

    /// Loads a key written by [`CheckpointKey::create_file`].
    ///
    /// On Unix, rejects a file that its group or other users may access.
    pub fn load_file(path: &Path) -> Result<Self, AuditError> {
        check_private_mode(path)?;
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io_error("reading", path))?);
        let mut seed = Zeroizing::new([0u8; 32]);
        decode_hex_line(path, &text, seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    /// Returns the public key that verifies this key's checkpoints.
    pub fn public_key(&self) -> &CheckpointPublicKey {
        &self.public
    }

    /// Signs `message` (the checkpoint encoding).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CheckpointKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

/// The public key that verifies checkpoints, with its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointPublicKey {
    key: VerifyingKey,
    key_id: String,
}

impl CheckpointPublicKey {
    fn new(key: VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut key_id = hex::encode(digest);
        key_id.truncate(KEY_ID_HEX_LEN);
        CheckpointPublicKey { key, key_id }
    }

    /// Parses a 32-byte Ed25519 public key. Fails for an encoding that is not a curve
    /// point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, String> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| "the bytes are not an Ed25519 public key".to_owned())?;
        Ok(Self::new(key))
    }

    /// Returns the key id stored with each checkpoint this key signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns the 32-byte public key.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Writes the public key to a new file at `path`. Fails if the file exists.
    pub fn write_file(&self, path: &Path) -> Result<(), AuditError> {
        let text = format!("{}\n", hex::encode(self.key.as_bytes()));
        write_new_file(path, text.as_bytes(), false)
    }

    /// Loads a public key written by [`CheckpointPublicKey::write_file`].
    pub fn load_file(path: &Path) -> Result<Self, AuditError> {
        let text = fs::read_to_string(path).map_err(io_error("reading", path))?;
        let mut bytes = [0u8; 32];
        decode_hex_line(path, &text, &mut bytes)?;
        Self::from_bytes(&bytes).map_err(|problem| AuditError::InvalidKeyFile {
            path: path.to_owned(),
            problem,
        })
    }

    /// Verifies an Ed25519 signature with the strict checks of `ed25519-dalek`
    /// (`verify_strict`), which reject small-order keys and non-canonical signatures.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

/// Decodes a file's text, one line of hex digits with an optional final newline, into
/// `output`. The error never contains the text.
fn decode_hex_line(path: &Path, text: &str, output: &mut [u8]) -> Result<(), AuditError> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    hex::decode_to_slice(line, output).map_err(|_| AuditError::InvalidKeyFile {
        path: path.to_owned(),
        problem: format!("expected one line of {} hex digits", output.len() * 2),
    })
}

fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), AuditError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(if secret { 0o600 } else { 0o644 });
    // NOTE: on other platforms a secret key file gets the default permissions.
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io_error("creating", path))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(path);
        return Err(io_error("writing", path)(source));
    }
    Ok(())
}

fn check_private_mode(path: &Path) -> Result<(), AuditError> {
    let metadata = fs::metadata(path).map_err(io_error("reading", path))?;
    #[cfg(unix)]
    {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuditError::KeyFileExposed {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    Ok(())
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> AuditError + 'a {
    move |source| AuditError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let secret_path = dir.path().join("audit-key");
        let public_path = dir.path().join("audit-key.pub");
        let key = CheckpointKey::create_file(&secret_path).expect("create key");
        key.public_key()
            .write_file(&public_path)
            .expect("write public key");

        let loaded = CheckpointKey::load_file(&secret_path).expect("load key");
        let public = CheckpointPublicKey::load_file(&public_path).expect("load public key");
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(&public, key.public_key());
        assert_eq!(public.key_id().len(), KEY_ID_HEX_LEN);
    }

    #[cfg(unix)]
    #[test]
    fn secret_key_file_is_private() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("audit-key");
        CheckpointKey::create_file(&path).expect("create key");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let error = CheckpointKey::load_file(&path).expect_err("readable key accepted");
        assert!(matches!(
            error,
            AuditError::KeyFileExposed { mode: 0o644, .. }
        ));
    }

    #[test]
    fn existing_key_file_is_not_replaced() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("audit-key");
        CheckpointKey::create_file(&path).expect("create key");
        assert!(CheckpointKey::create_file(&path).is_err());
    }

    #[test]
    fn debug_omits_secret_key() {
        let key = CheckpointKey::from_seed(&[7u8; 32]);
        let printed = format!("{key:?}");
        assert!(!printed.contains(&hex::encode([7u8; 32])));
        assert!(printed.contains(key.public_key().key_id()));
    }
}
