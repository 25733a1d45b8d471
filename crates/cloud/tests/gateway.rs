//! The gateway on loopback with real TLS, WebSocket and SQLite: devices drive the channel
//! core through the relay's client, and the tests check the database and the counters.

mod support;

use std::net::SocketAddr;

use medtunnel_cloud::{Gateway, GatewayError};
use medtunnel_store::lost::{SkipReason, SkippedRange};
use support::{measurement, wait_for_stats, Environment, TestDevice};

#[tokio::test]
async fn readings_stored_once_with_provenance() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(0, 100).await;
    assert_eq!(device.channel.stream().tx_acked, 100);

    let store = env.store();
    let readings = store
        .readings(&identity.device_id, None, None)
        .expect("readings");
    assert_eq!(readings.len(), 100);
    for (index, reading) in readings.iter().enumerate() {
        assert_eq!(reading.seq, index as u64);
        assert_eq!(reading.measurement, measurement(index as u32));
        assert_eq!(reading.key_id, identity.key_id);
        assert!(reading.received_at_ms > 0);
        assert!(reading.relay.starts_with("127.0.0.1:"), "{}", reading.relay);
        assert!(reading.relay.ends_with("#1"), "{}", reading.relay);
    }
    let state = store.channel_state(&identity.device_id).expect("state");
    assert_eq!(state.rx_acked_seq, Some(99));
    assert_eq!(state.last_initiation_counter, Some(0));

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.handshakes_completed, 1);
    assert_eq!(stats.readings_stored, 100);
    assert_eq!(stats.duplicates_suppressed, 0);
    assert_eq!(
        stats.frames_rejected.peer + stats.frames_rejected.malformed,
        0
    );
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn resent_readings_are_duplicates() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(0, 100).await;

    for seq in 0..100 {
        let frame = device.reseal(seq);
        device.send_frame(&frame).await;
    }
    wait_for_stats(&gateway, "100 duplicates", |stats| {
        stats.duplicates_suppressed == 100
    })
    .await;

    let store = env.store();
    assert_eq!(
        store.reading_count(&identity.device_id).expect("count"),
        100
    );
    let stats = gateway.stats().snapshot();
    assert_eq!(stats.readings_stored, 100);
    assert_eq!(stats.duplicates_suppressed, 100);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn unknown_key_id_is_rejected() {
    let env = Environment::new();
    let mut identity = env.provision_device("cgm-");
    identity.key_id = identity.key_id.wrapping_add(1);
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    let initiation = device.initiation();
    device.send_frame(&initiation).await;
    assert_eq!(device.recv().await, None, "gateway closes the connection");

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.handshakes_rejected.unknown_key_id, 1);
    assert_eq!(stats.handshakes_completed, 0);
    assert_eq!(env.store().total_readings().expect("count"), 0);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn revoked_device_is_rejected() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    env.store()
        .revoke_device(&identity.device_id)
        .expect("revoke");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    let initiation = device.initiation();
    device.send_frame(&initiation).await;
    assert_eq!(device.recv().await, None, "gateway closes the connection");

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.handshakes_rejected.revoked, 1);
    assert_eq!(stats.handshakes_completed, 0);
    assert_eq!(env.store().total_readings().expect("count"), 0);
    let state = env
        .store()
        .channel_state(&identity.device_id)
        .expect("state");
    assert_eq!(state.last_initiation_counter, None);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn replayed_initiation_is_stale() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    let initiation = device.handshake().await;

    let mut replayer = TestDevice::new(&identity);
    replayer.link = Some(env.connect(&gateway).await);
    replayer.send_frame(&initiation).await;
    let stats = wait_for_stats(&gateway, "stale initiation", |stats| {
        stats.handshakes_rejected.stale_counter == 1
    })
    .await;
    assert_eq!(stats.handshakes_completed, 1);

    // The original tunnel is unaffected.
    device.send_readings(0, 3).await;
    assert_eq!(
        env.store()
            .reading_count(&identity.device_id)
            .expect("count"),
        3
    );
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn frame_without_session_is_rejected() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    let frame = device.seal(&support::reading_payload(0));

    // The same frame on a fresh connection, before any handshake there.
    let mut other = TestDevice::new(&identity);
    other.link = Some(env.connect(&gateway).await);
    other.send_frame(&frame).await;
    let stats = wait_for_stats(&gateway, "frame without session", |stats| {
        stats.frames_without_session == 1
    })
    .await;
    assert_eq!(stats.frames_rejected.peer, 1);
    assert_eq!(env.store().total_readings().expect("count"), 0);

    // The connection stays open and the original tunnel still delivers the frame.
    device.send_frame(&frame).await;
    device.await_ack(1).await;
    assert_eq!(
        env.store()
            .reading_count(&identity.device_id)
            .expect("count"),
        1
    );
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn damaged_frames_rejected_between_good_ones() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;

    let first = device.seal(&support::reading_payload(0));
    let second = device.seal(&support::reading_payload(1));
    let third = device.seal(&support::reading_payload(2));
    let truncated = second[..10].to_vec();
    let short_by_one = second[..second.len() - 1].to_vec();
    let mut flipped = second.clone();
    flipped[12] ^= 0x01;

    device.send_frame(&first).await;
    device.send_frame(&truncated).await;
    device.send_frame(&short_by_one).await;
    device.send_frame(&flipped).await;
    device.send_frame(&second).await;
    device.send_frame(&third).await;
    device.await_ack(3).await;

    let stats = wait_for_stats(&gateway, "rejected frames", |stats| {
        stats.frames_rejected.malformed == 1 && stats.frames_rejected.peer == 2
    })
    .await;
    assert_eq!(stats.readings_stored, 3);
    let readings = env
        .store()
        .readings(&identity.device_id, None, None)
        .expect("readings");
    let seqs: Vec<u64> = readings.iter().map(|reading| reading.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn restart_continues_sequence_numbers() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(0, 50).await;
    gateway.shutdown().await.expect("shutdown");

    let gateway = env.start().await;
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(50, 50).await;
    for seq in 0..50 {
        let frame = device.reseal(seq);
        device.send_frame(&frame).await;
    }
    wait_for_stats(&gateway, "50 duplicates", |stats| {
        stats.duplicates_suppressed == 50
    })
    .await;

    let store = env.store();
    let readings = store
        .readings(&identity.device_id, None, None)
        .expect("readings");
    let seqs: Vec<u64> = readings.iter().map(|reading| reading.seq).collect();
    assert_eq!(seqs, (0..100).collect::<Vec<u64>>());
    assert!(readings[..50]
        .iter()
        .all(|reading| reading.relay.ends_with("#1")));
    assert!(readings[50..]
        .iter()
        .all(|reading| reading.relay.ends_with("#1")));
    let state = store.channel_state(&identity.device_id).expect("state");
    assert_eq!(state.rx_acked_seq, Some(99));
    assert_eq!(state.last_initiation_counter, Some(1));
    let stats = gateway.stats().snapshot();
    assert_eq!(stats.readings_stored, 50);
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn lost_messages_are_recorded() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(0, 1).await;

    // Messages 1 and 2 never leave the device, which then gives them up.
    device.seal(&support::reading_payload(1));
    device.seal(&support::reading_payload(2));
    device.channel.abandon_before(3);
    device.send_readings(3, 1).await;

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.messages_lost, 2);
    assert_eq!(stats.readings_stored, 2);
    let store = env.store();
    let ranges = store.skipped_ranges(&identity.device_id).expect("ranges");
    assert_eq!(
        ranges,
        vec![SkippedRange {
            from: 1,
            to: 3,
            reason: SkipReason::Lost
        }]
    );
    let state = store.channel_state(&identity.device_id).expect("state");
    assert_eq!(state.rx_acked_seq, Some(3));
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn malformed_record_acknowledged_not_stored() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;

    let frame = device.seal(&[0x01, 0xff, 0xff]);
    device.send_frame(&frame).await;
    device.await_ack(1).await;
    device.send_readings(1, 1).await;

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.records_malformed, 1);
    assert_eq!(stats.readings_stored, 1);
    let store = env.store();
    let readings = store
        .readings(&identity.device_id, None, None)
        .expect("readings");
    assert_eq!(readings.len(), 1);
    assert_eq!(readings[0].seq, 1);
    let state = store.channel_state(&identity.device_id).expect("state");
    assert_eq!(state.rx_acked_seq, Some(1));
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn rekey_on_open_connection() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.handshake().await;
    device.send_readings(0, 5).await;
    device.handshake().await;
    device.send_readings(5, 5).await;

    let stats = gateway.stats().snapshot();
    assert_eq!(stats.handshakes_completed, 2);
    assert_eq!(stats.readings_stored, 10);
    let state = env
        .store()
        .channel_state(&identity.device_id)
        .expect("state");
    assert_eq!(state.last_initiation_counter, Some(1));
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn other_paths_are_rejected() {
    let env = Environment::new();
    let gateway = env.start().await;
    let result = env
        .connector(gateway.local_addr(), "/other")
        .connect()
        .await;
    assert!(
        result.is_err(),
        "a path other than /tunnel must fail the upgrade"
    );
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn non_loopback_listen_is_rejected() {
    let env = Environment::new();
    let mut config = env.config();
    config.listen = "0.0.0.0:0".parse::<SocketAddr>().expect("address");
    let result = Gateway::bind(config).await;
    assert!(matches!(result, Err(GatewayError::NotLoopback { .. })));
}

#[tokio::test]
async fn empty_frame_is_counted_malformed() {
    let env = Environment::new();
    let identity = env.provision_device("cgm-");
    let gateway = env.start().await;
    let mut device = TestDevice::new(&identity);
    device.link = Some(env.connect(&gateway).await);
    device.send_frame(&[]).await;
    let stats = wait_for_stats(&gateway, "empty frame", |stats| {
        stats.frames_rejected.malformed == 1
    })
    .await;
    assert_eq!(stats.frames_rejected.peer, 0);
    device.handshake().await;
    gateway.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn stats_snapshot_serializes() {
    let env = Environment::new();
    let gateway = env.start().await;
    let json = serde_json::to_value(gateway.stats().snapshot()).expect("serialize");
    for field in [
        "connections_accepted",
        "handshakes_completed",
        "readings_stored",
        "duplicates_suppressed",
        "gaps_detected",
        "messages_lost",
        "records_malformed",
    ] {
        assert_eq!(json[field], 0, "{field}");
    }
    assert_eq!(json["handshakes_rejected"]["stale_counter"], 0);
    assert_eq!(json["frames_rejected"]["peer"], 0);
    gateway.shutdown().await.expect("shutdown");
}

#[cfg(unix)]
#[test]
fn generated_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temporary directory");
    let (cert, key) =
        medtunnel_cloud::tls::generate_local_certificate(dir.path()).expect("generate");
    let mode = std::fs::metadata(&key)
        .expect("key metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    medtunnel_cloud::tls::load_server_config(&cert, &key).expect("load");
}
