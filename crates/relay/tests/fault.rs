//! Fault injector: each kind with a fixed seed, counting, and the run-time switch.

use std::time::Duration;

use medtunnel_relay::fault::Released;
use medtunnel_relay::{FaultConfig, FaultConfigError, FaultHandle, FaultInjector, FaultKind};

const SEED: u64 = 7;

fn injector(kind: FaultKind) -> (FaultInjector, FaultHandle) {
    let handle = FaultHandle::new();
    let config = FaultConfig::none(SEED).with(kind, 1.0);
    let injector = FaultInjector::new(config, handle.clone()).expect("valid config");
    (injector, handle)
}

fn apply(injector: &mut FaultInjector, frame: &[u8]) -> Vec<Released> {
    let mut out = Vec::new();
    injector.apply(frame.to_vec(), &mut out);
    out
}

fn frames(released: &[Released]) -> Vec<Vec<u8>> {
    released.iter().map(|r| r.frame.clone()).collect()
}

fn assert_only_counted(handle: &FaultHandle, kind: FaultKind, count: u64) {
    for other in FaultKind::ALL {
        let expected = if other == kind { count } else { 0 };
        assert_eq!(handle.counters().get(other), expected, "count of {other}");
    }
}

#[test]
fn drop_forwards_nothing() {
    let (mut injector, handle) = injector(FaultKind::Drop);
    assert!(apply(&mut injector, b"frame one").is_empty());
    assert_only_counted(&handle, FaultKind::Drop, 1);
}

#[test]
fn duplicate_forwards_twice() {
    let (mut injector, handle) = injector(FaultKind::Duplicate);
    let out = apply(&mut injector, b"frame one");
    assert_eq!(frames(&out), vec![b"frame one".to_vec(); 2]);
    assert_only_counted(&handle, FaultKind::Duplicate, 1);
}

#[test]
fn reorder_swaps_with_next_frame() {
    let (mut injector, handle) = injector(FaultKind::Reorder);
    assert!(apply(&mut injector, b"first").is_empty());
    let out = apply(&mut injector, b"second");
    assert_eq!(frames(&out), vec![b"second".to_vec(), b"first".to_vec()]);
    assert_only_counted(&handle, FaultKind::Reorder, 1);
}

#[test]
fn delay_sets_configured_delay() {
    let handle = FaultHandle::new();
    let mut config = FaultConfig::none(SEED).with(FaultKind::Delay, 1.0);
    config.delay = Duration::from_millis(30);
    let mut injector = FaultInjector::new(config, handle.clone()).expect("valid config");
    let out = apply(&mut injector, b"frame");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].frame, b"frame");
    assert_eq!(out[0].delay, Duration::from_millis(30));
    assert_only_counted(&handle, FaultKind::Delay, 1);
}

#[test]
fn truncate_cuts_to_shorter_prefix() {
    let (mut injector, handle) = injector(FaultKind::Truncate);
    let frame: Vec<u8> = (0..100).collect();
    for _ in 0..20 {
        let out = apply(&mut injector, &frame);
        assert_eq!(out.len(), 1);
        let cut = &out[0].frame;
        assert!(!cut.is_empty(), "truncated frame is empty");
        assert!(cut.len() < frame.len(), "frame not shortened");
        assert_eq!(cut[..], frame[..cut.len()]);
    }
    assert_only_counted(&handle, FaultKind::Truncate, 20);
}

#[test]
fn truncate_skips_one_byte_frame() {
    let (mut injector, handle) = injector(FaultKind::Truncate);
    assert_eq!(frames(&apply(&mut injector, &[42])), vec![vec![42]]);
    assert_only_counted(&handle, FaultKind::Truncate, 0);
}

