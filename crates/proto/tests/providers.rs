//! Properties that every provider must have, and, with feature `aws-lc`, byte-for-byte
//! agreement between `RustCrypto` and `AwsLc` on seeded random inputs.

use medtunnel_proto::crypto::{Cipher, CryptoError, CryptoProvider, SecretKey, SymmetricKey};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

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
    x25519_agreement_is_symmetric,
    seal_open_round_trip,
    open_with_other_key_fails,
);

/// Random cases per property. Each case runs an X25519 or a seal of up to 600 bytes.
const CASES: usize = 300;

fn random_array<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn random_vec(rng: &mut StdRng, max_len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; rng.gen_range(0..=max_len)];
    rng.fill_bytes(&mut bytes);
    bytes
}

fn x25519_agreement_is_symmetric<P: CryptoProvider>(provider: &P) {
    let mut rng = StdRng::seed_from_u64(0x7819_0001);
    for case in 0..CASES {
        let alice = SecretKey::from_bytes(random_array(&mut rng));
        let bob = SecretKey::from_bytes(random_array(&mut rng));

        let alice_shared = provider.x25519(&alice, &provider.x25519_public(&bob));
        let bob_shared = provider.x25519(&bob, &provider.x25519_public(&alice));

        let alice_shared = alice_shared.expect("public keys from the base point are valid");
        let bob_shared = bob_shared.expect("public keys from the base point are valid");
        assert_eq!(
            alice_shared.expose_secret(),
            bob_shared.expose_secret(),
            "case {case}"
        );
    }
}

fn seal_open_round_trip<P: CryptoProvider>(provider: &P) {
    let mut rng = StdRng::seed_from_u64(0x7819_0002);
    for case in 0..CASES {
        let cipher = provider.cipher(&SymmetricKey::from_bytes(random_array(&mut rng)));
        let counter: u64 = rng.gen();
        let ad = random_vec(&mut rng, 64);
        let plaintext = random_vec(&mut rng, 600);

        let mut buf = plaintext.clone();
        let tag = cipher.seal(counter, &ad, &mut buf);
        if plaintext.len() >= 16 {
            assert_ne!(buf, plaintext, "case {case}: ciphertext equals plaintext");
        }

        assert_eq!(
            cipher.open(counter, &ad, &mut buf, &tag),
            Ok(()),
            "case {case}"
        );
        assert_eq!(buf, plaintext, "case {case}");
    }
}

fn open_with_other_key_fails<P: CryptoProvider>(provider: &P) {
    let mut rng = StdRng::seed_from_u64(0x7819_0003);
    for case in 0..CASES {
        let sender = provider.cipher(&SymmetricKey::from_bytes(random_array(&mut rng)));
        let receiver = provider.cipher(&SymmetricKey::from_bytes(random_array(&mut rng)));
        let counter: u64 = rng.gen();
        let ad = random_vec(&mut rng, 64);
        let mut buf = random_vec(&mut rng, 600);

        let tag = sender.seal(counter, &ad, &mut buf);
        let opened = receiver.open(counter, &ad, &mut buf, &tag);

        assert_eq!(opened, Err(CryptoError::TagMismatch), "case {case}");
    }
}

/// Agreement of `RustCrypto` and `AwsLc` on random inputs.
#[cfg(feature = "aws-lc")]
mod cross_provider {
    use super::*;
    use medtunnel_proto::crypto::{AwsLc, PublicKey, RustCrypto};

    #[test]
    fn x25519_outputs_are_identical() {
        let mut rng = StdRng::seed_from_u64(0x7819_0101);
        for case in 0..CASES {
            let secret = SecretKey::from_bytes(random_array(&mut rng));
            // Any 32 bytes, so that non-canonical encodings, twist points and (rarely)
            // low-order points are covered as well as keys from the base point.
            let public = PublicKey::from_bytes(random_array(&mut rng));

            assert_eq!(
                RustCrypto.x25519_public(&secret),
                AwsLc.x25519_public(&secret),
                "case {case}"
            );
            let pure_rust = RustCrypto.x25519(&secret, &public);
            let aws_lc = AwsLc.x25519(&secret, &public);
            assert_eq!(
                pure_rust.as_ref().map(|shared| shared.expose_secret()),
                aws_lc.as_ref().map(|shared| shared.expose_secret()),
                "case {case}"
            );
        }
    }

    #[test]
    fn sealed_bytes_are_identical_and_interchangeable() {
        let mut rng = StdRng::seed_from_u64(0x7819_0102);
        for case in 0..CASES {
            let key = SymmetricKey::from_bytes(random_array(&mut rng));
            let pure_rust = RustCrypto.cipher(&key);
            let aws_lc = AwsLc.cipher(&key);
            let counter: u64 = rng.gen();
            let ad = random_vec(&mut rng, 64);
            let plaintext = random_vec(&mut rng, 600);

            let mut pure_rust_buf = plaintext.clone();
            let pure_rust_tag = pure_rust.seal(counter, &ad, &mut pure_rust_buf);
            let mut aws_lc_buf = plaintext.clone();
            let aws_lc_tag = aws_lc.seal(counter, &ad, &mut aws_lc_buf);
            assert_eq!(pure_rust_buf, aws_lc_buf, "case {case}: ciphertext");
            assert_eq!(pure_rust_tag, aws_lc_tag, "case {case}: tag");

            let opened = aws_lc.open(counter, &ad, &mut pure_rust_buf, &pure_rust_tag);
            assert_eq!(opened, Ok(()), "case {case}: AwsLc opens RustCrypto");
            assert_eq!(pure_rust_buf, plaintext, "case {case}");

            let opened = pure_rust.open(counter, &ad, &mut aws_lc_buf, &aws_lc_tag);
            assert_eq!(opened, Ok(()), "case {case}: RustCrypto opens AwsLc");
            assert_eq!(aws_lc_buf, plaintext, "case {case}");
        }
    }

    #[test]
    fn hash_outputs_are_identical() {
        let mut rng = StdRng::seed_from_u64(0x7819_0103);
        for case in 0..CASES {
            let key: [u8; 32] = random_array(&mut rng);
            let first = random_vec(&mut rng, 300);
            let second = random_vec(&mut rng, 300);
            let parts: [&[u8]; 2] = [&first, &second];

            assert_eq!(RustCrypto.hash(&parts), AwsLc.hash(&parts), "case {case}");
            assert_eq!(
                RustCrypto.hmac(&key, &parts),
                AwsLc.hmac(&key, &parts),
                "case {case}"
            );
            assert_eq!(
                RustCrypto.mac(&key, &first),
                AwsLc.mac(&key, &first),
                "case {case}"
            );
        }
    }
}
