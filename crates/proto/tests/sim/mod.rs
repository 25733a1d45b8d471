//! Deterministic two-party simulator: a device and a cloud channel joined by a lossy link
//! that fragments every frame as Bluetooth LE does, with a scripted relay in between, all
//! driven by a virtual clock in milliseconds.
//!
//! Every random choice of the link comes from one `StdRng` seeded from the scenario's
//! seed, and the two endpoints draw their ephemeral keys from RNGs seeded from the same
//! seed, so a scenario runs identically every time.
//!
//! The device application keeps unacknowledged messages in a [`RetransmitQueue`],
//! resends them after a reconnect and after a retransmission timeout, sends heartbeats,
//! rekeys when `needs_rekey` returns true and retries a handshake after a timeout with
//! exponential backoff. The cloud application stores every delivered message in a `Vec`
//! and acknowledges it afterwards. Both count every event and every rejected frame.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::rc::Rc;

use medtunnel_proto::channel::{CloudChannel, DeviceChannel, DeviceResume, Sent};
use medtunnel_proto::crypto::{
    Cipher, CryptoError, CryptoProvider, PublicKey, RustCrypto, SecretKey, SharedSecret,
    SymmetricKey, HASH_LEN, KEY_LEN, MAC_LEN, TAG_LEN,
};
use medtunnel_proto::error::Error;
use medtunnel_proto::fragment::{Fragmenter, Reassembler};
use medtunnel_proto::handshake::{CloudKeys, DeviceKeys, PeerKeys};
use medtunnel_proto::queue::RetransmitQueue;
use medtunnel_proto::record;
use medtunnel_proto::stream::{Incoming, StreamState};
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::{self, FrameKind, MAX_FRAME_LEN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Key id of the simulated device.
pub const DEVICE_KEY_ID: u32 = 42;
/// Id of the cloud static key.
pub const CLOUD_KEY_ID: u32 = 7;
const CLOUD_SECRET: [u8; 32] = [0x11; 32];
const DEVICE_SECRET: [u8; 32] = [0x22; 32];
const PSK: [u8; 32] = [0x33; 32];

/// Maximum step of the virtual clock when no packet is due earlier, in ms.
const TICK_MS: u64 = 5;
/// Time without acknowledgement progress after which a sender resends its queue, in ms.
pub const RETRANSMISSION_TIMEOUT_MS: u64 = 400;
/// Silence after which the device sends an acknowledgement as a heartbeat, in ms.
pub const HEARTBEAT_MS: u64 = 1_000;
/// Wait for a handshake response before the first retry, in ms. It doubles per retry.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 500;
/// Maximum wait between handshake retries, in ms.
pub const MAX_HANDSHAKE_BACKOFF_MS: u64 = 8_000;
/// Maximum number of unacknowledged messages per side.
pub const QUEUE_SLOTS: usize = 16;
/// Length of a transport frame whose record has the smallest padding bucket, in bytes.
const SHORT_TRANSPORT_LEN: usize = wire::TRANSPORT_OVERHEAD + record::BUCKETS[0];
/// Largest application payload the simulation produces, in bytes.
pub const MAX_PAYLOAD_LEN: usize = 200;

// ---------------------------------------------------------------------------------------
// Scenario setup
// ---------------------------------------------------------------------------------------

/// Knobs of the link between the two parties. Probabilities apply per frame, except
/// corruption, which flips one bit of one fragment.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Bluetooth LE packet size in bytes, 20..=244.
    pub mtu: usize,
    /// One-way delay in ms.
    pub latency_ms: u64,
    /// Extra one-way delay in ms, uniform in `0..=jitter_ms`. Frames keep their order.
    pub jitter_ms: u64,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame arrives twice.
    pub duplicate: f64,
    /// Probability that a frame is delayed by up to `reorder_delay_ms`, so later frames
    /// overtake it.
    pub reorder: f64,
    /// Maximum extra delay of a reordered frame in ms.
    pub reorder_delay_ms: u64,
    /// Probability that one bit of one fragment of a frame flips.
    pub corrupt: f64,
}

impl LinkConfig {
    /// Creates a link that only delays, with packets of `mtu` bytes.
    pub fn clean(mtu: usize) -> Self {
        LinkConfig {
            mtu,
            latency_ms: 20,
            jitter_ms: 0,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ms: 0,
            corrupt: 0.0,
        }
    }
}

/// Setup of one simulation: seed, link, key limits and message counts.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Seed of every random choice.
    pub seed: u64,
    /// Link knobs.
    pub link: LinkConfig,
    /// Key limits of both channels.
    pub limits: Limits,
    /// Messages the device application produces.
    pub device_messages: u64,
    /// Messages the cloud application produces.
    pub cloud_messages: u64,
    /// Time between two messages of one application in ms. With 0, all are ready at once.
    pub interval_ms: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            link: LinkConfig::clean(244),
            limits: Limits::default(),
            device_messages: 0,
            cloud_messages: 0,
            interval_ms: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Simulator
// ---------------------------------------------------------------------------------------

