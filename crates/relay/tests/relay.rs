//! Relay against a WebSocket-over-TLS cloud stand-in on loopback.

mod support;

use std::sync::Arc;
use std::time::Duration;

use medtunnel_proto::fragment::{MAX_LINK_MTU, MIN_LINK_MTU};
use medtunnel_relay::{
    CloudError, Direction, FaultConfig, FaultKind, Relay, RelayConfig, RelayError, StopReason,
    MAX_FRAME_LEN,
};
use support::{
    device_recv, fast_config, make_cert, test_frame, tunnel_url, wait_until, Running, TestCloud,
    WAIT,
};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn frames_pass_unchanged_both_ways() {
    let cert = make_cert();
    for mtu in [MIN_LINK_MTU, MAX_LINK_MTU] {
        let mut cloud = TestCloud::start(&cert, true).await;
        let mut running = Running::start(fast_config(&cloud.url, &cert), mtu).await;
        for (i, len) in [1, 20, 243, 244, 500, MAX_FRAME_LEN]
            .into_iter()
            .enumerate()
        {
            let frame = test_frame(i as u8, len);
            running
                .device
                .send_frame(&frame)
                .await
                .expect("device send");
            assert_eq!(
                cloud.recv_frames(1).await,
                vec![frame.clone()],
                "upstream, mtu {mtu}"
            );
            assert_eq!(
                device_recv(&mut running.device).await,
                frame,
                "echo, mtu {mtu}"
            );
        }
        let stats = running.relay.stats().snapshot();
        assert_eq!(stats.frames_from_device, 6);
        assert_eq!(stats.frames_to_cloud, 6);
        assert_eq!(stats.frames_from_cloud, 6);
        assert_eq!(stats.frames_to_device, 6);
        assert_eq!(stats.cloud_connects, 1);
        assert_eq!(running.stop().await, StopReason::Shutdown);
    }
}

#[tokio::test]
async fn device_close_stops_relay() {
    let cert = make_cert();
    let cloud = TestCloud::start(&cert, false).await;
    let running = Running::start(fast_config(&cloud.url, &cert), MIN_LINK_MTU).await;
    drop(running.device);
    let reason = tokio::time::timeout(WAIT, running.task)
        .await
        .expect("in time");
    assert_eq!(
        reason.expect("no panic").expect("no error"),
        StopReason::DeviceClosed
    );
}

