//! Wycheproof vectors for X25519 and ChaCha20-Poly1305, run against every provider.
//!
//! Every X25519 case goes through the provider. A ChaCha20-Poly1305 case goes through
//! the provider when its 96-bit nonce has the Noise layout (four zero bytes, then a
//! little-endian counter). Otherwise it goes through the crate behind that provider
//! (`chacha20poly1305` for `RustCrypto`, `aws-lc-rs` for `AwsLc`) with the raw nonce.

use medtunnel_proto::crypto::{
    Cipher, CryptoError, CryptoProvider, PublicKey, SecretKey, SymmetricKey, TAG_LEN,
};
use wycheproof::TestResult;

mod rustcrypto {
    use medtunnel_proto::crypto::RustCrypto;

    #[test]
    fn x25519() {
        super::check_x25519(&RustCrypto);
    }

    #[test]
    fn chacha20_poly1305() {
        super::check_chacha20_poly1305(&RustCrypto, &super::raw::ChaCha20Poly1305Crate);
    }
}

#[cfg(feature = "aws-lc")]
mod awslc {
    use medtunnel_proto::crypto::AwsLc;

    #[test]
    fn x25519() {
        super::check_x25519(&AwsLc);
    }

    #[test]
    fn chacha20_poly1305() {
        super::check_chacha20_poly1305(&AwsLc, &super::raw::AwsLcRs);
    }
}

/// Checks every case of `x25519_test.json`.
///
/// RFC 7748 requires accepting twist points and non-canonical encodings, so both
/// providers must return the expected secret for every case whose secret is not zero,
/// whether Wycheproof labels it "valid" or "acceptable". An all-zero secret comes from
/// a low-order public key and must end in [`CryptoError::LowOrderPoint`].
fn check_x25519<P: CryptoProvider>(provider: &P) {
    let test_set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519)
        .expect("bundled X25519 vectors load");
    let mut checked = 0;
    let mut low_order = 0;

    for group in &test_set.test_groups {
        for test in &group.tests {
            let id = test.tc_id;
            let secret = SecretKey::from_bytes(to_array(&test.private_key, id));
            let public = PublicKey::from_bytes(to_array(&test.public_key, id));
            let expected: [u8; 32] = to_array(&test.shared_secret, id);

            let result = provider.x25519(&secret, &public);

            if expected == [0u8; 32] {
                assert_eq!(
                    result.err(),
                    Some(CryptoError::LowOrderPoint),
                    "case {id}: a zero shared secret must be rejected ({})",
                    test.comment
                );
                low_order += 1;
            } else {
                assert_ne!(
                    test.result,
                    TestResult::Invalid,
                    "case {id}: no rule for it"
                );
                let shared = result.unwrap_or_else(|error| {
                    panic!("case {id}: rejected with {error:?} ({})", test.comment)
                });
                assert_eq!(
                    shared.expose_secret(),
                    &expected,
                    "case {id}: {}",
                    test.comment
                );
            }
            checked += 1;
        }
    }

    assert_eq!(checked, test_set.number_of_tests);
    assert!(low_order > 0, "the vectors contain low-order public keys");
}

/// Checks every ChaCha20-Poly1305 case whose group has a 256-bit key and a 128-bit tag.
/// Cases with a nonce of other than 96 bits are all "invalid": neither the Noise nonce
/// nor the crates' nonce types can express them, so they are counted and not run.
fn check_chacha20_poly1305<P: CryptoProvider>(provider: &P, raw: &dyn raw::RawAead) {
    let test_set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305)
        .expect("bundled ChaCha20-Poly1305 vectors load");
    let mut through_provider = 0;
    let mut through_crate = 0;
    let mut wrong_nonce_size = 0;

    for group in &test_set.test_groups {
        assert_eq!(group.key_size, 256);
        assert_eq!(group.tag_size, 128);
        for test in &group.tests {
            let case = AeadCase::from_test(test);
            if group.nonce_size != 96 {
                assert_eq!(test.result, TestResult::Invalid, "case {}", case.id);
                wrong_nonce_size += 1;
                continue;
            }
            match noise_counter(&case.nonce) {
                Some(counter) => {
                    check_provider_case(provider, counter, &case);
                    through_provider += 1;
                }
                None => {
                    check_raw_case(raw, &case);
                    through_crate += 1;
                }
            }
        }
    }

    let total = through_provider + through_crate + wrong_nonce_size;
    assert_eq!(total, test_set.number_of_tests);
    assert!(
        through_provider > 0,
        "some vectors use the Noise nonce layout"
    );
    assert!(through_crate > 0, "some vectors use other nonces");
}

/// One AEAD case with its expectation: `valid` is false for a case whose ciphertext, tag
/// or associated data was modified, so that opening must fail.
struct AeadCase {
    id: usize,
    key: [u8; 32],
    nonce: Vec<u8>,
    ad: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
    valid: bool,
}

impl AeadCase {
    fn from_test(test: &wycheproof::aead::Test) -> Self {
        AeadCase {
            id: test.tc_id,
            key: to_array(&test.key, test.tc_id),
            nonce: test.nonce.to_vec(),
            ad: test.aad.to_vec(),
            plaintext: test.pt.to_vec(),
            ciphertext: test.ct.to_vec(),
            tag: test.tag.to_vec(),
            valid: test.result != TestResult::Invalid,
        }
    }

