//! Time-based one-time passwords (TOTP, RFC 6238) with HMAC-SHA-1, the variant that
//! authenticator apps support: 30-second steps, 6 digits.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use zeroize::Zeroizing;

/// Length of a step, in seconds (RFC 6238 default X = 30).
pub const STEP_S: i64 = 30;
/// Number of digits of a code.
pub const DIGITS: u32 = 6;
/// Steps before and after the current one whose codes are also accepted, to allow for
/// clock drift between the server and the authenticator.
pub const TOLERANCE_STEPS: i64 = 1;
/// Length of a generated secret, in bytes: the HMAC-SHA-1 output length, as RFC 4226
/// section 4 recommends.
pub const SECRET_LEN: usize = 20;
/// Issuer shown by authenticator apps.
const ISSUER: &str = "medtunnel";

/// A shared TOTP secret. `Debug` prints no byte of it, and the bytes are zeroed on drop.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl TotpSecret {
    /// Draws a fresh secret of [`SECRET_LEN`] bytes from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    /// Wraps stored secret bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(Zeroizing::new(bytes))
    }

    /// Returns the raw secret, for storage.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Returns the secret in unpadded base32, the form authenticator apps accept.
    pub fn expose_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    /// Returns the `otpauth://` URI that provisions an authenticator app, usually shown
    /// as a QR code. It contains the secret.
    ///
    /// `username` must be URI-safe, which [`crate::admin::check_username`] ensures.
    pub fn provisioning_uri(&self, username: &str) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "otpauth://totp/{ISSUER}:{username}?secret={}&issuer={ISSUER}\
             &algorithm=SHA1&digits={DIGITS}&period={STEP_S}",
            self.expose_base32().as_str()
        ))
    }

    /// Returns the code of the step that contains `time_s`.
    pub fn code_at(&self, time_s: i64) -> String {
        let value = hotp(&self.0, step_of(time_s), DIGITS);
        format!("{value:0width$}", width = DIGITS as usize)
    }

    /// Checks `code` against the steps around `now_s` and returns the matching step.
    ///
    /// Returns `None` for a wrong code, for anything but exactly [`DIGITS`] ASCII
    /// digits, and for a step at or before `last_used_step`, so that a code is accepted
    /// once only (RFC 6238 section 5.2).
    pub fn verify(&self, code: &str, now_s: i64, last_used_step: Option<i64>) -> Option<i64> {
        let well_formed = code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit());
        if !well_formed {
            return None;
        }
        let current = step_of(now_s);
        let mut matched = None;
        // Every candidate step is computed, so the time taken does not reveal which
        // step matched.
        for step in current - TOLERANCE_STEPS..=current + TOLERANCE_STEPS {
            let expected = format!(
                "{:0width$}",
                hotp(&self.0, step, DIGITS),
                width = DIGITS as usize
            );
            let fresh = last_used_step.is_none_or(|last| step > last);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) && fresh {
                matched = Some(step);
            }
        }
        matched
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TotpSecret(..)")
    }
}

/// Returns the HOTP value (RFC 4226 section 5.3) of `counter` with `digits` digits.
///
/// `secret` may have any length, because HMAC accepts keys of every length.
pub fn hotp(secret: &[u8], counter: i64, digits: u32) -> u32 {
    // Step 1: HS = HMAC-SHA-1(K, C), with C as an 8-byte big-endian counter.
    // HMAC hashes or pads a key of any length, so creating the MAC cannot fail.
    let mut mac =
        <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of every length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();

    // Step 2: dynamic truncation. The low 4 bits of the last byte give an offset, and
    // the 31 bits at that offset, without the sign bit, are the value.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let bytes = [
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ];
    let truncated = u32::from_be_bytes(bytes);

    // Step 3: reduce to the number of digits.
    truncated % 10u32.pow(digits)
}

/// Returns the TOTP step number of `time_s`: T = floor((time - T0) / X) with T0 = 0.
pub fn step_of(time_s: i64) -> i64 {
    time_s.div_euclid(STEP_S)
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Encodes bytes in base32 with the RFC 4648 section 6 alphabet, without `=` padding.
pub fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut output = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            output.push(char::from(ALPHABET[((buffer >> bits) & 0x1f) as usize]));
        }
        // Keep only the bits not yet written, so the buffer never overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        // The last group is padded with zero bits on the right.
        output.push(char::from(
            ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize],
        ));
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 secret of RFC 6238 Appendix B: the ASCII string "12345678901234567890".
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn hotp_matches_rfc6238_appendix_b() {
        // (time in seconds, 8-digit TOTP with SHA-1) from RFC 6238 Appendix B.
        let vectors = [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ];
        for (time_s, expected) in vectors {
            assert_eq!(
                hotp(RFC_SECRET, step_of(time_s), 8),
                expected,
                "time {time_s}"
            );
        }
    }

    #[test]
    fn six_digit_code_is_low_digits_of_vector() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(secret.code_at(59), "287082");
        assert_eq!(secret.code_at(1111111109), "081804");
        assert_eq!(secret.code_at(20000000000), "353130");
    }

    #[test]
    fn hotp_matches_rfc4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(
                hotp(RFC_SECRET, counter as i64, 6),
                value,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn verify_accepts_one_step_of_drift() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let now = 1_111_111_111;
        assert!(secret
            .verify(&secret.code_at(now - STEP_S), now, None)
            .is_some());
        assert!(secret
            .verify(&secret.code_at(now + STEP_S), now, None)
            .is_some());
        assert!(secret
            .verify(&secret.code_at(now - 2 * STEP_S), now, None)
            .is_none());
        assert!(secret
            .verify(&secret.code_at(now + 2 * STEP_S), now, None)
            .is_none());
    }

    #[test]
    fn verify_rejects_reused_step() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        let now = 1_111_111_111;
        let step = secret.verify(&secret.code_at(now), now, None);
        assert_eq!(step, Some(step_of(now)));
        assert_eq!(secret.verify(&secret.code_at(now), now, step), None);
    }

    #[test]
    fn verify_rejects_malformed_codes() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        for code in ["", "12345", "1234567", "12a456", " 28708", "２８７０８２"] {
            assert_eq!(secret.verify(code, 59, None), None, "code {code:?}");
        }
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 section 10, without the padding.
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base32_encode(input.as_bytes()), expected, "input {input:?}");
        }
    }

    #[test]
    fn debug_hides_secret() {
        let secret = TotpSecret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
    }
}
