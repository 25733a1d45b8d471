//! Scenarios of a device and a cloud channel over a simulated Bluetooth LE link and an
//! untrusted relay, on a virtual clock. The simulator itself is in `sim/mod.rs`.

mod sim;

use medtunnel_proto::channel::Health;
use medtunnel_proto::transport::Limits;
use medtunnel_proto::wire::{self, INITIATION_LEN};
use sim::{
    assert_messages, payload_index, Action, Direction, Kind, LinkConfig, Scenario, Sim, Tamper,
    DEVICE_KEY_ID,
};

/// Virtual time after which a scenario that has not finished counts as stuck, in ms.
const STUCK_AFTER_MS: u64 = 600_000;

fn established(sim: &Sim) -> bool {
    sim.device.channel().is_established() && sim.cloud.channel().is_established()
}

/// Runs a scenario to the end and checks delivery, nonce uniqueness and the script.
fn run_to_end(sim: &mut Sim) {
    assert!(
        sim.run_until_delivered(STUCK_AFTER_MS),
        "not delivered by {} ms: device {} of {} sent, {} unacknowledged; cloud stored {}",
        sim.now_ms,
        sim.device.outbox.next_message,
        sim.device.outbox.total,
        sim.device.outbox.unacknowledged(),
        sim.cloud.stored.len(),
    );
    assert!(
        sim.relay.all_applied(),
        "a scripted relay action never found its frame"
    );
    sim.assert_delivered_in_order();
    assert_eq!(
        sim.nonce_reuses(),
        0,
        "a (key, nonce) pair was sealed twice"
    );
}

/// Runs 60 device and 20 cloud messages to the end with one scripted relay action.
fn tampered(mtu: usize, action: Action) -> Sim {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig::clean(mtu),
        device_messages: 60,
        cloud_messages: 20,
        interval_ms: 10,
        ..Scenario::default()
    });
    sim.relay.add(action);
    run_to_end(&mut sim);
    sim
}

fn to_cloud(kind: Kind, nth: usize, tamper: Tamper) -> Action {
    Action {
        direction: Direction::ToCloud,
        kind,
        nth,
        tamper,
    }
}

#[test]
fn handshake_completes() {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig::clean(20),
        ..Scenario::default()
    });
    assert!(sim.run_until(2_000, established));
    assert_eq!(sim.device.stats.handshakes, 1);
    assert_eq!(sim.cloud.stats.handshakes, 1);
    assert_eq!(sim.cloud.last_counter, Some(0));
    assert_eq!(sim.device.persisted.next_initiation_counter, 1);
    assert_eq!(sim.device.stats.rejected_total(), 0);
    assert_eq!(sim.cloud.stats.rejected_total(), 0);
    assert_eq!(
        sim.device.channel().health(sim.now_ms, 1_000),
        Health::Healthy
    );
}

#[test]
fn data_flows_both_ways() {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig::clean(20),
        device_messages: 200,
        cloud_messages: 50,
        ..Scenario::default()
    });
    run_to_end(&mut sim);
    assert_eq!(sim.cloud.stored.len(), 200);
    assert_eq!(sim.device.received.len(), 50);
    assert_eq!(sim.cloud.stats.gaps, 0);
    assert_eq!(sim.cloud.stats.duplicates, 0);
    assert_eq!(sim.device.stats.rejected_total(), 0);
    assert_eq!(sim.cloud.stats.rejected_total(), 0);
    assert_eq!(sim.cloud.channel().stream().rx_committed, 200);
    assert_eq!(sim.device.channel().stream().tx_acked, 200);
}

#[test]
fn rekey_by_message_limit_keeps_frames_in_flight() {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig {
            latency_ms: 40,
            ..LinkConfig::clean(64)
        },
        limits: Limits {
            rekey_after_messages: 40,
            reject_after_messages: 60,
            ..Limits::default()
        },
        device_messages: 600,
        cloud_messages: 100,
        ..Scenario::default()
    });
    run_to_end(&mut sim);
    assert!(sim.device.stats.handshakes >= 10, "{:?}", sim.device.stats);
    assert_eq!(
        sim.device.stats.rejected_total(),
        0,
        "{:?}",
        sim.device.stats
    );
    assert_eq!(sim.cloud.stats.rejected_total(), 0, "{:?}", sim.cloud.stats);
    assert_eq!(sim.cloud.stats.gaps, 0);
}

