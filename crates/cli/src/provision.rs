//! `medtunnel provision`: the cloud key, the database and device identities.

use std::path::PathBuf;

use clap::Args;
use medtunnel_store::provision::{device_identity_path, provision_cloud, provision_devices};
use medtunnel_store::{DeviceModel, Store};

use crate::CommandResult;

/// Name of the cloud database inside the data directory.
pub const DATABASE_FILE: &str = "cloud.db";

#[derive(Args)]
pub struct ProvisionArgs {
    /// Data directory: receives cloud.db, cloud-key.json and devices/<id>.json.
    #[arg(long)]
    dir: PathBuf,
    /// Number of device identities to create.
    #[arg(long, default_value_t = 1)]
    devices: usize,
    /// Device model: cgm, insulin_pump or pacemaker.
    #[arg(long, default_value = "cgm", value_parser = parse_model)]
    model: DeviceModel,
    /// Prefix of the device ids; a four-digit number follows it.
    #[arg(long, default_value = "cgm-")]
    prefix: String,
}

fn parse_model(text: &str) -> Result<DeviceModel, String> {
    DeviceModel::from_name(text).ok_or_else(|| {
        format!("{text:?} is not a device model; use cgm, insulin_pump or pacemaker")
    })
}

pub fn run(args: ProvisionArgs) -> CommandResult {
    std::fs::create_dir_all(&args.dir).map_err(|error| {
        format!(
            "cannot create data directory {}: {error}",
            args.dir.display()
        )
    })?;
    let mut store = Store::open(args.dir.join(DATABASE_FILE))?;
    let cloud = provision_cloud(&args.dir, &mut store)?;
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