#[test]
fn flip_bits_inverts_one_to_three_bits() {
    let (mut injector, handle) = injector(FaultKind::FlipBits);
    let frame = vec![0x5a; 64];
    for _ in 0..20 {
        let out = apply(&mut injector, &frame);
        assert_eq!(out.len(), 1);
        let flipped = &out[0].frame;
        assert_eq!(flipped.len(), frame.len());
        let distance: u32 = flipped
            .iter()
            .zip(&frame)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert!((1..=3).contains(&distance), "{distance} bits flipped");
    }
    assert_only_counted(&handle, FaultKind::FlipBits, 20);
}

#[test]
fn replay_resends_earlier_frame() {
    let (mut injector, handle) = injector(FaultKind::Replay);
    // Nothing to replay yet, so nothing is injected.
    assert_eq!(
        frames(&apply(&mut injector, b"first")),
        vec![b"first".to_vec()]
    );
    assert_only_counted(&handle, FaultKind::Replay, 0);
    let out = apply(&mut injector, b"second");
    assert_eq!(frames(&out), vec![b"second".to_vec(), b"first".to_vec()]);
    assert_only_counted(&handle, FaultKind::Replay, 1);
}

#[test]
fn replay_history_is_bounded() {
    let handle = FaultHandle::new();
    let mut config = FaultConfig::none(SEED).with(FaultKind::Replay, 1.0);
    config.replay_history = 2;
    let mut injector = FaultInjector::new(config, handle).expect("valid config");
    for i in 0..10u8 {
        let out = apply(&mut injector, &[i]);
        if let Some(replayed) = out.get(1) {
            let first = replayed.frame[0];
            assert!(first + 2 >= i, "frame {first} replayed after frame {i}");
        }
    }
}

fn mixed_config(seed: u64) -> FaultConfig {
    FaultConfig::none(seed)
        .with(FaultKind::Drop, 0.2)
        .with(FaultKind::Duplicate, 0.2)
        .with(FaultKind::Reorder, 0.2)
        .with(FaultKind::Truncate, 0.2)
        .with(FaultKind::FlipBits, 0.2)
        .with(FaultKind::Replay, 0.2)
}

fn run_mixed(seed: u64) -> Vec<Released> {
    let mut injector = FaultInjector::new(mixed_config(seed), FaultHandle::new()).expect("valid");
    let mut out = Vec::new();
    for i in 0..200u8 {
        injector.apply(vec![i; 32], &mut out);
    }
    out
}

#[test]
fn same_seed_gives_same_faults() {
    assert_eq!(run_mixed(11), run_mixed(11));
    assert_ne!(run_mixed(11), run_mixed(12));
}

#[test]
fn disabled_injector_passes_frames_unchanged() {
    let handle = FaultHandle::new();
    let mut injector = FaultInjector::new(mixed_config(3), handle.clone()).expect("valid");
    handle.set_enabled(false);
    for i in 0..50u8 {
        assert_eq!(frames(&apply(&mut injector, &[i; 8])), vec![vec![i; 8]]);
    }
    assert_eq!(handle.counters().total(), 0);
}

#[test]
fn disabling_releases_held_frame_first() {
    let (mut injector, handle) = injector(FaultKind::Reorder);
    assert!(apply(&mut injector, b"held").is_empty());
    handle.set_enabled(false);
    let out = apply(&mut injector, b"next");
    assert_eq!(frames(&out), vec![b"held".to_vec(), b"next".to_vec()]);
}

#[test]
fn probability_outside_range_is_rejected() {
    for probability in [-0.1, 1.5, f64::NAN] {
        let config = FaultConfig::none(SEED).with(FaultKind::Drop, probability);
        let error = FaultInjector::new(config, FaultHandle::new()).expect_err("invalid");
        assert!(matches!(
            error,
            FaultConfigError::InvalidProbability {
                kind: FaultKind::Drop,
                ..
            }
        ));
    }
}

#[test]
fn empty_replay_history_is_rejected() {
    let mut config = FaultConfig::none(SEED);
    config.replay_history = 0;
    assert_eq!(config.validate(), Err(FaultConfigError::EmptyReplayHistory));
}