#[tokio::test]
async fn cloud_down_then_up_delivers_in_order() {
    let cert = make_cert();
    let reserved = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);

    let mut running = Running::start(fast_config(&tunnel_url(addr), &cert), MIN_LINK_MTU).await;
    let sent: Vec<Vec<u8>> = (0..20)
        .map(|i| test_frame(i, 100 + usize::from(i)))
        .collect();
    for frame in &sent {
        running.device.send_frame(frame).await.expect("device send");
    }
    let stats = Arc::clone(running.relay.stats());
    wait_until("frames buffered", || stats.snapshot().frames_buffered == 20).await;
    wait_until("a failed connect", || {
        stats.snapshot().connect_failures >= 1
    })
    .await;
    assert_eq!(running.relay.buffered_frames_snapshot(), sent);

    let listener = TcpListener::bind(addr).await.expect("rebind reserved port");
    let mut cloud = TestCloud::serve(listener, &cert, false);
    assert_eq!(cloud.recv_frames(20).await, sent);

    let stats = stats.snapshot();
    assert_eq!(stats.frames_buffered, 0);
    assert_eq!(stats.frames_to_cloud, 20);
    assert_eq!(stats.reconnects, 1);
    assert!(running.relay.buffered_frames_snapshot().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn cloud_drop_reconnects_and_resumes() {
    let cert = make_cert();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut cloud = TestCloud::serve(listener, &cert, false);
    let mut running = Running::start(fast_config(&cloud.url, &cert), MIN_LINK_MTU).await;
    running.device.send_frame(b"before").await.expect("send");
    assert_eq!(cloud.recv_frames(1).await, vec![b"before".to_vec()]);

    drop(cloud);
    let stats = Arc::clone(running.relay.stats());
    wait_until("disconnect noticed", || stats.snapshot().disconnects == 1).await;
    running.device.send_frame(b"during").await.expect("send");

    let listener = TcpListener::bind(addr).await.expect("rebind");
    let mut cloud = TestCloud::serve(listener, &cert, false);
    assert_eq!(cloud.recv_frames(1).await, vec![b"during".to_vec()]);
    assert_eq!(stats.snapshot().reconnects, 1);
    running.stop().await;
}

#[tokio::test]
async fn byte_limit_drops_oldest() {
    let cert = make_cert();
    let reserved = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = reserved.local_addr().expect("addr");
    drop(reserved);

    let mut config = fast_config(&tunnel_url(addr), &cert);
    config.buffer_max_bytes = 2 * MAX_FRAME_LEN;
    let mut running = Running::start(config, MAX_LINK_MTU).await;
    for i in 0..4 {
        let frame = test_frame(i, MAX_FRAME_LEN);
        running.device.send_frame(&frame).await.expect("send");
    }
    let stats = Arc::clone(running.relay.stats());
    wait_until("frames received", || {
        stats.snapshot().frames_from_device == 4
    })
    .await;
    let buffered = running.relay.buffered_frames_snapshot();
    assert_eq!(
        buffered,
        vec![test_frame(2, MAX_FRAME_LEN), test_frame(3, MAX_FRAME_LEN)]
    );
    assert_eq!(stats.snapshot().frames_dropped_overflow, 2);
    assert_eq!(stats.snapshot().bytes_buffered, 2 * MAX_FRAME_LEN as u64);
    running.stop().await;
}

#[tokio::test]
async fn upstream_faults_then_switched_off() {
    let cert = make_cert();
    let mut cloud = TestCloud::start(&cert, false).await;
    let mut config = fast_config(&cloud.url, &cert);
    let mut faults = FaultConfig::none(99).with(FaultKind::FlipBits, 1.0);
    faults.direction = Direction::Upstream;
    config.faults = Some(faults);
    let mut running = Running::start(config, MIN_LINK_MTU).await;

    for i in 0..5 {
        let frame = test_frame(i, 64);
        running.device.send_frame(&frame).await.expect("send");
        let received = cloud.recv_frames(1).await.remove(0);
        assert_eq!(received.len(), frame.len());
        assert_ne!(received, frame, "frame {i} reached the cloud unchanged");
    }
    assert_eq!(
        running.relay.stats().snapshot().faults(FaultKind::FlipBits),
        5
    );

    running.relay.fault_handle().set_enabled(false);
    for i in 5..10 {
        let frame = test_frame(i, 64);
        running.device.send_frame(&frame).await.expect("send");
        assert_eq!(cloud.recv_frames(1).await, vec![frame]);
    }
    assert_eq!(
        running.relay.stats().snapshot().faults(FaultKind::FlipBits),
        5
    );
    running.stop().await;
}

#[tokio::test]
async fn each_fault_kind_applies_upstream() {
    let cert = make_cert();
    for kind in FaultKind::ALL {
        let mut cloud = TestCloud::start(&cert, false).await;
        let mut config = fast_config(&cloud.url, &cert);
        let mut faults = FaultConfig::none(5).with(kind, 1.0);
        faults.direction = Direction::Upstream;
        faults.delay = Duration::from_millis(50);
        config.faults = Some(faults);
        let mut running = Running::start(config, MIN_LINK_MTU).await;

        let first = test_frame(1, 40);
        let second = test_frame(2, 40);
        running.device.send_frame(&first).await.expect("send");
        running.device.send_frame(&second).await.expect("send");
        let stats = Arc::clone(running.relay.stats());
        wait_until("frames received", || {
            stats.snapshot().frames_from_device == 2
        })
        .await;

        match kind {
            FaultKind::Drop => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(cloud.received.try_recv().is_err(), "dropped frame arrived");
            }
            FaultKind::Duplicate => {
                let expected = vec![first.clone(), first.clone(), second.clone(), second.clone()];
                assert_eq!(cloud.recv_frames(4).await, expected);
            }
            FaultKind::Reorder => {
                assert_eq!(
                    cloud.recv_frames(2).await,
                    vec![second.clone(), first.clone()]
                );
            }
            FaultKind::Delay => {
                assert_eq!(
                    cloud.recv_frames(2).await,
                    vec![first.clone(), second.clone()]
                );
            }
            FaultKind::Truncate => {
                let received = cloud.recv_frames(2).await;
                assert!(received[0].len() < first.len() && first.starts_with(&received[0]));
                assert!(received[1].len() < second.len() && second.starts_with(&received[1]));
            }
            FaultKind::FlipBits => {
                let received = cloud.recv_frames(2).await;
                assert_ne!(received[0], first);
                assert_ne!(received[1], second);
            }
            FaultKind::Replay => {
                assert_eq!(
                    cloud.recv_frames(3).await,
                    vec![first.clone(), second.clone(), first.clone()]
                );
            }
        }
        let expected_count = match kind {
            FaultKind::Reorder => 1,
            FaultKind::Replay => 1,
            _ => 2,
        };
        assert_eq!(
            stats.snapshot().faults(kind),
            expected_count,
            "count of {kind}"
        );
        running.stop().await;
    }
}

