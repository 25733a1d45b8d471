//! Drives a `ReplayWindow` with counters decoded from the input and checks it against a
//! set of all accepted counters. Counters decoded from 32 bits also check
//! `reconstruct_counter`.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use medtunnel_proto::replay::{reconstruct_counter, ReplayError, ReplayWindow, REPLAY_WINDOW_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut window = ReplayWindow::new();
    let mut accepted = BTreeSet::new();
    let mut rest = data;
    while let Some((&operation, tail)) = rest.split_first() {
        rest = tail;
        let highest = accepted.last().copied();
        let Some(counter) = decode_counter(operation >> 1, &mut rest, highest) else {
            break;
        };
        let authenticated = operation & 1 == 1;

        let expected = model_check(&accepted, counter);
        assert_eq!(window.check(counter), expected, "check of {counter}");
        if authenticated {
            assert_eq!(window.accept(counter), expected, "accept of {counter}");
            if expected.is_ok() {
                accepted.insert(counter);
            }
        }
        assert_eq!(window.highest(), accepted.last().copied());
    }
});

/// Reads one counter in the mode given by the low two bits of `mode`, or `None` when the
/// input ends.
fn decode_counter(mode: u8, rest: &mut &[u8], highest: Option<u64>) -> Option<u64> {
    let base = highest.unwrap_or(0);
    match mode & 3 {
        0 => {
            let bytes = take::<8>(rest)?;
            Some(u64::from_le_bytes(bytes))
        }
        1 => {
            let [offset] = take::<1>(rest)?;
            Some(base.saturating_add_signed(i64::from(offset as i8)))
        }
        2 => {
            let [offset] = take::<1>(rest)?;
            let edge = base.saturating_sub(REPLAY_WINDOW_SIZE - 1);
            Some(edge.saturating_add_signed(i64::from(offset as i8)))
        }
        _ => {
            let truncated = u32::from_le_bytes(take::<4>(rest)?);
            let counter = reconstruct_counter(truncated, highest);
            check_reconstruction(truncated, highest, counter);
            Some(counter)
        }
    }
}

/// Checks that the reconstructed counter keeps the low bits and lies within 2^31 of the
/// expected counter, unless the closer value would not fit in a `u64`.
fn check_reconstruction(truncated: u32, highest: Option<u64>, counter: u64) {
    assert_eq!(counter as u32, truncated);
    let expected = highest.map_or(0, |highest| highest.saturating_add(1));
    if counter.abs_diff(expected) <= 1 << 31 {
        return;
    }
    // Near 0 the closer value would be negative, and in the top 2^32 block it would
    // exceed u64::MAX.
    let clamped_at_zero = counter > expected && counter < 1 << 32;
    let clamped_at_top = counter < expected && counter > u64::MAX - (1 << 32);
    assert!(
        clamped_at_zero || clamped_at_top,
        "counter {counter} is far from expected {expected}"
    );
}

fn take<const LEN: usize>(rest: &mut &[u8]) -> Option<[u8; LEN]> {
    let (bytes, tail) = rest.split_first_chunk::<LEN>()?;
    *rest = tail;
    Some(*bytes)
}

fn model_check(accepted: &BTreeSet<u64>, counter: u64) -> Result<(), ReplayError> {
    if counter == u64::MAX {
        return Err(ReplayError::ReservedCounter);
    }
    if let Some(&highest) = accepted.last() {
        if counter < highest && highest - counter >= REPLAY_WINDOW_SIZE {
            return Err(ReplayError::TooOld);
        }
    }
    if accepted.contains(&counter) {
        return Err(ReplayError::Replayed);
    }
    Ok(())
}