/// Direction of a frame on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the device to the cloud.
    ToCloud,
    /// From the cloud to the device.
    ToDevice,
}

impl Direction {
    fn reverse(self) -> Self {
        match self {
            Direction::ToCloud => Direction::ToDevice,
            Direction::ToDevice => Direction::ToCloud,
        }
    }
}

/// Counters of the link and the relay.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Frames handed to the link.
    pub frames_sent: u64,
    /// Frames the random loss knob dropped.
    pub frames_lost: u64,
    /// Frames dropped because they were sent during a partition.
    pub partition_drops: u64,
    /// Packets the receiving reassembler rejected.
    pub fragments_rejected: u64,
    /// Frames a scripted relay action changed, held, dropped, copied or injected.
    pub relay_actions: u64,
}

/// Device, cloud, link and relay, at one point of virtual time.
pub struct Sim {
    /// Virtual time in ms.
    pub now_ms: u64,
    /// Device application and channel.
    pub device: Device,
    /// Cloud application and channel.
    pub cloud: Cloud,
    /// Scripted relay actions.
    pub relay: Relay,
    /// Link knobs, which a scenario may change between runs.
    pub link: LinkConfig,
    /// Link counters.
    pub link_stats: LinkStats,
    rng: StdRng,
    provider: Recording,
    limits: Limits,
    to_cloud: Lane,
    to_device: Lane,
    next_order: u64,
    injections: Vec<(u64, Direction, Vec<u8>)>,
    partitions: Vec<(u64, u64)>,
}

impl Sim {
    /// Sets up both parties with nothing sent yet.
    pub fn new(scenario: Scenario) -> Self {
        let provider = Recording::default();
        let device_rng = StdRng::seed_from_u64(scenario.seed ^ 0xde_71ce);
        let cloud_rng = StdRng::seed_from_u64(scenario.seed ^ 0xc1_0d);
        let device_outbox = Outbox::new(0xd0, scenario.device_messages, scenario.interval_ms);
        let cloud_outbox = Outbox::new(0xc0, scenario.cloud_messages, scenario.interval_ms);
        Sim {
            now_ms: 0,
            device: Device::new(
                provider.clone(),
                scenario.limits,
                DeviceResume::default(),
                device_rng,
                device_outbox,
            ),
            cloud: Cloud::new(provider.clone(), scenario.limits, cloud_rng, cloud_outbox),
            relay: Relay::default(),
            link: scenario.link,
            link_stats: LinkStats::default(),
            rng: StdRng::seed_from_u64(scenario.seed),
            provider,
            limits: scenario.limits,
            to_cloud: Lane::new(),
            to_device: Lane::new(),
            next_order: 0,
            injections: Vec::new(),
            partitions: Vec::new(),
        }
    }

    /// Runs until `condition` holds or the clock reaches `limit_ms`. Returns whether the
    /// condition held.
    pub fn run_until(&mut self, limit_ms: u64, condition: impl Fn(&Sim) -> bool) -> bool {
        while self.now_ms < limit_ms {
            if condition(self) {
                return true;
            }
            self.step();
        }
        condition(self)
    }

    /// Runs until both applications sent every message and got it acknowledged.
    pub fn run_until_delivered(&mut self, limit_ms: u64) -> bool {
        self.run_until(limit_ms, |sim| {
            sim.device.outbox.is_done() && sim.cloud.outbox.is_done()
        })
    }

    /// Runs for `duration_ms` of virtual time.
    pub fn run_for(&mut self, duration_ms: u64) {
        let end = self.now_ms + duration_ms;
        self.run_until(end, |_| false);
    }

    /// Drops every frame sent in `from_ms..to_ms`, in both directions.
    pub fn partition(&mut self, from_ms: u64, to_ms: u64) {
        self.partitions.push((from_ms, to_ms));
    }

    /// Sends `frame` from the relay at `at_ms`, fragmented like any other frame.
    pub fn inject(&mut self, at_ms: u64, direction: Direction, frame: Vec<u8>) {
        self.injections.push((at_ms, direction, frame));
    }

    /// Reboots the device: a new channel from the persisted resume state, with the
    /// retransmission queue kept or lost. The cloud keeps its state.
    pub fn reboot_device(&mut self, keep_queue: bool) {
        let resume = self.device.persisted;
        let rng = StdRng::seed_from_u64(self.rng.gen());
        let mut outbox = std::mem::replace(&mut self.device.outbox, Outbox::new(0, 0, 0));
        if !keep_queue {
            outbox.queue = RetransmitQueue::new();
        }
        let received = std::mem::take(&mut self.device.received);
        let stats = std::mem::take(&mut self.device.stats);
        self.device = Device::new(self.provider.clone(), self.limits, resume, rng, outbox);
        if !keep_queue {
            self.device.channel.abandon_before(resume.stream.tx_next);
        }
        self.device.received = received;
        self.device.stats = stats;
        self.to_device.reassembler.reset();
    }

    /// Number of (key, nonce) pairs sealed more than once in the whole run.
    pub fn nonce_reuses(&self) -> u64 {
        self.provider.log.borrow().reuses
    }

