//! BLAKE2s-256, keyed BLAKE2s-128 and HMAC-BLAKE2s known answers, run against every
//! provider.
//!
//! RFC 7693 gives one unkeyed digest (Appendix B) and a self-test over keyed and unkeyed
//! digests of several lengths (Appendix E). The self-test uses key lengths that the
//! provider interface does not take, so it runs against the `blake2` crate behind both
//! providers. The keyed BLAKE2s-128 and HMAC-BLAKE2s answers below were computed with
//! CPython 3.11 `hashlib.blake2s` and `hmac`, an implementation independent of ours.

use medtunnel_proto::crypto::{CryptoProvider, HASH_LEN};

/// Runs each check once per provider: `RustCrypto` always, `AwsLc` with feature `aws-lc`.
macro_rules! provider_tests {
    ($($name:ident),* $(,)?) => {
        mod rustcrypto {
            $(#[test]
            fn $name() {
                super::$name(&medtunnel_proto::crypto::RustCrypto);
            })*
        }

        #[cfg(feature = "aws-lc")]
        mod awslc {
            $(#[test]
            fn $name() {
                super::$name(&medtunnel_proto::crypto::AwsLc);
            })*
        }
    };
}

provider_tests!(
    hash_of_abc,
    hash_ignores_part_boundaries,
    mac_known_answers,
    hmac_known_answers,
    hmac_matches_rfc2104_construction,
    hmac_ignores_part_boundaries,
);

/// The key of the keyed test vectors: the bytes 0x00 to 0x1f.
fn sequence_key() -> [u8; HASH_LEN] {
    core::array::from_fn(|i| i as u8)
}

/// Messages of the keyed test vectors, by name. They cover an empty input, a short one, one
/// exactly one 64-byte block long, one a byte longer and one of many blocks.
fn message(name: &str) -> Vec<u8> {
    match name {
        "empty" => Vec::new(),
        "abc" => b"abc".to_vec(),
        "0..64" => (0..64).collect(),
        "0..65" => (0..65).collect(),
        "1000 bytes" => (0..1000u32).map(|i| (i % 251) as u8).collect(),
        _ => unreachable!("unknown message {name}"),
    }
}

/// RFC 7693, Appendix B: BLAKE2s-256("abc").
fn hash_of_abc<P: CryptoProvider>(provider: &P) {
    let digest = provider.hash(&[b"abc"]);
    assert_eq!(
        hex::encode(digest),
        "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"
    );
}

fn hash_ignores_part_boundaries<P: CryptoProvider>(provider: &P) {
    let whole = message("1000 bytes");
    let (head, tail) = whole.split_at(333);
    let (middle, tail) = tail.split_at(64);

    let split = provider.hash(&[head, &[], middle, tail]);

    assert_eq!(split, provider.hash(&[&whole]));
    assert_eq!(provider.hash(&[]), provider.hash(&[b""]));
}

fn mac_known_answers<P: CryptoProvider>(provider: &P) {
    let cases = [
        ("empty", "9536f9b267655743dee97b8a670f9f53"),
        ("abc", "61ba5f165c194692e09d12520cc4c74a"),
        ("0..64", "f1efa90d2547036841ecd3627fafbc36"),
        ("0..65", "811ff8686d23a435ecbd0bdafcd27b1b"),
        ("1000 bytes", "8a0c93d51ede746600ef0dd2b32d6fb3"),
    ];
    for (name, expected) in cases {
        let tag = provider.mac(&sequence_key(), &message(name));
        assert_eq!(hex::encode(tag), expected, "message {name}");
    }
}

fn hmac_known_answers<P: CryptoProvider>(provider: &P) {
    let cases = [
        (
            "empty",
            "e2641d24dfa8dd89e8cb77f1cdc77d8c006e5bebdfc4d6a3a3a6f8d5b7586fb0",
        ),
        (
            "abc",
            "82623be5bc0a391b24dce53e67d028eff92d586de0485ac37822e597d049c74f",
        ),
        (
            "0..64",
            "3b35e945d05ac982850451ac8b6cdfffb98e56f50b95272fab665de081691056",
        ),
        (
            "0..65",
            "e0bf9ad5f46ae7cb59268a338f24391ad8cc125148746599da55803c3d80c2e2",
        ),
        (
            "1000 bytes",
            "675c8f2171023f3de48da7d5c41e7902a17454058c95c882eb3c7f1d62cb96cc",
        ),
    ];
    for (name, expected) in cases {
        let tag = provider.hmac(&sequence_key(), &[&message(name)]);
        assert_eq!(hex::encode(tag), expected, "message {name}");
    }
}

