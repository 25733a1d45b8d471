//! X25519 known answers from RFC 7748, run against every provider.

use medtunnel_proto::crypto::{CryptoError, CryptoProvider, PublicKey, SecretKey};

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
    scalar_multiplication_vectors,
    iterated_once,
    iterated_one_thousand_times,
    diffie_hellman_vectors,
    low_order_points_rejected,
);

fn bytes32(hex_text: &str) -> [u8; 32] {
    let bytes = hex::decode(hex_text).expect("test vector is valid hex");
    bytes.try_into().expect("test vector has 32 bytes")
}

fn x25519<P: CryptoProvider>(provider: &P, scalar: [u8; 32], u: [u8; 32]) -> [u8; 32] {
    let shared = provider
        .x25519(&SecretKey::from_bytes(scalar), &PublicKey::from_bytes(u))
        .expect("RFC 7748 vectors have non-zero outputs");
    *shared.expose_secret()
}

/// RFC 7748, section 5.2: the two single scalar multiplications. The second u-coordinate
/// has its top bit set, which X25519 must ignore.
fn scalar_multiplication_vectors<P: CryptoProvider>(provider: &P) {
    let cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ];
    for (scalar, u, expected) in cases {
        let output = x25519(provider, bytes32(scalar), bytes32(u));
        assert_eq!(hex::encode(output), expected, "scalar {scalar}");
    }
}

/// Applies the RFC 7748 section 5.2 iteration `iterations` times: starting from
/// k = u = 9, each round sets k to X25519(k, u) and u to the old k.
fn iterate<P: CryptoProvider>(provider: &P, iterations: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[0] = 9;
    let mut u = k;
    for _ in 0..iterations {
        let next = x25519(provider, k, u);
        u = k;
        k = next;
    }
    k
}

fn iterated_once<P: CryptoProvider>(provider: &P) {
    let k = iterate(provider, 1);
    assert_eq!(
        hex::encode(k),
        "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
    );
}

// The 1,000,000-iteration vector of the same section (7c3911e0...665424) takes minutes
// in a debug build, so it is not run here.
fn iterated_one_thousand_times<P: CryptoProvider>(provider: &P) {
    let k = iterate(provider, 1_000);
    assert_eq!(
        hex::encode(k),
        "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"
    );
}

/// RFC 7748, section 6.1: Alice's and Bob's key pairs and their shared secret.
fn diffie_hellman_vectors<P: CryptoProvider>(provider: &P) {
    let alice_secret = SecretKey::from_bytes(bytes32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let bob_secret = SecretKey::from_bytes(bytes32(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    let expected_shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

    let alice_public = provider.x25519_public(&alice_secret);
    let bob_public = provider.x25519_public(&bob_secret);
    assert_eq!(
        hex::encode(alice_public.as_bytes()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        hex::encode(bob_public.as_bytes()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );

    let alice_shared = provider
        .x25519(&alice_secret, &bob_public)
        .expect("valid key pair");
    let bob_shared = provider
        .x25519(&bob_secret, &alice_public)
        .expect("valid key pair");
    assert_eq!(hex::encode(alice_shared.expose_secret()), expected_shared);
    assert_eq!(hex::encode(bob_shared.expose_secret()), expected_shared);
}

/// Points of small order (0, 1, p - 1 and a point of order 8) make every scalar produce the all-zero output, which
/// both providers must reject (RFC 7748, section 6.1, last paragraph).
fn low_order_points_rejected<P: CryptoProvider>(provider: &P) {
    let secret = SecretKey::from_bytes(bytes32(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let low_order_points = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ];
    for point in low_order_points {
        let result = provider.x25519(&secret, &PublicKey::from_bytes(bytes32(point)));
        assert_eq!(
            result.err(),
            Some(CryptoError::LowOrderPoint),
            "point {point}"
        );
    }
}
