//! Property tests of the replay window against a reference model, and of counter
//! reconstruction from the low 32 bits.

use std::collections::BTreeSet;

use medtunnel_proto::replay::{reconstruct_counter, ReplayError, ReplayWindow, REPLAY_WINDOW_SIZE};
use proptest::prelude::*;

/// Reference replay window: the set of every accepted counter, and the rule that
/// a counter `REPLAY_WINDOW_SIZE` or more below the highest accepted one is too old.
#[derive(Default)]
struct ModelWindow {
    accepted: BTreeSet<u64>,
}

impl ModelWindow {
    fn check(&self, counter: u64) -> Result<(), ReplayError> {
        if counter == u64::MAX {
            return Err(ReplayError::ReservedCounter);
        }
        if let Some(&highest) = self.accepted.last() {
            if counter < highest && highest - counter >= REPLAY_WINDOW_SIZE {
                return Err(ReplayError::TooOld);
            }
        }
        if self.accepted.contains(&counter) {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }

    fn accept(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        self.accepted.insert(counter);
        Ok(())
    }

    fn highest(&self) -> Option<u64> {
        self.accepted.last().copied()
    }
}

/// Counter relative to what was accepted so far, so that most operations land near the
/// window edges instead of being spread over all of `u64`.
#[derive(Debug, Clone)]
enum CounterChoice {
    /// Any counter, including 0 and the reserved 2^64 - 1.
    Absolute(u64),
    /// The highest accepted counter, or 0 while nothing was accepted, plus a small offset.
    NearHighest(i16),
    /// The window edge `highest - REPLAY_WINDOW_SIZE + 1` plus a small signed offset.
    NearEdge(i8),
}

impl CounterChoice {
    fn resolve(&self, highest: Option<u64>) -> u64 {
        let base = highest.unwrap_or(0);
        match *self {
            CounterChoice::Absolute(counter) => counter,
            CounterChoice::NearHighest(offset) => base.saturating_add_signed(offset.into()),
            CounterChoice::NearEdge(offset) => {
                let edge = base.saturating_sub(REPLAY_WINDOW_SIZE - 1);
                edge.saturating_add_signed(offset.into())
            }
        }
    }
}

fn counter_choice() -> impl Strategy<Value = CounterChoice> {
    prop_oneof![
        1 => prop_oneof![Just(0u64), Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
            .prop_map(CounterChoice::Absolute),
        6 => (-300i16..300).prop_map(CounterChoice::NearHighest),
        3 => any::<i8>().prop_map(CounterChoice::NearEdge),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn window_agrees_with_model(
        operations in prop::collection::vec((counter_choice(), any::<bool>()), 1..400)
    ) {
        let mut window = ReplayWindow::new();
        let mut model = ModelWindow::default();
        for (choice, authenticated) in operations {
            let counter = choice.resolve(model.highest());
            let checked = window.check(counter);
            prop_assert_eq!(checked, model.check(counter), "check of counter {}", counter);
            if authenticated {
                // The receiver calls `accept` only for frames whose tag verified.
                prop_assert_eq!(
                    window.accept(counter),
                    model.accept(counter),
                    "accept of counter {}",
                    counter
                );
            }
            prop_assert_eq!(window.highest(), model.highest());
        }
    }

    #[test]
    fn reconstruct_round_trips_within_half_span(
        highest in prop_oneof![
            Just(None),
            any::<u64>().prop_map(Some),
            (u64::MAX - (1 << 33)..=u64::MAX).prop_map(Some),
            (0..1u64 << 33).prop_map(Some),
        ],
        offset in -(1i64 << 31) + 1..=(1i64 << 31),
    ) {
        let expected = highest.map_or(0, |highest| highest.saturating_add(1));
        let actual = expected.checked_add_signed(offset);
        prop_assume!(actual.is_some());
        let actual = actual.unwrap();
        prop_assert_eq!(reconstruct_counter(actual as u32, highest), actual);
    }

    #[test]
    fn reconstruct_keeps_low_bits(truncated in any::<u32>(), highest in any::<Option<u64>>()) {
        let counter = reconstruct_counter(truncated, highest);
        prop_assert_eq!(counter as u32, truncated);
    }
}