/// HMAC per RFC 2104 with BLAKE2s's 64-byte block, built from the provider's own hash:
/// H((K ^ opad) || H((K ^ ipad) || m)), the key padded with zeros to one block.
fn hmac_matches_rfc2104_construction<P: CryptoProvider>(provider: &P) {
    const BLOCK_LEN: usize = 64;
    let key = [0xa5u8; HASH_LEN];
    let data = message("1000 bytes");

    let mut inner_pad = [0x36u8; BLOCK_LEN];
    let mut outer_pad = [0x5cu8; BLOCK_LEN];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let inner = provider.hash(&[&inner_pad, &data]);
    let expected = provider.hash(&[&outer_pad, &inner]);

    assert_eq!(provider.hmac(&key, &[&data]), expected);
}

fn hmac_ignores_part_boundaries<P: CryptoProvider>(provider: &P) {
    let key = sequence_key();
    let whole = message("1000 bytes");
    let (head, tail) = whole.split_at(65);

    let split = provider.hmac(&key, &[head, &[], tail]);

    assert_eq!(split, provider.hmac(&key, &[&whole]));
}

/// RFC 7693, Appendix E: the BLAKE2s self-test. It hashes the unkeyed and keyed digests
/// of generated messages for output lengths 16, 20, 28 and 32 bytes, with the key as
/// long as the output, and compares the BLAKE2s-256 digest of all of them.
#[test]
fn rfc7693_self_test_blake2_crate() {
    use blake2::digest::consts::{U16, U20, U28, U32};
    use blake2::digest::{Digest, Mac};
    use blake2::{Blake2s256, Blake2sMac};

    let mut grand = Blake2s256::new();
    for output_len in [16usize, 20, 28, 32] {
        for input_len in [0usize, 3, 64, 65, 255, 1024] {
            let input = self_test_sequence(input_len, input_len as u32);
            let key = self_test_sequence(output_len, output_len as u32);
            let (unkeyed, keyed) = match output_len {
                16 => digest_pair::<U16>(&key, &input),
                20 => digest_pair::<U20>(&key, &input),
                28 => digest_pair::<U28>(&key, &input),
                _ => digest_pair::<U32>(&key, &input),
            };
            Digest::update(&mut grand, &unkeyed);
            Digest::update(&mut grand, &keyed);
        }
    }

    assert_eq!(
        hex::encode(grand.finalize()),
        "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe"
    );

    /// Returns the unkeyed and the keyed BLAKE2s digest of `input`, of `N` bytes each.
    fn digest_pair<N>(key: &[u8], input: &[u8]) -> (Vec<u8>, Vec<u8>)
    where
        N: blake2::digest::generic_array::ArrayLength<u8>
            + blake2::digest::typenum::IsLessOrEqual<U32>,
        blake2::digest::typenum::LeEq<N, U32>: blake2::digest::typenum::NonZero,
    {
        use blake2::digest::{Update, VariableOutput};

        let mut unkeyed = blake2::Blake2sVar::new(N::USIZE).expect("length 1..=32");
        Update::update(&mut unkeyed, input);
        let mut unkeyed_digest = vec![0u8; N::USIZE];
        unkeyed
            .finalize_variable(&mut unkeyed_digest)
            .expect("buffer has the requested length");

        let mut keyed = <Blake2sMac<N> as Mac>::new_from_slice(key).expect("key of 1..=32 bytes");
        Mac::update(&mut keyed, input);
        (unkeyed_digest, keyed.finalize().into_bytes().to_vec())
    }
}

/// The RFC 7693 self-test message generator: a Fibonacci sequence modulo 2^32 seeded
/// with `0xDEAD4BAD * seed`, from which each byte is the top 8 bits of one term.
fn self_test_sequence(len: usize, seed: u32) -> Vec<u8> {
    let mut a = 0xDEAD_4BADu32.wrapping_mul(seed);
    let mut b = 1u32;
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let t = a.wrapping_add(b);
        a = b;
        b = t;
        out.push((t >> 24) as u8);
    }
    out
}
