//! Anti-replay sliding window for 64-bit transport counters.
//!
//! Every transport message carries a 64-bit counter that is also its Noise nonce. The
//! receiver calls [`ReplayWindow::check`] before decryption, so a replayed or stale frame
//! costs no AEAD work, and [`ReplayWindow::accept`] only after the authentication tag
//! verified. Only authenticated counters move the window, so a forged frame with a huge
//! counter fails its tag and leaves the window where it was.
//!
//! The window accepts each counter at most once. It accepts any counter above the highest
//! one accepted so far, and a counter below it only while it is less than
//! [`REPLAY_WINDOW_SIZE`] behind and not seen before. Older counters are rejected as
//! [`ReplayError::TooOld`] even if they were never seen: the window does not remember
//! them, so it cannot tell a late frame from a replay.
//!
//! The wire carries only the low 32 bits of the counter, so [`reconstruct_counter`]
//! recovers the full value before the check.

use core::fmt;

/// Number of counters below the highest accepted one (inclusive of it) that the window
/// still tracks individually. Must be a non-zero multiple of 64.
pub const REPLAY_WINDOW_SIZE: u64 = 128;

/// Number of 64-bit words in the bitmap.
const WORDS: usize = (REPLAY_WINDOW_SIZE / 64) as usize;

const _: () = assert!(REPLAY_WINDOW_SIZE >= 64 && REPLAY_WINDOW_SIZE % 64 == 0);

/// Counter value that Noise reserves: a cipher state must not use nonce 2^64 - 1.
const RESERVED_COUNTER: u64 = u64::MAX;

/// Reason a counter was rejected. Every variant is caused by the peer or by the relay in
/// between, never by the local caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The counter was already accepted: the frame is a replay or a duplicate.
    Replayed,
    /// The counter is [`REPLAY_WINDOW_SIZE`] or more below the highest accepted counter,
    /// so the window can no longer tell whether it was seen.
    TooOld,
    /// The counter is 2^64 - 1, which Noise forbids as a nonce.
    ReservedCounter,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Replayed => f.write_str("transport counter was already accepted"),
            ReplayError::TooOld => f.write_str("transport counter is older than the replay window"),
            ReplayError::ReservedCounter => f.write_str("transport counter 2^64-1 is reserved"),
        }
    }
}

/// Set of accepted transport counters, remembered for the last [`REPLAY_WINDOW_SIZE`]
/// counters up to the highest accepted one.
///
/// Call [`check`](Self::check) before decrypting a frame and [`accept`](Self::accept)
/// after its tag verified. Holding an `Ok` from `check` guarantees nothing by itself: a
/// frame that is not yet accepted may still be a replay of one accepted in between, which
/// is why `accept` checks again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest accepted counter, or `None` while nothing was accepted.
    highest: Option<u64>,
    /// Ring bitmap: bit `c % REPLAY_WINDOW_SIZE` is set when counter `c` in the window
    /// `highest - REPLAY_WINDOW_SIZE + 1 ..= highest` was accepted.
    bitmap: [u64; WORDS],
}

impl ReplayWindow {
    /// Creates a window in which no counter was accepted yet.
    pub const fn new() -> Self {
        ReplayWindow {
            highest: None,
            bitmap: [0; WORDS],
        }
    }