    /// Number of distinct (key, nonce) pairs sealed in the whole run.
    pub fn sealed_pairs(&self) -> usize {
        self.provider.log.borrow().pairs.len()
    }

    /// Asserts that the cloud stored every device message exactly once and in order, and
    /// the device every cloud message.
    pub fn assert_delivered_in_order(&self) {
        assert_messages(&self.cloud.stored, &self.device.outbox, &[]);
        assert_messages(&self.device.received, &self.cloud.outbox, &[]);
    }

    fn step(&mut self) {
        self.release_injections();
        self.deliver_due(Direction::ToCloud);
        self.deliver_due(Direction::ToDevice);
        let mut frames = Vec::new();
        self.device.poll(self.now_ms, &mut frames);
        self.transmit_all(Direction::ToCloud, frames);
        let mut frames = Vec::new();
        self.cloud.poll(self.now_ms, &mut frames);
        self.transmit_all(Direction::ToDevice, frames);
        self.advance_clock();
    }

    fn advance_clock(&mut self) {
        let mut next = self.now_ms + TICK_MS;
        for lane in [&self.to_cloud, &self.to_device] {
            if let Some(Reverse((at, _, _))) = lane.in_flight.peek() {
                next = next.min(*at);
            }
        }
        for (at, _, _) in &self.injections {
            next = next.min(*at);
        }
        self.now_ms = next.max(self.now_ms + 1);
    }

    fn release_injections(&mut self) {
        let now = self.now_ms;
        let (due, later): (Vec<_>, Vec<_>) =
            self.injections.drain(..).partition(|(at, _, _)| *at <= now);
        self.injections = later;
        for (_, direction, frame) in due {
            self.link_stats.relay_actions += 1;
            let packets = self.fragment(direction, &frame);
            self.schedule(direction, packets, 0);
        }
    }

    fn deliver_due(&mut self, direction: Direction) {
        let now = self.now_ms;
        loop {
            let lane = self.lane_mut(direction);
            match lane.in_flight.peek() {
                Some(Reverse((at, _, _))) if *at <= now => {}
                _ => return,
            }
            let Some(Reverse((_, _, packet))) = lane.in_flight.pop() else {
                return;
            };
            let mut frame = match lane.reassembler.push(&packet) {
                Ok(Some(frame)) => frame.to_vec(),
                Ok(None) => continue,
                Err(_) => {
                    self.link_stats.fragments_rejected += 1;
                    continue;
                }
            };
            let mut replies = Vec::new();
            match direction {
                Direction::ToCloud => self.cloud.on_frame(now, &mut frame, &mut replies),
                Direction::ToDevice => self.device.on_frame(now, &mut frame, &mut replies),
            }
            self.transmit_all(direction.reverse(), replies);
        }
    }

    fn lane_mut(&mut self, direction: Direction) -> &mut Lane {
        match direction {
            Direction::ToCloud => &mut self.to_cloud,
            Direction::ToDevice => &mut self.to_device,
        }
    }

    fn transmit_all(&mut self, direction: Direction, frames: Vec<Vec<u8>>) {
        for frame in frames {
            self.transmit(direction, frame);
        }
    }

    /// Passes one frame through the relay script, then the random knobs of the link.
    fn transmit(&mut self, direction: Direction, mut frame: Vec<u8>) {
        self.link_stats.frames_sent += 1;
        let now = self.now_ms;
        if self
            .partitions
            .iter()
            .any(|&(from, to)| (from..to).contains(&now))
        {
            self.link_stats.partition_drops += 1;
            return;
        }
        let tamper = self.relay.take(direction, &frame);
        if tamper.is_some() {
            self.link_stats.relay_actions += 1;
        }
        match tamper {
            Some(Tamper::FlipBit { byte, bit }) => {
                let index = byte.min(frame.len() - 1);
                frame[index] ^= 1 << (bit % 8);
            }
            Some(Tamper::Truncate { keep }) => frame.truncate(keep.max(1)),
            _ => {}
        }
        let packets = self.fragment(direction, &frame);
        match self.lane_mut(direction).waiting.take() {
            Some(Waiting::Swap(earlier)) => {
                self.schedule(direction, packets, 0);
                self.schedule(direction, earlier, 0);
                return;
            }
            Some(Waiting::Splice(earlier)) => {
                let spliced = splice(earlier, packets);
                self.schedule(direction, spliced, 0);
                return;
            }
            None => {}
        }
        match tamper {
            Some(Tamper::Drop) => {}
            Some(Tamper::Duplicate) => {
                self.schedule(direction, packets.clone(), 0);
                self.schedule(direction, packets, 0);
            }
            Some(Tamper::Hold { ms }) => self.schedule(direction, packets, ms),
            Some(Tamper::Replay { after_ms }) => {
                self.schedule(direction, packets, 0);
                self.injections.push((now + after_ms, direction, frame));
            }
            Some(Tamper::SwapWithNext) => {
                self.lane_mut(direction).waiting = Some(Waiting::Swap(packets));
            }
            Some(Tamper::SpliceWithNext) => {
                self.lane_mut(direction).waiting = Some(Waiting::Splice(packets));
            }
            _ => self.send_with_faults(direction, packets),
        }
    }

