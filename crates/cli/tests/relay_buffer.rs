//! What the relay buffers while the cloud is away is ciphertext only.

use std::sync::Arc;
use std::time::Duration;

use medtunnel_cloud::{Gateway, GatewayConfig};
use medtunnel_device::{run_cgm, CgmConfig, CgmProgress, PersistentState, SoftwareKeyStore};
use medtunnel_relay::{BleLink, CaCertificate, FrameLink, Relay, RelayConfig};
use medtunnel_store::provision::{device_identity_path, provision_cloud, provision_devices};
use medtunnel_store::{DeviceModel, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_frames_hold_no_plaintext() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut store = Store::open(dir.join("cloud.db")).unwrap();
    provision_cloud(dir, &mut store).unwrap();
    provision_devices(dir, &mut store, DeviceModel::Cgm, 1, "cgm-").unwrap();
    drop(store);
    let (cert, key) = medtunnel_cloud::tls::generate_local_certificate(&dir.join("tls")).unwrap();
    let config = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.join("cloud.db"),
        dir.join("cloud-key.json"),
        cert.clone(),
        key,
    );
    let gateway = Gateway::bind(config).await.unwrap();
    let cloud_url = format!("wss://{}/tunnel", gateway.local_addr());
    let gateway = gateway.spawn();

    let relay =
        Arc::new(Relay::new(RelayConfig::new(cloud_url, CaCertificate::PemFile(cert))).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = listener.local_addr().unwrap();
    let relay_task = {
        let relay = Arc::clone(&relay);
        tokio::spawn(async move {
            let link = BleLink::accept(&listener, 100).await.unwrap();
            let _ = relay
                .run(FrameLink::new(link), std::future::pending::<()>())
                .await;
        })
    };

    let trace = medtunnel_records::trace::generated_trace(1, 400, 7);
    let start = trace[0].time_s;
    let readings: Vec<medtunnel_records::CgmMeasurement> = trace
        .iter()
        .map(|reading| medtunnel_records::CgmMeasurement {
            session_start_s: start,
            time_offset_s: u32::try_from(reading.time_s - start).unwrap(),
            glucose_mg_dl: reading.glucose_mg_dl,
            trend_mg_dl_per_min: None,
            quality_percent: None,
            status: 0,
        })
        .collect();
    let plaintexts: Vec<Vec<u8>> = readings
        .iter()
        .map(|reading| reading.encode().unwrap())
        .collect();
    let keystore = SoftwareKeyStore::load(&device_identity_path(dir, "cgm-0001")).unwrap();
    let state = PersistentState::new(dir.join("state.json"));
    let mut config = CgmConfig::new(relay_addr, readings);
    config.mtu = 100;
    config.speed = 300.0 * 50.0; // 50 readings per second
    config.deadline = Duration::from_secs(20);
    let progress = Arc::new(CgmProgress::default());
    let device_progress = Arc::clone(&progress);
    let device =
        tokio::spawn(async move { run_cgm(&keystore, &state, config, device_progress).await });

    // Take the cloud away once the tunnel works, and let the relay buffer.
    while progress.acked.load(std::sync::atomic::Ordering::Relaxed) < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.shutdown().await.unwrap();
    let mut buffered = Vec::new();
    for _ in 0..500 {
        buffered = relay.buffered_frames_snapshot();
        if buffered.len() >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        buffered.len() >= 20,
        "relay buffered only {} frames",
        buffered.len()
    );
    for frame in &buffered {
        for plaintext in &plaintexts {
            let found = frame
                .windows(plaintext.len())
                .any(|window| window == plaintext.as_slice());
            assert!(!found, "a buffered frame contains a plaintext reading");
        }
    }
    device.abort();
    relay_task.abort();
}
