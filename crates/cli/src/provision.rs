//! `medtunnel provision`: the cloud key, the database and device identities.

use std::path::PathBuf;

use clap::Args;
use medtunnel_store::provision::{device_identity_path, provision_cloud, provision_devices};
use medtunnel_store::{DeviceModel, Store};

use crate::CommandResult;

/// Most device identities one `provision` run creates.
const MAX_DEVICES_PER_RUN: usize = 100_000;

/// Name of the cloud database inside the data directory.
pub const DATABASE_FILE: &str = "cloud.db";

#[derive(Args)]
pub struct ProvisionArgs {
    /// Data directory: receives cloud.db, cloud-key.json and `devices/<id>.json`.
    #[arg(long)]
    dir: PathBuf,
    /// Number of device identities to create.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Device model: cgm, insulin_pump or pacemaker.
    #[arg(long, default_value = "cgm", value_parser = parse_model)]
    model: DeviceModel,
    /// Prefix of the device ids; a number of at least four digits follows it.
    #[arg(long, default_value = "cgm-")]
    prefix: String,
}

fn parse_model(text: &str) -> Result<DeviceModel, String> {
    DeviceModel::from_name(text).ok_or_else(|| {
        format!("{text:?} is not a device model; use cgm, insulin_pump or pacemaker")
    })
}

/// Creates `dir` if needed and makes it accessible to its owner only, because the
/// database in it holds PSKs, account secrets and health data (SQLite creates its files
/// with the process umask, so the folder is what keeps them private).
pub fn create_private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create data directory {}: {error}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|error| {
            format!(
                "cannot make data directory {} private: {error}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

pub fn run(args: ProvisionArgs) -> CommandResult {
    if args.devices > MAX_DEVICES_PER_RUN {
        return Err(format!(
            "--devices {} is more than {MAX_DEVICES_PER_RUN} per run; provision in several runs",
            args.devices
        )
        .into());
    }
    create_private_dir(&args.dir)?;
    let mut store = Store::open(args.dir.join(DATABASE_FILE))?;
    let cloud = provision_cloud(&args.dir, &mut store)?;
    // The therapy service creates the audit log, its checkpoint key and the
    // command-signing key, so `medtunnel audit verify` works from the start.
    medtunnel_therapy::TherapyService::open(
        &args.dir,
        medtunnel_therapy::TherapyConfig::default(),
        now_ms(),
    )?;
    println!(
        "cloud key id {} ready in {}",
        cloud.cloud_key_id,
        args.dir.display()
    );
    let devices = provision_devices(
        &args.dir,
        &mut store,
        args.model,
        args.devices,
        &args.prefix,
    )?;
    for device in &devices {
        println!(
            "device {} (key id {}): {}",
            device.device_id,
            device.key_id,
            device_identity_path(&args.dir, &device.device_id).display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct RevokeArgs {
    /// Data directory holding cloud.db.
    #[arg(long)]
    dir: PathBuf,
    /// Device id to revoke; its handshakes are rejected from now on.
    #[arg(long)]
    device: String,
}

pub fn revoke(args: RevokeArgs) -> CommandResult {
    let path = args.dir.join(DATABASE_FILE);
    if !path.exists() {
        return Err(format!(
            "no database at {}; run `medtunnel provision` first",
            path.display()
        )
        .into());
    }
    let mut store = Store::open(&path)?;
    if store.device(&args.device)?.is_none() {
        return Err(format!(
            "device {:?} is not registered in {}",
            args.device,
            path.display()
        )
        .into());
    }
    store.revoke_device(&args.device)?;
    println!(
        "device {} revoked; a running gateway rejects its next handshake",
        args.device
    );
    Ok(())
}