    /// Applies the random loss, duplication, corruption and reordering knobs.
    fn send_with_faults(&mut self, direction: Direction, mut packets: Vec<Vec<u8>>) {
        let link = self.link;
        if self.rng.gen_bool(link.loss) {
            self.link_stats.frames_lost += 1;
            return;
        }
        if self.rng.gen_bool(link.corrupt) {
            let packet = self.rng.gen_range(0..packets.len());
            let byte = self.rng.gen_range(0..packets[packet].len());
            packets[packet][byte] ^= 1 << self.rng.gen_range(0..8);
        }
        let copies = if self.rng.gen_bool(link.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if link.reorder_delay_ms > 0 && self.rng.gen_bool(link.reorder) {
                self.rng.gen_range(1..=link.reorder_delay_ms)
            } else {
                0
            };
            self.schedule(direction, packets.clone(), delay);
        }
    }

    fn fragment(&mut self, direction: Direction, frame: &[u8]) -> Vec<Vec<u8>> {
        let mtu = self.link.mtu;
        let lane = self.lane_mut(direction);
        let message_id = lane.next_message_id;
        lane.next_message_id = lane.next_message_id.wrapping_add(1);
        let mut fragmenter = Fragmenter::new(frame, mtu, message_id).expect("frame fits the MTU");
        let mut packets = Vec::with_capacity(fragmenter.packet_count());
        let mut out = [0u8; 256];
        while let Some(len) = fragmenter
            .next_packet(&mut out)
            .expect("buffer fits a packet")
        {
            packets.push(out[..len].to_vec());
        }
        packets
    }

    /// Queues the packets of one frame for delivery. A frame without `extra_delay_ms`
    /// never overtakes an earlier one, but a delayed frame may be overtaken.
    fn schedule(&mut self, direction: Direction, packets: Vec<Vec<u8>>, extra_delay_ms: u64) {
        let link = self.link;
        let jitter = if link.jitter_ms > 0 {
            self.rng.gen_range(0..=link.jitter_ms)
        } else {
            0
        };
        let now = self.now_ms;
        let first_order = self.next_order;
        self.next_order += packets.len() as u64;
        let lane = self.lane_mut(direction);
        let mut at = now + link.latency_ms + jitter;
        if extra_delay_ms == 0 {
            at = at.max(lane.in_order_at);
            lane.in_order_at = at;
        } else {
            at += extra_delay_ms;
        }
        for (order, packet) in (first_order..).zip(packets) {
            lane.in_flight.push(Reverse((at, order, packet)));
        }
    }
}

/// Joins the first half of `first`'s fragments with the rest of `second`'s, relabelled
/// with `first`'s message id, as a relay splicing two frames would.
fn splice(first: Vec<Vec<u8>>, second: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let cut = (first.len().min(second.len()) / 2).max(1);
    let message_id = first[0][0];
    let mut spliced: Vec<Vec<u8>> = first.into_iter().take(cut).collect();
    for mut packet in second.into_iter().skip(cut) {
        packet[0] = message_id;
        spliced.push(packet);
    }
    spliced
}

/// Packets in flight in one direction, and the receiver's reassembler.
struct Lane {
    /// (delivery time, send order, packet), earliest first.
    in_flight: BinaryHeap<Reverse<(u64, u64, Vec<u8>)>>,
    reassembler: Reassembler<MAX_FRAME_LEN>,
    next_message_id: u8,
    in_order_at: u64,
    waiting: Option<Waiting>,
}

impl Lane {
    fn new() -> Self {
        Lane {
            in_flight: BinaryHeap::new(),
            reassembler: Reassembler::new(),
            next_message_id: 0,
            in_order_at: 0,
            waiting: None,
        }
    }
}

/// A frame the relay keeps back until the next frame in the same direction.
enum Waiting {
    Swap(Vec<Vec<u8>>),
    Splice(Vec<Vec<u8>>),
}

// ---------------------------------------------------------------------------------------
// Relay script
// ---------------------------------------------------------------------------------------

/// Frame kinds a relay action can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Handshake initiations.
    Initiation,
    /// Handshake responses.
    Response,
    /// Transport frames.
    Transport,
    /// Transport frames with a record above the smallest padding bucket, which only
    /// data messages use.
    LongTransport,
}

impl Kind {
    fn matches(self, frame: &[u8]) -> bool {
        matches!(
            (self, wire::frame_kind(frame)),
            (Kind::Initiation, Ok(FrameKind::Initiation))
                | (Kind::Response, Ok(FrameKind::Response))
                | (Kind::Transport, Ok(FrameKind::Transport { .. }))
        ) || (self == Kind::LongTransport && frame.len() > SHORT_TRANSPORT_LEN)
    }
}

