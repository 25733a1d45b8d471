//! `medtunnel cloud`: the gateway as a process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use medtunnel_cloud::{Gateway, GatewayConfig};
use medtunnel_store::provision::CLOUD_KEY_FILE;
use tracing::info;

use crate::args::loopback_addr;
use crate::provision::DATABASE_FILE;
use crate::CommandResult;

/// Folder of the TLS certificate and key inside the data directory.
pub const TLS_DIR: &str = "tls";

#[derive(Args)]
pub struct CloudArgs {
    /// Data directory made by `medtunnel provision` (cloud.db, cloud-key.json).
    #[arg(long)]
    dir: PathBuf,
    /// Address of the tunnel endpoint (WebSocket over TLS at path /tunnel).
    #[arg(long, value_parser = loopback_addr, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Address of the HTTP API for people and the phone app (JSON; OpenAPI description
    /// at /openapi.json).
    #[arg(long, value_parser = loopback_addr, default_value = "127.0.0.1:8080")]
    api_listen: SocketAddr,
}

/// Paths of the TLS certificate and key in `dir`, made on first use.
pub fn tls_files(dir: &Path) -> Result<(PathBuf, PathBuf), medtunnel_cloud::tls::TlsError> {
    let tls_dir = dir.join(TLS_DIR);
    let cert = tls_dir.join(medtunnel_cloud::tls::CERT_FILE);
    let key = tls_dir.join(medtunnel_cloud::tls::KEY_FILE);
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    medtunnel_cloud::tls::generate_local_certificate(&tls_dir)
}

/// Gateway settings for the data directory `dir`.
pub fn gateway_config(
    dir: &Path,
    listen: SocketAddr,
) -> Result<GatewayConfig, Box<dyn std::error::Error + Send + Sync>> {
    let database = dir.join(DATABASE_FILE);
    if !database.exists() {
        return Err(format!(
            "no database at {}; run `medtunnel provision --dir {}` first",
            database.display(),
            dir.display()
        )
        .into());
    }
    let (cert, key) = tls_files(dir)?;
    Ok(GatewayConfig::new(
        listen,
        database,
        dir.join(CLOUD_KEY_FILE),
        cert,
        key,
    ))
}

pub fn run_cloud(args: CloudArgs) -> CommandResult {
    let config = gateway_config(&args.dir, args.listen)?;
    let api_state = medtunnel_api::ApiState::open(args.dir.join(DATABASE_FILE))?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let gateway = Gateway::bind(config).await?;
        let addr = gateway.local_addr();
        let stats = gateway.stats();
        let api_listener = tokio::net::TcpListener::bind(args.api_listen)
            .await
            .map_err(|error| format!("cannot listen on {} for the API: {error}", args.api_listen))?;
        let api_addr = api_listener.local_addr()?;
        let cert = args.dir.join(TLS_DIR).join(medtunnel_cloud::tls::CERT_FILE);
        println!(
            "cloud gateway on wss://{addr}/tunnel; relays trust {}; API on http://{api_addr}; Ctrl-C stops it",
            cert.display()
        );
        let api = tokio::spawn(medtunnel_api::serve(api_listener, api_state, async {
            let _ = tokio::signal::ctrl_c().await;
        }));
        gateway
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
        api.abort();
        info!(stats = ?stats.snapshot(), "cloud gateway stopped");
        Ok(())
    })
}
