//! Emulated Bluetooth LE link: packet limits and frame round trips.

mod support;

use medtunnel_proto::fragment::{MAX_LINK_MTU, MIN_LINK_MTU};
use medtunnel_relay::{BleError, BleLink, MAX_FRAME_LEN};
use support::{ble_pair, device_pair, test_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn packet_round_trip_up_to_mtu() {
    let (mut device, mut relay_side) = ble_pair(MIN_LINK_MTU).await;
    for len in [1, 2, MIN_LINK_MTU - 1, MIN_LINK_MTU] {
        let packet = test_frame(len as u8, len);
        device.send_packet(&packet).await.expect("send");
        let received = relay_side.recv_packet().await.expect("recv");
        assert_eq!(received, Some(packet), "packet of {len} bytes");
    }
}

#[tokio::test]
async fn send_rejects_packet_above_mtu() {
    let (mut device, _relay_side) = ble_pair(MIN_LINK_MTU).await;
    let result = device.send_packet(&[0; MIN_LINK_MTU + 1]).await;
    assert!(matches!(
        result,
        Err(BleError::InvalidPacketLength { len, mtu }) if len == MIN_LINK_MTU + 1 && mtu == MIN_LINK_MTU
    ));
}

#[tokio::test]
async fn send_rejects_empty_packet() {
    let (mut device, _relay_side) = ble_pair(MIN_LINK_MTU).await;
    let result = device.send_packet(&[]).await;
    assert!(matches!(
        result,
        Err(BleError::InvalidPacketLength { len: 0, .. })
    ));
}

#[tokio::test]
async fn mtu_outside_range_is_rejected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    for mtu in [0, MIN_LINK_MTU - 1, MAX_LINK_MTU + 1] {
        let result = BleLink::connect(addr, mtu).await;
        assert!(matches!(result, Err(BleError::InvalidMtu { mtu: m }) if m == mtu));
    }
}

#[tokio::test]
async fn connect_rejects_non_loopback_address() {
    let addr = "192.0.2.1:9".parse().expect("addr");
    let result = BleLink::connect(addr, MIN_LINK_MTU).await;
    assert!(matches!(result, Err(BleError::NotLoopback { .. })));
}

/// Opens a raw TCP peer and the link end that receives from it.
async fn raw_peer(mtu: usize) -> (TcpStream, BleLink) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (raw, link) = tokio::join!(TcpStream::connect(addr), BleLink::accept(&listener, mtu));
    (raw.expect("connect"), link.expect("accept"))
}

#[tokio::test]
async fn zero_length_prefix_closes_link() {
    let (mut raw, mut link) = raw_peer(MIN_LINK_MTU).await;
    raw.write_all(&[0, 1, 2]).await.expect("write");
    let result = link.recv_packet().await;
    assert!(matches!(
        result,
        Err(BleError::PeerPacketLength { len: 0, .. })
    ));
    assert_eq!(link.recv_packet().await.expect("closed"), None);
}

#[tokio::test]
async fn length_prefix_above_mtu_closes_link() {
    let (mut raw, mut link) = raw_peer(MIN_LINK_MTU).await;
    let len = MIN_LINK_MTU as u8 + 1;
    raw.write_all(&[len]).await.expect("write");
    let result = link.recv_packet().await;
    assert!(
        matches!(result, Err(BleError::PeerPacketLength { len: l, mtu }) if l == usize::from(len) && mtu == MIN_LINK_MTU)
    );
    assert_eq!(link.recv_packet().await.expect("closed"), None);
}

#[tokio::test]
async fn close_inside_packet_is_truncation() {
    let (mut raw, mut link) = raw_peer(MIN_LINK_MTU).await;
    raw.write_all(&[5, 1, 2]).await.expect("write");
    drop(raw);
    let result = link.recv_packet().await;
    assert!(matches!(
        result,
        Err(BleError::TruncatedPacket { missing: 3 })
    ));
}

#[tokio::test]
async fn clean_close_returns_none() {
    let (device, mut relay_side) = ble_pair(MIN_LINK_MTU).await;
    drop(device);
    assert_eq!(relay_side.recv_packet().await.expect("recv"), None);
}

#[tokio::test]
async fn packets_split_across_reads_arrive_whole() {
    let (mut raw, mut link) = raw_peer(MIN_LINK_MTU).await;
    raw.write_all(&[3, 7]).await.expect("write");
    raw.flush().await.expect("flush");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    raw.write_all(&[8, 9, 1, 4]).await.expect("write");
    assert_eq!(link.recv_packet().await.expect("recv"), Some(vec![7, 8, 9]));
    assert_eq!(link.recv_packet().await.expect("recv"), Some(vec![4]));
}

async fn frame_round_trip(mtu: usize) {
    let (mut device, mut relay_side) = device_pair(mtu).await;
    let lengths = [
        1,
        2,
        mtu - 3,
        mtu - 2,
        mtu - 1,
        mtu,
        2 * mtu,
        500,
        MAX_FRAME_LEN - 1,
        MAX_FRAME_LEN,
    ];
    // 300 frames also wrap the 8-bit message id.
    for round in 0..30u8 {
        for &len in &lengths {
            let frame = test_frame(round, len);
            device.send_frame(&frame).await.expect("send");
            let received = relay_side.recv_frame().await.expect("recv");
            assert_eq!(
                received.as_deref(),
                Some(&frame[..]),
                "mtu {mtu}, frame of {len} bytes"
            );
        }
    }
    assert_eq!(relay_side.fragments_rejected(), 0);
}

#[tokio::test]
async fn frame_round_trip_at_min_mtu() {
    frame_round_trip(MIN_LINK_MTU).await;
}

#[tokio::test]
async fn frame_round_trip_at_max_mtu() {
    frame_round_trip(MAX_LINK_MTU).await;
}

#[tokio::test]
async fn send_frame_rejects_invalid_lengths() {
    let (mut device, _relay_side) = device_pair(MIN_LINK_MTU).await;
    for len in [0, MAX_FRAME_LEN + 1] {
        let result = device.send_frame(&vec![1; len]).await;
        assert!(matches!(result, Err(BleError::InvalidFrameLength { len: l, .. }) if l == len));
    }
}

#[tokio::test]
async fn rejected_fragments_are_counted_and_skipped() {
    let (mut device, relay_side) = ble_pair(MIN_LINK_MTU).await;
    let mut relay_side = medtunnel_relay::FrameLink::new(relay_side);
    // Index 1 with no message in progress, then a header-only packet.
    device.send_packet(&[9, 0x81, 1, 2]).await.expect("send");
    device.send_packet(&[9, 0x80]).await.expect("send");
    // A valid one-fragment message afterwards still arrives.
    device
        .send_packet(&[10, 0x80, 5, 6, 7])
        .await
        .expect("send");
    let frame = relay_side.recv_frame().await.expect("recv");
    assert_eq!(frame, Some(vec![5, 6, 7]));
    assert_eq!(relay_side.fragments_rejected(), 2);
}
