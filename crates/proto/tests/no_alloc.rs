//! The device side makes no heap allocation: a counting global allocator records every
//! allocation made on the test thread while device code runs, through handshakes,
//! rekeys, 10,000 data messages with acknowledgements and data from the cloud.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use medtunnel_proto::channel::{CloudChannel, DeviceChannel, DeviceResume};
use medtunnel_proto::crypto::{CryptoProvider, RustCrypto, SecretKey, SymmetricKey};
use medtunnel_proto::handshake::{CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::queue::RetransmitQueue;
use medtunnel_proto::stream::StreamState;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::MAX_FRAME_LEN;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// System allocator that counts, per thread, the allocations made while [`COUNTING`] is
/// on for that thread, so tests running in parallel do not see each other's counts.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_allocation() {
    // `try_with` fails only while the thread is being torn down, when nothing is counted.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is met as it is for `System`. Counting does not touch the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded from the caller, who upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded from the caller, who upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: forwarded from the caller, who upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller, who upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` with allocation counting on for this thread.
fn on_device<T>(f: impl FnOnce() -> T) -> T {
    COUNTING.with(|counting| counting.set(true));
    let result = f();
    COUNTING.with(|counting| counting.set(false));
    result
}

const DATA_MESSAGES: u64 = 10_000;
/// A message from the cloud after every this many device messages.
const CLOUD_MESSAGE_EVERY: u64 = 10;
/// The device rekeys after this many messages under one key, so the run covers rekeys.
const REKEY_AFTER_MESSAGES: u64 = 2_500;

struct Cloud {
    channel: CloudChannel<RustCrypto>,
    keys: CloudKeys,
    peer: PeerKeys,
    last_counter: Option<u32>,
    rng: StdRng,
}

impl Cloud {
    fn answer(&mut self, now_ms: u64, initiation: &[u8], out: &mut [u8]) -> usize {
        let accepted = self
            .channel
            .accept_initiation(
                now_ms,
                &self.keys,
                &self.peer,
                initiation,
                self.last_counter,
                &mut self.rng,
                out,
            )
            .expect("cloud accepts the initiation");
        self.last_counter = Some(accepted.counter);
        accepted.len
    }
}

fn setup() -> (DeviceChannel<RustCrypto>, Cloud) {
    let provider = RustCrypto;
    let cloud_secret = SecretKey::from_bytes([0x41; 32]);
    let keys = CloudKeys::new(&provider, 3, cloud_secret);
    let device_secret = SecretKey::from_bytes([0x42; 32]);
    let device_public = provider.x25519_public(&device_secret);
    let psk = [0x43; 32];
    let peer = PeerKeys::new(
        &provider,
        &keys.static_secret,
        9,
        3,
        device_public,
        SymmetricKey::from_bytes(psk),
    )
    .expect("valid device key");
    let device_keys = DeviceKeys::new(
        &provider,
        9,
        3,
        device_secret,
        keys.static_public,
        SymmetricKey::from_bytes(psk),
    );
    let limits = Limits {
        rekey_after_messages: REKEY_AFTER_MESSAGES,
        ..Limits::default()
    };
    let device = DeviceChannel::new(provider, device_keys, limits, DeviceResume::default());
    let cloud = Cloud {
        channel: CloudChannel::new(provider, 9, limits, StreamState::default()),
        keys,
        peer,
        last_counter: None,
        rng: StdRng::seed_from_u64(2),
    };
    (device, cloud)
}

#[test]
fn device_side_never_allocates() {
    let (mut device, mut cloud) = setup();
    let mut device_rng = StdRng::seed_from_u64(1);
    let mut queue: RetransmitQueue<8, 64> = RetransmitQueue::new();
    let mut frame = [0u8; MAX_FRAME_LEN];
    let mut reply = [0u8; MAX_FRAME_LEN];
    let mut handshakes = 0;
    let mut delivered_to_cloud = 0;
    let mut delivered_to_device = 0;

    for index in 0..DATA_MESSAGES {
        let now_ms = index;

        // 1. Handshake at the start and whenever the keys reach their limit.
        if on_device(|| !device.is_established() || device.needs_rekey(now_ms)) {
            let initiation = on_device(|| device.start_handshake(&mut device_rng, &mut frame))
                .expect("device starts a handshake");
            let len = cloud.answer(now_ms, &frame[..initiation.len], &mut reply);
            let incoming = on_device(|| device.handle_frame(now_ms, &mut reply[..len]))
                .expect("device completes the handshake");
            assert!(incoming.handshake_completed);
            let len = on_device(|| device.send_ack(now_ms, &mut frame)).expect("device seals");
            cloud
                .channel
                .handle_frame(now_ms, &mut frame[..len])
                .expect("cloud confirms the keys");
            handshakes += 1;
        }

        // 2. A data message from the device, kept until acknowledged.
        let mut payload = [0u8; 24];
        payload[..8].copy_from_slice(&index.to_le_bytes());
        let sent = on_device(|| {
            let sent = device.send(now_ms, &payload, &mut frame)?;
            queue.push(sent.seq, &payload)?;
            Ok::<_, medtunnel_proto::error::Error>(sent)
        })
        .expect("device sends");
        let incoming = cloud
            .channel
            .handle_frame(now_ms, &mut frame[..sent.len])
            .expect("cloud opens");
        let (seq, data) = incoming.data.expect("data in order");
        assert_eq!(data, &payload[..]);
        cloud.channel.acknowledge(seq + 1);
        delivered_to_cloud += 1;

        // 3. The cloud's acknowledgement, or now and then a message that carries it.
        let len = if index % CLOUD_MESSAGE_EVERY == 0 {
            cloud
                .channel
                .send(now_ms, b"set basal 0.8", &mut reply)
                .expect("cloud sends")
                .len
        } else {
            cloud
                .channel
                .send_ack(now_ms, &mut reply)
                .expect("cloud acknowledges")
        };
        let got_data = on_device(|| {
            let incoming = device.handle_frame(now_ms, &mut reply[..len])?;
            if let Some(acked) = incoming.acked {
                queue.release_below(acked);
            }
            let data = incoming.data.map(|(seq, _)| seq);
            if let Some(seq) = data {
                device.acknowledge(seq + 1);
            }
            Ok::<_, medtunnel_proto::error::Error>(data.is_some())
        })
        .expect("device opens the cloud's frame");
        if got_data {
            delivered_to_device += 1;
            let len = on_device(|| device.send_ack(now_ms, &mut frame)).expect("device seals");
            cloud
                .channel
                .handle_frame(now_ms, &mut frame[..len])
                .expect("cloud opens");
        }
        assert!(queue.is_empty());
    }

    assert_eq!(allocations(), 0, "heap allocations on the device side");
    assert_eq!(delivered_to_cloud, DATA_MESSAGES);
    assert_eq!(delivered_to_device, DATA_MESSAGES / CLOUD_MESSAGE_EVERY);
    assert!(handshakes >= 5, "{handshakes} handshakes");
}

#[test]
fn counting_allocator_detects_allocation() {
    let vector = on_device(|| std::hint::black_box(vec![1u8; 16]));
    assert_eq!(allocations(), 1);
    drop(vector);
}
