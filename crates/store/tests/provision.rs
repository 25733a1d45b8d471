//! Provisioning of the cloud key and device identities into a temporary directory.

use std::fs;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

use medtunnel_proto::crypto::{CryptoProvider, RustCrypto};
use medtunnel_store::provision::{
    device_identity_path, load_cloud_identity, load_device_identity, provision_cloud,
    provision_devices, ProvisionError, CLOUD_KEY_FILE,
};
use medtunnel_store::{DeviceModel, Store};
use tempfile::TempDir;

fn setup() -> (TempDir, Store) {
    let dir = TempDir::new().expect("temporary directory");
    let store = Store::open(dir.path().join("cloud.sqlite")).expect("open store");
    (dir, store)
}

#[test]
fn cloud_key_is_created_once() {
    let (dir, mut store) = setup();
    let first = provision_cloud(dir.path(), &mut store).expect("create");
    let second = provision_cloud(dir.path(), &mut store).expect("load");
    assert_eq!(first.cloud_key_id, 1);
    assert_eq!(second.cloud_key_id, 1);
    assert_eq!(first.public, second.public);
    assert_eq!(first.secret.expose_secret(), second.secret.expose_secret());
    assert_eq!(RustCrypto.x25519_public(&first.secret), first.public);
    assert_eq!(store.cloud_key(1).expect("query"), Some(first.public));
}

#[test]
fn devices_are_registered_and_loadable() {
    let (dir, mut store) = setup();
    let cloud = provision_cloud(dir.path(), &mut store).expect("cloud");
    let devices =
        provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 3, "cgm-").expect("devices");

    let ids: Vec<&str> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["cgm-0001", "cgm-0002", "cgm-0003"]);
    for device in &devices {
        let record = store
            .device_by_key_id(device.key_id)
            .expect("query")
            .expect("registered");
        assert_eq!(record.device_id, device.device_id);
        assert_eq!(record.static_public, device.device_public);
        assert_eq!(record.psk.expose_secret(), device.psk.expose_secret());
        assert_eq!(record.cloud_key_id, cloud.cloud_key_id);
        assert_eq!(device.cloud_public, cloud.public);

        let loaded = load_device_identity(&device_identity_path(dir.path(), &device.device_id))
            .expect("load identity");
        assert_eq!(loaded.device_id, device.device_id);
        assert_eq!(loaded.model, DeviceModel::Cgm);
        assert_eq!(loaded.key_id, device.key_id);
        assert_eq!(loaded.device_public, device.device_public);
        assert_eq!(
            loaded.device_secret.expose_secret(),
            device.device_secret.expose_secret()
        );
        assert_eq!(loaded.psk.expose_secret(), device.psk.expose_secret());
        assert_eq!(loaded.cloud_public, cloud.public);
        assert_eq!(loaded.cloud_key_id, cloud.cloud_key_id);
    }
    assert_ne!(
        devices[0].psk.expose_secret(),
        devices[1].psk.expose_secret()
    );
    assert_ne!(devices[0].device_public, devices[1].device_public);

    let more =
        provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 1, "cgm-").expect("devices");
    assert_eq!(more[0].device_id, "cgm-0004");
}

#[test]
fn devices_need_a_cloud_key() {
    let (dir, mut store) = setup();
    assert!(matches!(
        provision_devices(dir.path(), &mut store, DeviceModel::Pacemaker, 1, "pm-"),
        Err(ProvisionError::NoCloudKey)
    ));
}

#[test]
fn invalid_prefix_writes_nothing() {
    let (dir, mut store) = setup();
    provision_cloud(dir.path(), &mut store).expect("cloud");
    let result = provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 1, "../x");
    assert!(
        matches!(result, Err(ProvisionError::Store(_))),
        "{result:?}"
    );
    assert!(store.list_devices().expect("list").is_empty());
}

#[cfg(unix)]
#[test]
fn key_files_have_mode_0600() {
    let (dir, mut store) = setup();
    provision_cloud(dir.path(), &mut store).expect("cloud");
    let devices = provision_devices(dir.path(), &mut store, DeviceModel::InsulinPump, 2, "pump-")
        .expect("devices");
    let mut paths = vec![dir.path().join(CLOUD_KEY_FILE)];
    paths.extend(
        devices
            .iter()
            .map(|d| device_identity_path(dir.path(), &d.device_id)),
    );
    for path in paths {
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("devices"))
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn malformed_key_file_names_the_field() {
    let (dir, mut store) = setup();
    let cloud = provision_cloud(dir.path(), &mut store).expect("cloud");
    let devices =
        provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 1, "cgm-").expect("devices");
    let device_path = device_identity_path(dir.path(), &devices[0].device_id);
    let original = fs::read_to_string(&device_path).expect("read");
    let psk_hex = hex::encode(devices[0].psk.expose_secret());

    fs::write(&device_path, original.replace(&psk_hex, "zz")).expect("write");
    let error = load_device_identity(&device_path).expect_err("bad psk");
    let message = error.to_string();
    assert!(
        message.ends_with("field \"psk\" is not 64 hex digits (32 bytes): found 2 characters"),
        "{message}"
    );

    let wrong_public = hex::encode(cloud.public.as_bytes());
    let device_public = hex::encode(devices[0].device_public.as_bytes());
    fs::write(
        &device_path,
        original.replace(&device_public, &wrong_public),
    )
    .expect("write");
    let message = load_device_identity(&device_path)
        .expect_err("mismatched public key")
        .to_string();
    assert!(
        message.ends_with(
            "field \"device_public\" does not match the public key of the secret key in the same file"
        ),
        "{message}"
    );

    fs::write(&device_path, original.replace("\"cgm\"", "\"toaster\"")).expect("write");
    let message = load_device_identity(&device_path)
        .expect_err("bad model")
        .to_string();
    assert!(
        message.ends_with("field \"model\" \"toaster\" is not cgm, insulin_pump or pacemaker"),
        "{message}"
    );

    let cloud_path = dir.path().join(CLOUD_KEY_FILE);
    fs::write(&cloud_path, "{\"cloud_key_id\": 1}").expect("write");
    let message = load_cloud_identity(&cloud_path)
        .expect_err("missing fields")
        .to_string();
    assert!(message.contains("missing field `secret`"), "{message}");
    assert!(!message.contains(&psk_hex));
}

#[test]
fn missing_key_file_is_reported() {
    let dir = TempDir::new().expect("temporary directory");
    let path = dir.path().join(CLOUD_KEY_FILE);
    let message = load_cloud_identity(&path).expect_err("missing").to_string();
    assert_eq!(
        message,
        format!("key file {} not found; provision it first", path.display())
    );
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let (dir, mut store) = setup();
    let cloud = provision_cloud(dir.path(), &mut store).expect("cloud");
    let devices =
        provision_devices(dir.path(), &mut store, DeviceModel::Cgm, 1, "cgm-").expect("devices");
    let debug = format!("{cloud:?} {:?}", devices[0]);
    assert!(!debug.contains(&hex::encode(cloud.secret.expose_secret())));
    assert!(!debug.contains(&hex::encode(devices[0].psk.expose_secret())));
    assert!(debug.contains("redacted"), "{debug}");
}