    /// Returns the highest accepted counter, or `None` while nothing was accepted.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Checks whether `counter` would be accepted, without recording it.
    ///
    /// # Errors
    ///
    /// [`ReplayError::ReservedCounter`] for 2^64 - 1, [`ReplayError::TooOld`] when the
    /// counter is below the window, and [`ReplayError::Replayed`] when it was accepted
    /// before, checked in that order.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        if counter == RESERVED_COUNTER {
            return Err(ReplayError::ReservedCounter);
        }
        let Some(highest) = self.highest else {
            return Ok(());
        };
        if counter > highest {
            return Ok(());
        }
        if highest - counter >= REPLAY_WINDOW_SIZE {
            return Err(ReplayError::TooOld);
        }
        if self.is_marked(counter) {
            return Err(ReplayError::Replayed);
        }
        Ok(())
    }

    /// Checks `counter` again and records it as accepted, moving the window forward when
    /// the counter is above the highest one. Call it only after the frame authenticated.
    ///
    /// # Errors
    ///
    /// The same as [`check`](Self::check); on error the window is unchanged.
    pub fn accept(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        match self.highest {
            Some(highest) if counter <= highest => {}
            Some(highest) => self.advance(highest, counter),
            // A fresh bitmap is all zeros, so there is nothing to clear.
            None => self.highest = Some(counter),
        }
        self.mark(counter);
        Ok(())
    }

    /// Moves the highest counter from `highest` to `new_highest` and clears the bits of the
    /// counters that leave the window, because the new counters reuse them.
    fn advance(&mut self, highest: u64, new_highest: u64) {
        let distance = new_highest - highest;
        if distance >= REPLAY_WINDOW_SIZE {
            self.bitmap = [0; WORDS];
        } else {
            for counter in highest + 1..=new_highest {
                self.unmark(counter);
            }
        }
        self.highest = Some(new_highest);
    }

    fn is_marked(&self, counter: u64) -> bool {
        let (word, mask) = bit_position(counter);
        self.bitmap[word] & mask != 0
    }

    fn mark(&mut self, counter: u64) {
        let (word, mask) = bit_position(counter);
        self.bitmap[word] |= mask;
    }

    fn unmark(&mut self, counter: u64) {
        let (word, mask) = bit_position(counter);
        self.bitmap[word] &= !mask;
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

/// Returns the bitmap word index and the bit mask for `counter`.
fn bit_position(counter: u64) -> (usize, u64) {
    let bit = counter % REPLAY_WINDOW_SIZE;
    // `bit / 64` is below WORDS because `bit` is below REPLAY_WINDOW_SIZE.
    ((bit / 64) as usize, 1 << (bit % 64))
}

/// Number of counter bits carried on the wire.
const TRUNCATED_BITS: u32 = 32;
/// Distance between two counters with the same low 32 bits.
const TRUNCATED_SPAN: u64 = 1 << TRUNCATED_BITS;
const TRUNCATED_HALF_SPAN: u64 = TRUNCATED_SPAN / 2;
const TRUNCATED_MASK: u64 = TRUNCATED_SPAN - 1;

/// Reconstructs a 64-bit transport counter from its low 32 bits.
///
/// Returns the counter whose low 32 bits equal `truncated` and which is closest to the
/// expected next counter: `highest + 1`, or 0 while nothing was accepted. This is the
/// packet number decoding of QUIC (RFC 9000, Appendix A.3) with a 32-bit window, so the
/// result is exact whenever the real counter lies in `expected - 2^31 + 1 ..= expected + 2^31`.
///
/// Nothing wraps around: `highest + 1` saturates at 2^64 - 1, and when the closest
/// candidate would lie above 2^64 - 1 or below 0 the function returns the nearest one
/// that fits in a `u64` instead. The low 32 bits of the result always equal `truncated`.
/// A result that was not the sender's counter fails authentication, because the counter
/// is the AEAD nonce.
pub fn reconstruct_counter(truncated: u32, highest: Option<u64>) -> u64 {
    let expected = match highest {
        Some(highest) => highest.saturating_add(1),
        None => 0,
    };
    let candidate = (expected & !TRUNCATED_MASK) | u64::from(truncated);

    // The candidate is too far below the expected counter: the sender's counter crossed
    // into the next 2^32 block. `checked_sub` is `None` exactly when `expected - 2^31`
    // would be negative, in which case no candidate is that far below.
    let far_below = expected
        .checked_sub(TRUNCATED_HALF_SPAN)
        .is_some_and(|bound| candidate <= bound);
    if far_below {
        if let Some(next_block) = candidate.checked_add(TRUNCATED_SPAN) {
            return next_block;
        }
        return candidate;
    }

    // The candidate is too far above the expected counter: the sender's counter is still
    // in the previous block. `checked_add` is `None` only when `expected + 2^31` exceeds
    // 2^64 - 1, in which case no candidate is that far above.
    let far_above = expected
        .checked_add(TRUNCATED_HALF_SPAN)
        .is_some_and(|bound| candidate > bound);
    if far_above && candidate >= TRUNCATED_SPAN {
        return candidate - TRUNCATED_SPAN;
    }
    candidate
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::string::ToString;

    #[test]
    fn fresh_window_accepts_zero_once() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.highest(), None);
        assert_eq!(window.check(0), Ok(()));
        assert_eq!(window.accept(0), Ok(()));
        assert_eq!(window.highest(), Some(0));
        assert_eq!(window.check(0), Err(ReplayError::Replayed));
        assert_eq!(window.accept(0), Err(ReplayError::Replayed));
    }

    #[test]
    fn replayed_counter_is_rejected() {
        let mut window = ReplayWindow::new();
        for counter in 0..10 {
            assert_eq!(window.accept(counter), Ok(()));
        }
        for counter in 0..10 {
            assert_eq!(window.check(counter), Err(ReplayError::Replayed));
        }
        assert_eq!(window.check(10), Ok(()));
    }

    #[test]
    fn check_does_not_record() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.check(5), Ok(()));
        assert_eq!(window.check(5), Ok(()));
        assert_eq!(window.highest(), None);
        assert_eq!(window.accept(5), Ok(()));
        assert_eq!(window.check(5), Err(ReplayError::Replayed));
    }

    #[test]
    fn reserved_counter_is_always_rejected() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.check(u64::MAX), Err(ReplayError::ReservedCounter));
        assert_eq!(window.accept(u64::MAX), Err(ReplayError::ReservedCounter));
        assert_eq!(window.accept(u64::MAX - 1), Ok(()));
        assert_eq!(window.accept(u64::MAX), Err(ReplayError::ReservedCounter));
        assert_eq!(window.highest(), Some(u64::MAX - 1));
    }

    #[test]
    fn out_of_order_within_window_is_accepted() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.accept(200), Ok(()));
        assert_eq!(window.accept(199), Ok(()));
        assert_eq!(
            window.accept(200 - REPLAY_WINDOW_SIZE),
            Err(ReplayError::TooOld)
        );
        assert_eq!(window.accept(200 - REPLAY_WINDOW_SIZE + 1), Ok(()));
        assert_eq!(window.accept(100), Ok(()));
        assert_eq!(window.accept(150), Ok(()));
        assert_eq!(window.accept(150), Err(ReplayError::Replayed));
        assert_eq!(window.highest(), Some(200));
    }

    #[test]
    fn window_edge_is_exact() {
        let mut window = ReplayWindow::new();
        let highest = 1_000;
        assert_eq!(window.accept(highest), Ok(()));
        let oldest = highest - REPLAY_WINDOW_SIZE + 1;
        assert_eq!(window.check(oldest), Ok(()));
        assert_eq!(window.check(oldest - 1), Err(ReplayError::TooOld));
    }

    #[test]
    fn forged_huge_counter_does_not_move_window() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.accept(7), Ok(()));
        // A forged frame passes `check` but fails its tag, so `accept` is never called.
        assert_eq!(window.check(u64::MAX - 1), Ok(()));
        assert_eq!(window.highest(), Some(7));
        assert_eq!(window.accept(8), Ok(()));
        assert_eq!(window.accept(6), Ok(()));
    }

    #[test]
    fn advance_forgets_old_bits() {
        let mut window = ReplayWindow::new();
        assert_eq!(window.accept(3), Ok(()));
        // Counter 3 + WINDOW reuses the bit of counter 3.
        assert_eq!(window.accept(3 + REPLAY_WINDOW_SIZE), Ok(()));
        assert_eq!(window.check(3), Err(ReplayError::TooOld));
        assert_eq!(window.check(4), Ok(()));
        assert_eq!(window.accept(3 + 2 * REPLAY_WINDOW_SIZE - 1), Ok(()));
        assert_eq!(
            window.check(3 + REPLAY_WINDOW_SIZE),
            Err(ReplayError::Replayed)
        );
    }

    #[test]
    fn large_jump_clears_window() {
        let mut window = ReplayWindow::new();
        for counter in 0..REPLAY_WINDOW_SIZE {
            assert_eq!(window.accept(counter), Ok(()));
        }
        let far = 10 * REPLAY_WINDOW_SIZE + 5;
        assert_eq!(window.accept(far), Ok(()));
        for counter in far - REPLAY_WINDOW_SIZE + 1..far {
            assert_eq!(window.check(counter), Ok(()), "counter {counter}");
        }
    }

    #[test]
    fn fresh_window_rejects_nothing_but_reserved() {
        let window = ReplayWindow::default();
        for counter in [0, 1, 127, 128, u64::MAX - 1] {
            assert_eq!(window.check(counter), Ok(()), "counter {counter}");
        }
    }

    #[test]
    fn error_display_names_the_cause() {
        assert_eq!(
            ReplayError::Replayed.to_string(),
            "transport counter was already accepted"
        );
        assert_eq!(
            ReplayError::TooOld.to_string(),
            "transport counter is older than the replay window"
        );
        assert_eq!(
            ReplayError::ReservedCounter.to_string(),
            "transport counter 2^64-1 is reserved"
        );
    }

    #[test]
    fn reconstruct_without_history_counts_from_zero() {
        assert_eq!(reconstruct_counter(0, None), 0);
        assert_eq!(reconstruct_counter(5, None), 5);
        assert_eq!(reconstruct_counter(0x8000_0000, None), 0x8000_0000);
        // Above 2^31 the closest value would be negative, so the result stays in block 0.
        assert_eq!(reconstruct_counter(0x8000_0001, None), 0x8000_0001);
        assert_eq!(reconstruct_counter(u32::MAX, None), 0xffff_ffff);
    }

    #[test]
    fn reconstruct_crosses_block_upward() {
        let highest = 0x1_ffff_fffe;
        assert_eq!(
            reconstruct_counter(0xffff_ffff, Some(highest)),
            0x1_ffff_ffff
        );
        assert_eq!(reconstruct_counter(0, Some(highest)), 0x2_0000_0000);
        assert_eq!(reconstruct_counter(5, Some(highest)), 0x2_0000_0005);
    }

    #[test]
    fn reconstruct_crosses_block_downward() {
        let highest = 0x2_0000_0002;
        assert_eq!(
            reconstruct_counter(0xffff_fff0, Some(highest)),
            0x1_ffff_fff0
        );
        assert_eq!(reconstruct_counter(1, Some(highest)), 0x2_0000_0001);
    }

    #[test]
    fn reconstruct_half_window_boundaries() {
        let highest = 0x5_0000_0000 - 1;
        let expected = highest + 1;
        let above = expected + TRUNCATED_HALF_SPAN;
        assert_eq!(reconstruct_counter(above as u32, Some(highest)), above);
        let below = expected - TRUNCATED_HALF_SPAN + 1;
        assert_eq!(reconstruct_counter(below as u32, Some(highest)), below);
        // Exactly 2^31 below is ambiguous and resolves upward, as in RFC 9000.
        let ambiguous = expected - TRUNCATED_HALF_SPAN;
        assert_eq!(
            reconstruct_counter(ambiguous as u32, Some(highest)),
            ambiguous + TRUNCATED_SPAN
        );
    }

    #[test]
    fn reconstruct_saturates_at_top() {
        let top_block = !TRUNCATED_MASK;
        // Expected counter saturates at u64::MAX.
        assert_eq!(reconstruct_counter(u32::MAX, Some(u64::MAX)), u64::MAX);
        // The closest value lies in a block above u64::MAX, so the top block is used.
        assert_eq!(reconstruct_counter(0, Some(u64::MAX - 1)), top_block);
        assert_eq!(reconstruct_counter(3, Some(u64::MAX - 10)), top_block | 3);
        // Still decodes downward near the top.
        let highest = top_block + 2;
        assert_eq!(
            reconstruct_counter(0xffff_fff0, Some(highest)),
            top_block - TRUNCATED_SPAN + 0xffff_fff0
        );
    }
}