/// What the relay does to one selected frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Flips bit `bit` of byte `byte` (clamped to the last byte).
    FlipBit {
        /// Byte offset in the frame.
        byte: usize,
        /// Bit index, 0..8.
        bit: u8,
    },
    /// Cuts the frame to `keep` bytes.
    Truncate {
        /// Bytes kept, at least 1.
        keep: usize,
    },
    /// Drops the frame.
    Drop,
    /// Delivers the frame twice.
    Duplicate,
    /// Delivers the frame `ms` late, letting later frames pass.
    Hold {
        /// Extra delay in ms.
        ms: u64,
    },
    /// Delivers the frame, then a captured copy `after_ms` later.
    Replay {
        /// Delay of the copy in ms.
        after_ms: u64,
    },
    /// Delivers the frame after the next one in the same direction.
    SwapWithNext,
    /// Replaces this frame and the next one by a frame spliced from their fragments.
    SpliceWithNext,
}

/// One scripted action: `tamper` on the `nth` (from 0) frame of `kind` in `direction`.
#[derive(Debug, Clone, Copy)]
pub struct Action {
    /// Direction of the selected frame.
    pub direction: Direction,
    /// Kind of the selected frame.
    pub kind: Kind,
    /// Index among the frames of that kind and direction, from 0.
    pub nth: usize,
    /// What happens to it.
    pub tamper: Tamper,
}

/// Scripted actions of the relay, each applied once.
#[derive(Debug, Default)]
pub struct Relay {
    actions: Vec<(Action, usize, bool)>,
}

impl Relay {
    /// Adds an action to the script.
    pub fn add(&mut self, action: Action) {
        self.actions.push((action, 0, false));
    }

    /// True when every scripted action was applied.
    pub fn all_applied(&self) -> bool {
        self.actions.iter().all(|(_, _, applied)| *applied)
    }

    fn take(&mut self, direction: Direction, frame: &[u8]) -> Option<Tamper> {
        let mut chosen = None;
        for (action, seen, applied) in &mut self.actions {
            if action.direction != direction || !action.kind.matches(frame) {
                continue;
            }
            *seen += 1;
            if !*applied && *seen == action.nth + 1 && chosen.is_none() {
                *applied = true;
                chosen = Some(action.tamper);
            }
        }
        chosen
    }
}

// ---------------------------------------------------------------------------------------
// Applications
// ---------------------------------------------------------------------------------------

/// Counters of what one side received and of what it could not send.
#[derive(Debug, Default)]
pub struct Stats {
    /// Rejected frames by error and blame, as `Error/Blame`.
    pub rejected: BTreeMap<String, u64>,
    /// Failed sends by error and blame, as `Error/Blame`.
    pub send_failures: BTreeMap<String, u64>,
    /// Frames that arrived ahead of the expected sequence number.
    pub gaps: u64,
    /// Messages the peer declared lost.
    pub lost_messages: u64,
    /// Messages that arrived again after delivery.
    pub duplicates: u64,
    /// Handshakes completed (device) or accepted (cloud).
    pub handshakes: u64,
    /// Retransmission timeouts that resent the queue.
    pub retransmission_timeouts: u64,
}

impl Stats {
    /// Frames rejected with an error whose name starts with `name`.
    pub fn rejected_as(&self, name: &str) -> u64 {
        self.rejected
            .iter()
            .filter(|(key, _)| key.starts_with(name))
            .map(|(_, count)| count)
            .sum()
    }

    /// Counts every rejected frame.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn reject(&mut self, error: Error) {
        *self.rejected.entry(error_key(&error)).or_default() += 1;
    }

    fn send_failure(&mut self, error: Error) {
        *self.send_failures.entry(error_key(&error)).or_default() += 1;
    }

    fn count_stream_events(&mut self, incoming: &Incoming<'_>) {
        if incoming.gap.is_some() {
            self.gaps += 1;
        }
        if let Some(lost) = incoming.lost {
            self.lost_messages += lost.to - lost.from;
        }
        if incoming.duplicate.is_some() {
            self.duplicates += 1;
        }
    }
}

/// Names an error by variant and blame, without the values of its fields.
fn error_key(error: &Error) -> String {
    let debug = format!("{error:?}");
    let mut name = debug.split(" {").next().unwrap_or_default().to_string();
    let unclosed = name.matches('(').count() - name.matches(')').count();
    name.push_str(&")".repeat(unclosed));
    format!("{name}/{:?}", error.blame())
}

/// Payload of message `index` of the application tagged `tag`: the tag, the index and
/// filler of a length that varies with the index. Every eighth record needs the 256-byte
/// padding bucket and the others fit the 64-byte one, like readings with an occasional
/// larger report.
pub fn message_payload(tag: u8, index: u64) -> Vec<u8> {
    let filler = if index % 8 == 7 {
        (29 + index * 37 % 161) as usize
    } else {
        (index % 29) as usize
    };
    let mut payload = Vec::with_capacity(9 + filler);
    payload.push(tag);
    payload.extend_from_slice(&index.to_le_bytes());
    payload.resize(9 + filler, (index as u8) ^ tag);
    payload
}