#[tokio::test]
async fn downstream_drop_leaves_upstream_alone() {
    let cert = make_cert();
    let mut cloud = TestCloud::start(&cert, false).await;
    let mut config = fast_config(&cloud.url, &cert);
    let mut faults = FaultConfig::none(1).with(FaultKind::Drop, 1.0);
    faults.direction = Direction::Downstream;
    config.faults = Some(faults);
    let mut running = Running::start(config, MIN_LINK_MTU).await;

    running.device.send_frame(b"up").await.expect("send");
    assert_eq!(cloud.recv_frames(1).await, vec![b"up".to_vec()]);
    cloud
        .outgoing
        .send(Message::binary(b"down".to_vec()))
        .expect("queue");
    let stats = Arc::clone(running.relay.stats());
    wait_until("cloud frame", || stats.snapshot().frames_from_cloud == 1).await;
    assert_eq!(stats.snapshot().frames_to_device, 0);
    assert_eq!(stats.snapshot().faults(FaultKind::Drop), 1);

    running.relay.fault_handle().set_enabled(false);
    cloud
        .outgoing
        .send(Message::binary(b"down again".to_vec()))
        .expect("queue");
    assert_eq!(device_recv(&mut running.device).await, b"down again");
    running.stop().await;
}

#[tokio::test]
async fn text_and_oversized_messages_are_ignored() {
    let cert = make_cert();
    let cloud = TestCloud::start(&cert, false).await;
    let mut running = Running::start(fast_config(&cloud.url, &cert), MIN_LINK_MTU).await;
    let stats = Arc::clone(running.relay.stats());
    wait_until("connected", || stats.snapshot().cloud_connects == 1).await;

    cloud.outgoing.send(Message::text("hello")).expect("queue");
    cloud
        .outgoing
        .send(Message::binary(vec![0; MAX_FRAME_LEN + 1]))
        .expect("queue");
    cloud
        .outgoing
        .send(Message::binary(b"valid".to_vec()))
        .expect("queue");
    assert_eq!(device_recv(&mut running.device).await, b"valid");
    assert_eq!(stats.snapshot().cloud_messages_ignored, 2);
    assert_eq!(stats.snapshot().frames_from_cloud, 1);
    running.stop().await;
}

#[tokio::test]
async fn non_loopback_url_is_rejected() {
    let cert = make_cert();
    for url in [
        "wss://192.0.2.10:8443/tunnel",
        "wss://example.com/tunnel",
        "wss://10.0.0.1/t",
    ] {
        let error = Relay::new(RelayConfig::new(url, cert.ca.clone())).expect_err("rejected");
        assert!(
            matches!(error, RelayError::Cloud(CloudError::NotLoopback { .. })),
            "{url}: {error}"
        );
        assert!(error.to_string().contains("not a loopback host"), "{error}");
    }
}

#[tokio::test]
async fn invalid_url_and_ca_are_rejected() {
    let cert = make_cert();
    let plain = Relay::new(RelayConfig::new("ws://127.0.0.1:1/tunnel", cert.ca.clone()));
    assert!(matches!(
        plain,
        Err(RelayError::Cloud(CloudError::InvalidUrl { .. }))
    ));
    let no_cert = medtunnel_relay::CaCertificate::Pem(b"not a certificate".to_vec());
    let bad_ca = Relay::new(RelayConfig::new("wss://127.0.0.1:1/tunnel", no_cert));
    assert!(matches!(
        bad_ca,
        Err(RelayError::Cloud(CloudError::InvalidCa { .. }))
    ));
}

#[tokio::test]
async fn untrusted_server_certificate_fails_connect() {
    let served = make_cert();
    let other = make_cert();
    let cloud = TestCloud::start(&served, false).await;
    let mut running = Running::start(fast_config(&cloud.url, &other), MIN_LINK_MTU).await;
    running.device.send_frame(b"kept").await.expect("send");
    let stats = Arc::clone(running.relay.stats());
    wait_until("failed connect", || stats.snapshot().connect_failures >= 2).await;
    assert_eq!(stats.snapshot().cloud_connects, 0);
    assert_eq!(
        running.relay.buffered_frames_snapshot(),
        vec![b"kept".to_vec()]
    );
    running.stop().await;
}