#[test]
fn rekey_by_age_keeps_frames_in_flight() {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig {
            latency_ms: 40,
            ..LinkConfig::clean(244)
        },
        limits: Limits {
            rekey_after_ms: 1_000,
            reject_after_ms: 1_500,
            keep_previous_ms: 300,
            ..Limits::default()
        },
        device_messages: 1_000,
        cloud_messages: 100,
        interval_ms: 10,
        ..Scenario::default()
    });
    run_to_end(&mut sim);
    assert!(sim.device.stats.handshakes >= 9, "{:?}", sim.device.stats);
    assert_eq!(
        sim.device.stats.rejected_total(),
        0,
        "{:?}",
        sim.device.stats
    );
    assert_eq!(sim.cloud.stats.rejected_total(), 0, "{:?}", sim.cloud.stats);
}

#[test]
fn flipped_bit_is_rejected() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::FlipBit { byte: 30, bit: 2 });
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("TransportDecrypt/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
    assert!(sim.cloud.stats.gaps >= 1);
}

#[test]
fn flipped_header_bit_is_rejected() {
    // Bit 0 of the type byte is the key phase: the frame names the other phase.
    let action = to_cloud(Kind::Transport, 10, Tamper::FlipBit { byte: 0, bit: 0 });
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("NoSessionForPhase/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn truncated_frame_is_rejected() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::Truncate { keep: 40 });
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("TransportDecrypt/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn frame_shorter_than_header_is_malformed() {
    let action = to_cloud(Kind::Transport, 10, Tamper::Truncate { keep: 12 });
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("Parse(BadLength)/Malformed"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn replayed_frame_is_rejected() {
    let action = to_cloud(Kind::Transport, 10, Tamper::Replay { after_ms: 30 });
    let sim = tampered(244, action);
    assert_eq!(sim.cloud.stats.rejected_as("Replay(Replayed)/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
    assert_eq!(sim.cloud.stats.duplicates, 0);
}

#[test]
fn reordered_frames_are_recovered() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::SwapWithNext);
    let sim = tampered(244, action);
    assert_eq!(sim.cloud.stats.rejected_total(), 0);
    assert!(sim.cloud.stats.gaps >= 1);
}

#[test]
fn dropped_frame_is_retransmitted() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::Drop);
    let sim = tampered(244, action);
    assert!(sim.cloud.stats.gaps >= 1);
    assert!(sim.device.stats.retransmission_timeouts >= 1);
}

#[test]
fn duplicated_frame_is_rejected() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::Duplicate);
    let sim = tampered(244, action);
    assert_eq!(sim.cloud.stats.rejected_as("Replay(Replayed)/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn dropped_response_is_retried() {
    let action = Action {
        direction: Direction::ToDevice,
        kind: Kind::Response,
        nth: 0,
        tamper: Tamper::Drop,
    };
    let sim = tampered(20, action);
    assert_eq!(sim.device.stats.handshakes, 1);
    assert_eq!(sim.cloud.stats.handshakes, 2);
    assert_eq!(sim.cloud.last_counter, Some(1));
}

#[test]
fn flipped_response_bit_is_rejected() {
    let action = Action {
        direction: Direction::ToDevice,
        kind: Kind::Response,
        nth: 0,
        tamper: Tamper::FlipBit { byte: 40, bit: 5 },
    };
    let sim = tampered(20, action);
    assert_eq!(sim.device.stats.rejected_as("Handshake(Decrypt)/Peer"), 1);
    assert_eq!(sim.device.stats.handshakes, 1);
}

#[test]
fn forged_counter_is_blamed_on_peer() {
    // A relay that sets the top bit of the truncated counter claims a counter far above
    // the message limit. The frame is unauthenticated, so the error blames the peer and
    // does not claim that this side's keys are exhausted.
    let mut sim = Sim::new(Scenario {
        limits: Limits {
            reject_after_messages: 10_000,
            rekey_after_messages: 5_000,
            ..Limits::default()
        },
        device_messages: 60,
        interval_ms: 10,
        ..Scenario::default()
    });
    sim.relay.add(to_cloud(
        Kind::LongTransport,
        2,
        Tamper::FlipBit { byte: 4, bit: 7 },
    ));
    run_to_end(&mut sim);
    assert_eq!(sim.cloud.stats.rejected_as("KeysExhausted"), 0);
    assert_eq!(sim.cloud.stats.rejected_as("TransportDecrypt/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn frame_delayed_past_grace_period_is_rejected() {
    let mut sim = Sim::new(Scenario {
        link: LinkConfig::clean(244),
        limits: Limits {
            rekey_after_messages: 30,
            keep_previous_ms: 200,
            ..Limits::default()
        },
        device_messages: 60,
        cloud_messages: 10,
        interval_ms: 10,
        ..Scenario::default()
    });
    sim.relay
        .add(to_cloud(Kind::LongTransport, 2, Tamper::Hold { ms: 3_000 }));
    run_to_end(&mut sim);
    sim.run_for(3_000);
    assert!(sim.device.stats.handshakes >= 2);
    assert_eq!(sim.cloud.stats.rejected_total(), 1, "{:?}", sim.cloud.stats);
    assert_eq!(sim.cloud.stats.duplicates, 0);
    assert_eq!(sim.cloud.stored.len(), 60);
}

#[test]
fn spliced_fragments_are_rejected() {
    let action = to_cloud(Kind::LongTransport, 2, Tamper::SpliceWithNext);
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("TransportDecrypt/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
}

#[test]
fn forged_initiation_costs_no_handshake() {
    let mut sim = Sim::new(Scenario {
        device_messages: 40,
        interval_ms: 10,
        ..Scenario::default()
    });
    let mut forged = vec![0x5au8; INITIATION_LEN];
    forged[0] = wire::type_byte(wire::TYPE_INITIATION);
    forged[1..5].copy_from_slice(&DEVICE_KEY_ID.to_le_bytes());
    forged[5..9].copy_from_slice(&1_000u32.to_le_bytes());
    sim.inject(200, Direction::ToCloud, forged.clone());
    forged[1..5].copy_from_slice(&(DEVICE_KEY_ID + 1).to_le_bytes());
    sim.inject(210, Direction::ToCloud, forged);
    run_to_end(&mut sim);
    assert_eq!(sim.cloud.stats.rejected_as("Mac1Mismatch/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_as("UnknownKeyId/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 2);
    assert_eq!(sim.cloud.stats.handshakes, 1);
    assert_eq!(sim.cloud.last_counter, Some(0));
}

#[test]
fn replayed_initiation_is_rejected() {
    let action = to_cloud(Kind::Initiation, 0, Tamper::Replay { after_ms: 300 });
    let sim = tampered(20, action);
    assert_eq!(sim.cloud.stats.rejected_as("StaleInitiation/Peer"), 1);
    assert_eq!(sim.cloud.stats.rejected_total(), 1);
    assert_eq!(sim.cloud.stats.handshakes, 1);
}

#[test]
fn device_reboot_reuses_no_nonce() {
    let mut sim = Sim::new(Scenario {
        device_messages: 300,
        cloud_messages: 50,
        interval_ms: 10,
        ..Scenario::default()
    });
    assert!(sim.run_until(60_000, |sim| sim.cloud.stored.len() >= 100));
    let cloud_stream = *sim.cloud.channel().stream();
    let counter_before = sim.device.persisted.next_initiation_counter;
    sim.reboot_device(true);
    assert!(!sim.device.channel().is_established());
    assert_eq!(*sim.cloud.channel().stream(), cloud_stream);
    run_to_end(&mut sim);
    assert_eq!(sim.device.stats.handshakes, 2);
    assert_eq!(sim.cloud.last_counter, Some(counter_before));
    assert_eq!(sim.cloud.stats.lost_messages, 0);
    assert!(sim.sealed_pairs() > 700);
}

#[test]
fn reboot_without_queue_reports_lost() {
    let mut sim = Sim::new(Scenario {
        device_messages: 100,
        interval_ms: 10,
        ..Scenario::default()
    });
    assert!(sim.run_until(60_000, |sim| sim.cloud.stored.len() >= 20));
    let start = sim.now_ms;
    sim.partition(start, start + 2_000);
    sim.run_for(500);
    let queued = sim.device.outbox.queued_indices();
    assert!(!queued.is_empty());
    sim.reboot_device(false);
    run_to_end_with_lost(&mut sim, &queued);
}

/// Runs to the end and checks that the cloud stored everything but the messages of
/// `queued` it did not receive before the reboot, and reported those as lost.
fn run_to_end_with_lost(sim: &mut Sim, queued: &[u64]) {
    assert!(sim.run_until_delivered(STUCK_AFTER_MS));
    let stored: Vec<u64> = sim.cloud.stored.iter().map(|p| payload_index(p)).collect();
    let lost: Vec<u64> = queued
        .iter()
        .copied()
        .filter(|index| !stored.contains(index))
        .collect();
    assert!(!lost.is_empty());
    assert_messages(&sim.cloud.stored, &sim.device.outbox, &lost);
    assert_eq!(sim.cloud.stats.lost_messages, lost.len() as u64);
    assert_eq!(sim.nonce_reuses(), 0);
}

#[test]
fn long_partition_recovers() {
    let mut sim = Sim::new(Scenario {
        limits: Limits {
            rekey_after_ms: 20_000,
            reject_after_ms: 30_000,
            keep_previous_ms: 2_000,
            ..Limits::default()
        },
        device_messages: 400,
        cloud_messages: 40,
        interval_ms: 100,
        ..Scenario::default()
    });
    sim.partition(5_000, 185_000);
    sim.run_until(120_000, |_| false);
    assert!(matches!(
        sim.device.channel().health(sim.now_ms, 10_000),
        Health::Stale { .. }
    ));
    run_to_end(&mut sim);
    assert_eq!(
        sim.device.channel().health(sim.now_ms, 10_000),
        Health::Healthy
    );
    assert!(sim.link_stats.partition_drops > 0);
    assert!(sim.device.stats.handshakes >= 2);
}

/// Runs every knob at once, with two partitions, over 2000 device messages.
fn mixed_faults(mtu: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(Scenario {
        seed,
        link: LinkConfig {
            mtu,
            latency_ms: 15,
            jitter_ms: 10,
            loss: 0.03,
            duplicate: 0.02,
            reorder: 0.03,
            reorder_delay_ms: 80,
            corrupt: 0.02,
        },
        limits: Limits {
            rekey_after_messages: 500,
            reject_after_messages: 700,
            rekey_after_ms: 20_000,
            reject_after_ms: 30_000,
            keep_previous_ms: 2_000,
        },
        device_messages: 2_000,
        cloud_messages: 200,
        interval_ms: 0,
    });
    sim.partition(3_000, 6_000);
    sim.partition(20_000, 21_000);
    run_to_end(&mut sim);
    assert_eq!(sim.cloud.stored.len(), 2_000);
    sim
}

/// Checks that the knobs produced every kind of fault in a run, so it tested recovery.
fn assert_faults_happened(sim: &Sim) {
    assert!(sim.link_stats.frames_lost > 0);
    assert!(sim.link_stats.fragments_rejected > 0);
    assert!(sim.cloud.stats.rejected_total() > 0);
    assert!(sim.cloud.stats.gaps > 0);
    assert!(sim.cloud.stats.duplicates > 0);
    assert!(sim.device.stats.handshakes > 2);
}

#[test]
fn mixed_faults_at_mtu_20() {
    let sim = mixed_faults(20, 20);
    assert_faults_happened(&sim);
}

#[test]
fn mixed_faults_at_mtu_244() {
    let sim = mixed_faults(244, 244);
    assert_faults_happened(&sim);
}

#[test]
#[ignore = "minutes in a debug build; run with --release --ignored to search more seeds"]
fn mixed_faults_over_many_seeds() {
    for seed in 1_000..1_200 {
        mixed_faults(20, seed);
        mixed_faults(244, seed);
    }
}

/// Runs key limits of a few dozen messages and seconds, heavy faults and a device reboot
/// whenever a run interval ends with messages outstanding.
fn tiny_limits_with_reboots(seed: u64) {
    let mut sim = Sim::new(Scenario {
        seed,
        link: LinkConfig {
            mtu: if seed % 2 == 0 { 20 } else { 244 },
            latency_ms: 15,
            jitter_ms: 10,
            loss: 0.05,
            duplicate: 0.03,
            reorder: 0.05,
            reorder_delay_ms: 150,
            corrupt: 0.03,
        },
        limits: Limits {
            rekey_after_messages: 20,
            reject_after_messages: 30,
            rekey_after_ms: 2_000,
            reject_after_ms: 3_000,
            keep_previous_ms: 500,
        },
        device_messages: 500,
        cloud_messages: 100,
        interval_ms: 5,
    });
    let interval_ms = 1_000 + seed * 37 % 3_000;
    let mut reboots = 0;
    while !sim.run_until(sim.now_ms + interval_ms, |sim| {
        sim.device.outbox.is_done() && sim.cloud.outbox.is_done()
    }) {
        sim.reboot_device(true);
        reboots += 1;
        assert!(
            reboots < 500,
            "seed {seed}: not delivered after {reboots} reboots"
        );
    }
    sim.assert_delivered_in_order();
    assert_eq!(sim.nonce_reuses(), 0, "seed {seed}");
}

#[test]
fn tiny_limits_with_reboots_deliver() {
    tiny_limits_with_reboots(3);
}

#[test]
#[ignore = "minutes in a debug build; run with --release --ignored to search more seeds"]
fn tiny_limits_with_reboots_over_many_seeds() {
    for seed in 0..300 {
        tiny_limits_with_reboots(seed);
    }
}