/// Asserts that `delivered` contains the messages of `outbox` in order, once each, except
/// the indices in `lost`.
pub fn assert_messages(delivered: &[Vec<u8>], outbox: &Outbox, lost: &[u64]) {
    let expected: Vec<u64> = (0..outbox.total).filter(|i| !lost.contains(i)).collect();
    let indices: Vec<u64> = delivered
        .iter()
        .map(|payload| payload_index(payload))
        .collect();
    assert_eq!(indices, expected, "delivered message indices");
    for (payload, index) in delivered.iter().zip(expected) {
        assert_eq!(
            payload,
            &message_payload(outbox.tag, index),
            "payload of {index}"
        );
    }
}

/// Reads the message index back from a payload.
pub fn payload_index(payload: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&payload[1..9]);
    u64::from_le_bytes(bytes)
}

/// The sealing calls the outbox needs, common to both channel types.
trait Sender {
    fn established(&self) -> bool;
    fn send_new(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error>;
    fn send_again(
        &mut self,
        now_ms: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error>;
}

impl Sender for DeviceChannel<Recording> {
    fn established(&self) -> bool {
        self.is_established()
    }

    fn send_new(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error> {
        self.send(now_ms, payload, out)
    }

    fn send_again(
        &mut self,
        now: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.resend(now, seq, payload, out)
    }
}

impl Sender for CloudChannel<Recording> {
    fn established(&self) -> bool {
        self.is_established()
    }

    fn send_new(&mut self, now_ms: u64, payload: &[u8], out: &mut [u8]) -> Result<Sent, Error> {
        self.send(now_ms, payload, out)
    }

    fn send_again(
        &mut self,
        now: u64,
        seq: u64,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.resend(now, seq, payload, out)
    }
}

/// Messages one application produces and keeps until they are acknowledged.
pub struct Outbox {
    queue: RetransmitQueue<QUEUE_SLOTS, MAX_PAYLOAD_LEN>,
    /// Tag byte that starts every payload of this application.
    pub tag: u8,
    /// Messages the application produces in the whole run.
    pub total: u64,
    /// Index of the next message to send for the first time.
    pub next_message: u64,
    interval_ms: u64,
    last_progress_ms: u64,
}

impl Outbox {
    fn new(tag: u8, total: u64, interval_ms: u64) -> Self {
        Outbox {
            queue: RetransmitQueue::new(),
            tag,
            total,
            next_message: 0,
            interval_ms,
            last_progress_ms: 0,
        }
    }

    /// True when every message was sent and acknowledged.
    pub fn is_done(&self) -> bool {
        self.next_message == self.total && self.queue.is_empty()
    }

    /// Number of messages sent but not acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.queue.len()
    }

    /// Message indices of the messages sent but not acknowledged.
    pub fn queued_indices(&self) -> Vec<u64> {
        self.queue
            .iter()
            .map(|(_, payload)| payload_index(payload))
            .collect()
    }

    fn produced_by(&self, now_ms: u64) -> u64 {
        match self.interval_ms {
            0 => self.total,
            interval => self.total.min(now_ms / interval + 1),
        }
    }

    fn on_acked(&mut self, now_ms: u64, acked: u64) {
        self.queue.release_below(acked);
        self.last_progress_ms = now_ms;
    }

    fn pump(
        &mut self,
        now_ms: u64,
        channel: &mut impl Sender,
        frames: &mut Vec<Vec<u8>>,
        stats: &mut Stats,
    ) {
        if !channel.established() {
            return;
        }
        if !self.queue.is_empty() && now_ms >= self.last_progress_ms + RETRANSMISSION_TIMEOUT_MS {
            stats.retransmission_timeouts += 1;
            self.resend_all(now_ms, channel, frames, stats);
        }
        let mut buf = [0u8; MAX_FRAME_LEN];
        while self.next_message < self.produced_by(now_ms) && !self.queue.is_full() {
            let payload = message_payload(self.tag, self.next_message);
            match channel.send_new(now_ms, &payload, &mut buf) {
                Ok(sent) => {
                    if self.queue.is_empty() {
                        self.last_progress_ms = now_ms;
                    }
                    self.queue
                        .push(sent.seq, &payload)
                        .expect("queue has a free slot");
                    frames.push(buf[..sent.len].to_vec());
                    self.next_message += 1;
                }
                Err(error) => {
                    stats.send_failure(error);
                    break;
                }
            }
        }
    }

    fn resend_all(
        &mut self,
        now_ms: u64,
        channel: &mut impl Sender,
        frames: &mut Vec<Vec<u8>>,
        stats: &mut Stats,
    ) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        for (seq, payload) in self.queue.iter() {
            match channel.send_again(now_ms, seq, payload, &mut buf) {
                Ok(len) => frames.push(buf[..len].to_vec()),
                Err(error) => {
                    stats.send_failure(error);
                    break;
                }
            }
        }
        self.last_progress_ms = now_ms;
    }
}

/// The device application around its channel.
pub struct Device {
    channel: DeviceChannel<Recording>,
    rng: StdRng,
    /// Messages to the cloud.
    pub outbox: Outbox,
    /// Messages from the cloud, in delivery order.
    pub received: Vec<Vec<u8>>,
    /// Event counters.
    pub stats: Stats,
    /// Resume state as last written to flash.
    pub persisted: DeviceResume,
    retry_at_ms: u64,
    backoff_ms: u64,
    reconnecting: bool,
    last_sent_ms: u64,
}

impl Device {
    fn new(
        provider: Recording,
        limits: Limits,
        resume: DeviceResume,
        rng: StdRng,
        outbox: Outbox,
    ) -> Self {
        let keys = device_keys(&provider);
        Device {
            channel: DeviceChannel::new(provider, keys, limits, resume),
            rng,
            outbox,
            received: Vec::new(),
            stats: Stats::default(),
            persisted: resume,
            retry_at_ms: 0,
            backoff_ms: HANDSHAKE_TIMEOUT_MS,
            reconnecting: false,
            last_sent_ms: 0,
        }
    }

