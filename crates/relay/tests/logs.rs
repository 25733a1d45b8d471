//! Relay logs: what they contain and how often they warn. These tests live in their
//! own binary because `tracing` caches per-callsite interest across threads, so a test
//! thread without a subscriber can hide events from a thread that captures them.

mod support;

use std::sync::Arc;

use medtunnel_proto::fragment::{MAX_LINK_MTU, MIN_LINK_MTU};
use support::{
    device_recv, fast_config, make_cert, test_frame, tunnel_url, wait_until, LogBuffer, Running,
    TestCloud,
};
use tokio::net::TcpListener;

#[tokio::test]
async fn overflow_drops_oldest_and_warns_once() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let cert = make_cert();
    let reserved = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);

    let mut config = fast_config(&tunnel_url(addr), &cert);
    config.buffer_max_frames = 5;
    let mut running = Running::start(config, MAX_LINK_MTU).await;
    let sent: Vec<Vec<u8>> = (0..12).map(|i| test_frame(i, 50)).collect();
    for frame in &sent {
        running.device.send_frame(frame).await.expect("send");
    }
    let stats = Arc::clone(running.relay.stats());
    wait_until("frames received", || {
        stats.snapshot().frames_from_device == 12
    })
    .await;

    assert_eq!(running.relay.buffered_frames_snapshot(), sent[7..].to_vec());
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.frames_dropped_overflow, 7);
    assert_eq!(snapshot.frames_buffered, 5);
    let warnings = logs.contents().matches("relay buffer full").count();
    assert_eq!(warnings, 1, "overflow warnings in:\n{}", logs.contents());

    let listener = TcpListener::bind(addr).await.expect("rebind");
    let mut cloud = TestCloud::serve(listener, &cert, false);
    assert_eq!(cloud.recv_frames(5).await, sent[7..].to_vec());
    running.stop().await;
}

#[tokio::test]
async fn logs_never_contain_frame_bytes() {
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let cert = make_cert();
    let mut cloud = TestCloud::start(&cert, true).await;
    let mut running = Running::start(fast_config(&cloud.url, &cert), MIN_LINK_MTU).await;

    let marker = b"MARKER-glucose-123-mg/dL".to_vec();
    running.device.send_frame(&marker).await.expect("send");
    assert_eq!(cloud.recv_frames(1).await, vec![marker.clone()]);
    assert_eq!(device_recv(&mut running.device).await, marker);
    running.stop().await;

    let text = logs.contents();
    assert!(text.contains("relay started"), "no start log:\n{text}");
    assert!(text.contains("relay stopped"), "no stop log:\n{text}");
    assert!(!text.contains("MARKER"), "frame bytes in logs");
    let hex: String = marker.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&hex[..16]), "frame bytes as hex in logs");
    let decimal = format!("{:?}", &marker[..6]);
    assert!(
        !text.contains(&decimal[1..decimal.len() - 1]),
        "frame bytes as list in logs"
    );
}
