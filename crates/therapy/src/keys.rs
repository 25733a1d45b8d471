//! The command-signing key (Ed25519) and its files.
//!
//! The secret key file is one line with the 32-byte RFC 8032 secret key as 64 lowercase
//! hex digits, created with mode 0600; the public key file is one line with the 32-byte
//! public key as 64 hex digits. The public key is what every pump and pacemaker trusts,
//! and the simulators read it from the public key file.
//!
//! NOTE: the secret key sits in a file. An HSM-backed key store is to hold it, so that a
//! copy of the data directory cannot sign commands.

use std::fs::{self, OpenOptions};
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::{TherapyError, TherapyResult};

/// File name of the command-signing secret key in the cloud directory.
pub const COMMAND_KEY_FILE: &str = "command-key";
/// File name of the command-signing public key in the cloud directory.
pub const COMMAND_PUBLIC_KEY_FILE: &str = "command-key.pub";

/// Loads the signing key from `dir`, or creates it and its public key file there.
pub(crate) fn load_or_create_signing_key(dir: &Path) -> TherapyResult<SigningKey> {
    let path = dir.join(COMMAND_KEY_FILE);
    let public_path = dir.join(COMMAND_PUBLIC_KEY_FILE);
    if !path.exists() {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(seed.as_mut());
        let key = SigningKey::from_bytes(&seed);
        let text = Zeroizing::new(format!("{}\n", hex::encode(seed.as_slice())));
        write_new_file(&path, text.as_bytes(), true)?;
        let public = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
        write_new_file(&public_path, public.as_bytes(), false)?;
        tracing::info!(path = %path.display(), "created command-signing key");
        return Ok(key);
    }
    check_private_mode(&path)?;
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(|e| key_error(&path, e))?);
    let mut seed = Zeroizing::new([0u8; 32]);
    decode_hex_line(&path, &text, seed.as_mut())?;
    let key = SigningKey::from_bytes(&seed);
    if !public_path.exists() {
        let public = format!("{}\n", hex::encode(key.verifying_key().as_bytes()));
        write_new_file(&public_path, public.as_bytes(), false)?;
    }
    Ok(key)
}

/// Loads a command-signing public key file, as a device does at provisioning.
pub fn load_command_public_key(path: &Path) -> TherapyResult<VerifyingKey> {
    let text = fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    let mut bytes = [0u8; 32];
    decode_hex_line(path, &text, &mut bytes)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| TherapyError::KeyFile {
        path: path.to_owned(),
        problem: "the bytes are not an Ed25519 public key".to_owned(),
    })
}

fn decode_hex_line(path: &Path, text: &str, out: &mut [u8]) -> TherapyResult<()> {
    let line = text.strip_suffix('\n').unwrap_or(text);
    hex::decode_to_slice(line, out).map_err(|_| TherapyError::KeyFile {
        path: path.to_owned(),
        problem: format!("expected one line of {} hex digits", out.len() * 2),
    })
}

fn write_new_file(path: &Path, contents: &[u8], secret: bool) -> TherapyResult<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(if secret { 0o600 } else { 0o644 });
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|e| key_error(path, e))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(error) = written {
        let _ = fs::remove_file(path);
        return Err(key_error(path, error));
    }
    Ok(())
}

fn check_private_mode(path: &Path) -> TherapyResult<()> {
    #[cfg(unix)]
    {
        let metadata = fs::metadata(path).map_err(|e| key_error(path, e))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TherapyError::KeyFile {
                path: path.to_owned(),
                problem: format!("mode {mode:o} lets other users read it; run chmod 600"),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn key_error(path: &Path, error: std::io::Error) -> TherapyError {
    TherapyError::KeyFile {
        path: path.to_owned(),
        problem: error.to_string(),
    }
}