    /// Returns the channel, for checks.
    pub fn channel(&self) -> &DeviceChannel<Recording> {
        &self.channel
    }

    fn poll(&mut self, now_ms: u64, frames: &mut Vec<Vec<u8>>) {
        self.maybe_start_handshake(now_ms, frames);
        let before = frames.len();
        self.outbox
            .pump(now_ms, &mut self.channel, frames, &mut self.stats);
        if frames.len() > before {
            self.last_sent_ms = now_ms;
        }
        if self.channel.is_established() && now_ms >= self.last_sent_ms + HEARTBEAT_MS {
            self.send_ack(now_ms, frames);
        }
        self.persisted = self.channel.resume_state();
    }

    /// Starts a handshake when there is no session or the keys need a rekey, and again
    /// when a response did not arrive in time.
    fn maybe_start_handshake(&mut self, now_ms: u64, frames: &mut Vec<Vec<u8>>) {
        let needed = !self.channel.is_established() || self.channel.needs_rekey(now_ms);
        if !needed || now_ms < self.retry_at_ms {
            return;
        }
        let mut buf = [0u8; MAX_FRAME_LEN];
        match self.channel.start_handshake(&mut self.rng, &mut buf) {
            Ok(initiation) => {
                // The counter is persisted before the frame leaves.
                self.persisted = self.channel.resume_state();
                frames.push(buf[..initiation.len].to_vec());
                self.reconnecting |= !self.channel.is_established();
                self.retry_at_ms = now_ms + self.backoff_ms;
                self.backoff_ms = (self.backoff_ms * 2).min(MAX_HANDSHAKE_BACKOFF_MS);
            }
            Err(error) => self.stats.send_failure(error),
        }
    }

    fn on_frame(&mut self, now_ms: u64, frame: &mut [u8], frames: &mut Vec<Vec<u8>>) {
        let incoming = match self.channel.handle_frame(now_ms, frame) {
            Ok(incoming) => incoming,
            Err(error) => return self.stats.reject(error),
        };
        self.stats.count_stream_events(&incoming);
        if incoming.handshake_completed {
            self.stats.handshakes += 1;
            self.backoff_ms = HANDSHAKE_TIMEOUT_MS;
            self.retry_at_ms = now_ms;
        }
        if let Some(acked) = incoming.acked {
            self.outbox.on_acked(now_ms, acked);
        }
        if let Some((seq, payload)) = incoming.data {
            self.received.push(payload.to_vec());
            self.channel.acknowledge(seq + 1);
        }
        if incoming.ack_due {
            self.send_ack(now_ms, frames);
        }
        if incoming.handshake_completed && self.reconnecting {
            self.reconnecting = false;
            self.outbox
                .resend_all(now_ms, &mut self.channel, frames, &mut self.stats);
        }
        self.persisted = self.channel.resume_state();
    }

