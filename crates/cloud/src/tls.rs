//! TLS of the gateway: a self-signed certificate for local operation, and the rustls
//! server configuration loaded from PEM files.
//!
//! NOTE: the generated certificate is self-signed and valid only for `localhost` and
//! `127.0.0.1`; clients must trust it explicitly. A deployment needs a certificate from
//! its own CA.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// File name of the generated certificate.
pub const CERT_FILE: &str = "gateway-cert.pem";
/// File name of the generated private key.
pub const KEY_FILE: &str = "gateway-key.pem";

/// Failure to create or load the TLS certificate and key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not generate the key pair or the certificate.
    #[error("generating the self-signed certificate failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file or directory operation failed.
    #[error("{action} {path} failed: {source}")]
    Io {
        /// Operation that failed, for example "writing".
        action: &'static str,
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        source: io::Error,
    },
    /// A PEM file does not contain what it must.
    #[error("invalid PEM file {path}: {reason}")]
    Pem {
        /// File concerned.
        path: PathBuf,
        /// Description of the problem.
        reason: String,
    },
    /// rustls rejected the certificate or key.
    #[error("TLS server configuration failed: {0}")]
    Config(#[from] rustls::Error),
}

/// Generates a self-signed certificate for `localhost` and `127.0.0.1` in `dir`, as
/// [`CERT_FILE`] and [`KEY_FILE`], and returns their paths (certificate, key).
///
/// Existing files of those names are replaced. The key file is created with mode 0600
/// (on Unix), so its contents are never readable by other users.
pub fn generate_local_certificate(dir: &Path) -> Result<(PathBuf, PathBuf), TlsError> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names)?;
    fs::create_dir_all(dir).map_err(io_error("creating directory", dir))?;

    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    fs::write(&cert_path, certified.cert.pem()).map_err(io_error("writing", &cert_path))?;
    let key_pem = certified.signing_key.serialize_pem();
    write_private_file(&key_path, key_pem.as_bytes())?;
    tracing::info!(cert = %cert_path.display(), key = %key_path.display(), "generated TLS certificate");
    Ok((cert_path, key_path))
}

/// Loads the certificate chain and private key from PEM files into a rustls server
/// configuration that uses the aws-lc-rs provider and the safe default TLS versions.
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_error = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|error| pem_error(cert_path, error.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(cert_path, error.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(
            cert_path,
            "no CERTIFICATE block found".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|error| pem_error(key_path, format!("no usable private key: {error}")))?;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Writes `contents` to a new file at `path` that only the owner can read.
fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    // Removing first makes the mode below apply: an existing file would keep its own.
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(io_error("removing", path)(error));
        }
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    // NOTE: on other platforms the key file gets the default permissions.
    let mut file = options.open(path).map_err(io_error("creating", path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(io_error("writing", path))
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TlsError {
    let path = path.to_owned();
    move |source| TlsError::Io {
        action,
        path,
        source,
    }
}