    /// Returns the tag as a fixed array, or `None` for a truncated or extended tag.
    fn tag_array(&self) -> Option<[u8; TAG_LEN]> {
        self.tag.as_slice().try_into().ok()
    }
}

/// Returns the Noise counter whose nonce equals `nonce`, if `nonce` has that layout.
fn noise_counter(nonce: &[u8]) -> Option<u64> {
    let (zeros, counter) = nonce.split_at_checked(4)?;
    if zeros != [0u8; 4] {
        return None;
    }
    Some(u64::from_le_bytes(counter.try_into().ok()?))
}

fn check_provider_case<P: CryptoProvider>(provider: &P, counter: u64, case: &AeadCase) {
    let id = case.id;
    let cipher = provider.cipher(&SymmetricKey::from_bytes(case.key));

    if case.valid {
        let mut buf = case.plaintext.clone();
        let tag = cipher.seal(counter, &case.ad, &mut buf);
        assert_eq!(buf, case.ciphertext, "case {id}: ciphertext");
        assert_eq!(tag.as_slice(), case.tag.as_slice(), "case {id}: tag");
    }

    let Some(tag) = case.tag_array() else {
        assert!(!case.valid, "case {id}: a valid case has a 16-byte tag");
        return;
    };
    let mut buf = case.ciphertext.clone();
    let opened = cipher.open(counter, &case.ad, &mut buf, &tag);
    if case.valid {
        assert_eq!(opened, Ok(()), "case {id}");
        assert_eq!(buf, case.plaintext, "case {id}: plaintext");
    } else {
        assert_eq!(opened, Err(CryptoError::TagMismatch), "case {id}");
    }
}

fn check_raw_case(raw: &dyn raw::RawAead, case: &AeadCase) {
    let id = case.id;
    let nonce: [u8; 12] = to_array(&case.nonce, id);

    if case.valid {
        let mut buf = case.plaintext.clone();
        let tag = raw.seal(&case.key, &nonce, &case.ad, &mut buf);
        assert_eq!(buf, case.ciphertext, "case {id}: ciphertext");
        assert_eq!(tag.as_slice(), case.tag.as_slice(), "case {id}: tag");
    }

    let Some(tag) = case.tag_array() else {
        assert!(!case.valid, "case {id}: a valid case has a 16-byte tag");
        return;
    };
    let mut buf = case.ciphertext.clone();
    let opened = raw.open(&case.key, &nonce, &case.ad, &mut buf, &tag);
    if case.valid {
        assert!(opened, "case {id}: open failed");
        assert_eq!(buf, case.plaintext, "case {id}: plaintext");
    } else {
        assert!(!opened, "case {id}: a modified message was opened");
    }
}

fn to_array<const N: usize>(bytes: &[u8], id: usize) -> [u8; N] {
    bytes
        .try_into()
        .unwrap_or_else(|_| panic!("case {id}: expected {N} bytes, found {}", bytes.len()))
}

/// ChaCha20-Poly1305 with a raw 96-bit nonce, through the crates behind the providers.
mod raw {
    use medtunnel_proto::crypto::TAG_LEN;

    /// Seal and open with an arbitrary 96-bit nonce.
    pub trait RawAead {
        /// Encrypts `buf` in place and returns the tag.
        fn seal(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN];

        /// Decrypts `buf` in place and returns whether the tag verified.
        fn open(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> bool;
    }

    /// The `chacha20poly1305` crate, used by `RustCrypto`.
    pub struct ChaCha20Poly1305Crate;

    impl RawAead for ChaCha20Poly1305Crate {
        fn seal(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN] {
            use chacha20poly1305::aead::{AeadInPlace, KeyInit};

            let aead = chacha20poly1305::ChaCha20Poly1305::new(key.into());
            let tag = aead
                .encrypt_in_place_detached(nonce.into(), ad, buf)
                .expect("message fits the keystream");
            tag.into()
        }

        fn open(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> bool {
            use chacha20poly1305::aead::{AeadInPlace, KeyInit};

            let aead = chacha20poly1305::ChaCha20Poly1305::new(key.into());
            aead.decrypt_in_place_detached(nonce.into(), ad, buf, tag.into())
                .is_ok()
        }
    }

    /// The `aws-lc-rs` crate, used by `AwsLc`.
    #[cfg(feature = "aws-lc")]
    pub struct AwsLcRs;

    #[cfg(feature = "aws-lc")]
    impl RawAead for AwsLcRs {
        fn seal(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN] {
            use aws_lc_rs::aead::{Aad, Nonce};

            let tag = less_safe_key(key)
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(ad),
                    buf,
                )
                .expect("message fits the keystream");
            tag.as_ref().try_into().expect("16-byte tag")
        }

        fn open(
            &self,
            key: &[u8; 32],
            nonce: &[u8; 12],
            ad: &[u8],
            buf: &mut [u8],
            tag: &[u8; TAG_LEN],
        ) -> bool {
            use aws_lc_rs::aead::{Aad, Nonce};

            less_safe_key(key)
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(ad),
                    tag,
                    buf,
                )
                .is_ok()
        }
    }

    #[cfg(feature = "aws-lc")]
    fn less_safe_key(key: &[u8; 32]) -> aws_lc_rs::aead::LessSafeKey {
        use aws_lc_rs::aead::{LessSafeKey, UnboundKey, CHACHA20_POLY1305};

        let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key");
        LessSafeKey::new(key)
    }
}