    fn send_ack(&mut self, now_ms: u64, frames: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        match self.channel.send_ack(now_ms, &mut buf) {
            Ok(len) => {
                frames.push(buf[..len].to_vec());
                self.last_sent_ms = now_ms;
            }
            Err(error) => self.stats.send_failure(error),
        }
    }
}

/// The cloud application around its channel.
pub struct Cloud {
    channel: CloudChannel<Recording>,
    keys: CloudKeys,
    peer: PeerKeys,
    /// Largest initiation counter accepted, as persisted.
    pub last_counter: Option<u32>,
    rng: StdRng,
    /// Messages to the device.
    pub outbox: Outbox,
    /// Messages from the device, in the order they were stored.
    pub stored: Vec<Vec<u8>>,
    /// Event counters.
    pub stats: Stats,
}

impl Cloud {
    fn new(provider: Recording, limits: Limits, rng: StdRng, outbox: Outbox) -> Self {
        let (keys, peer) = cloud_keys(&provider);
        Cloud {
            channel: CloudChannel::new(provider, DEVICE_KEY_ID, limits, StreamState::default()),
            keys,
            peer,
            last_counter: None,
            rng,
            outbox,
            stored: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Returns the channel, for checks.
    pub fn channel(&self) -> &CloudChannel<Recording> {
        &self.channel
    }

    fn poll(&mut self, now_ms: u64, frames: &mut Vec<Vec<u8>>) {
        self.outbox
            .pump(now_ms, &mut self.channel, frames, &mut self.stats);
    }

    fn on_frame(&mut self, now_ms: u64, frame: &mut [u8], frames: &mut Vec<Vec<u8>>) {
        if wire::frame_kind(frame) == Ok(FrameKind::Initiation) {
            return self.on_initiation(now_ms, frame, frames);
        }
        let incoming = match self.channel.handle_frame(now_ms, frame) {
            Ok(incoming) => incoming,
            Err(error) => return self.stats.reject(error),
        };
        self.stats.count_stream_events(&incoming);
        if let Some(acked) = incoming.acked {
            self.outbox.on_acked(now_ms, acked);
        }
        if let Some((seq, payload)) = incoming.data {
            // Stored first, acknowledged after: the acknowledgement promises durability.
            self.stored.push(payload.to_vec());
            self.channel.acknowledge(seq + 1);
        }
        if incoming.ack_due {
            let mut buf = [0u8; MAX_FRAME_LEN];
            match self.channel.send_ack(now_ms, &mut buf) {
                Ok(len) => frames.push(buf[..len].to_vec()),
                Err(error) => self.stats.send_failure(error),
            }
        }
    }

    fn on_initiation(&mut self, now_ms: u64, frame: &[u8], frames: &mut Vec<Vec<u8>>) {
        let mut buf = [0u8; MAX_FRAME_LEN];
        let accepted = self.channel.accept_initiation(
            now_ms,
            &self.keys,
            &self.peer,
            frame,
            self.last_counter,
            &mut self.rng,
            &mut buf,
        );
        match accepted {
            Ok(accepted) => {
                self.last_counter = Some(accepted.counter);
                self.stats.handshakes += 1;
                frames.push(buf[..accepted.len].to_vec());
            }
            Err(error) => self.stats.reject(error),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Keys and the recording provider
// ---------------------------------------------------------------------------------------

/// Device keys of the simulated pair.
pub fn device_keys<P: CryptoProvider>(provider: &P) -> DeviceKeys {
    let cloud_public = provider.x25519_public(&SecretKey::from_bytes(CLOUD_SECRET));
    DeviceKeys::new(
        provider,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        SecretKey::from_bytes(DEVICE_SECRET),
        cloud_public,
        SymmetricKey::from_bytes(PSK),
    )
}

/// Cloud keys and the cloud's record of the simulated device.
pub fn cloud_keys<P: CryptoProvider>(provider: &P) -> (CloudKeys, PeerKeys) {
    let keys = CloudKeys::new(provider, CLOUD_KEY_ID, SecretKey::from_bytes(CLOUD_SECRET));
    let device_public = provider.x25519_public(&SecretKey::from_bytes(DEVICE_SECRET));
    let peer = PeerKeys::new(
        provider,
        &keys.static_secret,
        DEVICE_KEY_ID,
        CLOUD_KEY_ID,
        device_public,
        SymmetricKey::from_bytes(PSK),
    )
    .expect("device public key is a valid point");
    (keys, peer)
}

/// Every (key, nonce) pair sealed in a run, and how often a pair came again.
#[derive(Default)]
struct SealLog {
    pairs: HashSet<([u8; KEY_LEN], u64)>,
    reuses: u64,
}

/// [`RustCrypto`] with every seal recorded in a log shared by all its ciphers, across
/// device reboots.
#[derive(Clone, Default)]
pub struct Recording {
    log: Rc<RefCell<SealLog>>,
}

/// A [`RustCrypto`] cipher that records its key and each nonce it seals with.
pub struct RecordingCipher {
    inner: <RustCrypto as CryptoProvider>::Cipher,
    key: [u8; KEY_LEN],
    log: Rc<RefCell<SealLog>>,
}

impl Cipher for RecordingCipher {
    fn seal(&self, nonce: u64, ad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let mut log = self.log.borrow_mut();
        if !log.pairs.insert((self.key, nonce)) {
            log.reuses += 1;
        }
        self.inner.seal(nonce, ad, buf)
    }

    fn open(
        &self,
        nonce: u64,
        ad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.inner.open(nonce, ad, buf, tag)
    }
}

impl CryptoProvider for Recording {
    type Cipher = RecordingCipher;

    fn cipher(&self, key: &SymmetricKey) -> RecordingCipher {
        RecordingCipher {
            inner: RustCrypto.cipher(key),
            key: *key.expose_secret(),
            log: Rc::clone(&self.log),
        }
    }

    fn x25519_public(&self, secret: &SecretKey) -> PublicKey {
        RustCrypto.x25519_public(secret)
    }

    fn x25519(&self, secret: &SecretKey, public: &PublicKey) -> Result<SharedSecret, CryptoError> {
        RustCrypto.x25519(secret, public)
    }

    fn hash(&self, parts: &[&[u8]]) -> [u8; HASH_LEN] {
        RustCrypto.hash(parts)
    }

    fn hmac(&self, key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
        RustCrypto.hmac(key, parts)
    }

    fn mac(&self, key: &[u8; HASH_LEN], data: &[u8]) -> [u8; MAC_LEN] {
        RustCrypto.mac(key, data)
    }
}
