//! Key types. Secret types zeroize on drop and print nothing of their content.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{DH_LEN, KEY_LEN};

/// An X25519 public key. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; DH_LEN]);

impl PublicKey {
    /// Wraps 32 bytes as a public key.
    pub const fn from_bytes(bytes: [u8; DH_LEN]) -> Self {
        PublicKey(bytes)
    }

    /// Returns the key bytes.
    pub const fn as_bytes(&self) -> &[u8; DH_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PublicKey(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("..)")
    }
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps secret bytes; the caller should zeroize its own copy.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// Exposes the secret bytes, for a primitive or for sealed storage only.
            pub const fn expose_secret(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($name), "(redacted)"))
            }
        }
    };
}

secret_type!(
    /// An X25519 secret key (a static or an ephemeral key).
    SecretKey,
    DH_LEN
);
secret_type!(
    /// The output of X25519, before it is mixed into the chaining key.
    SharedSecret,
    DH_LEN
);
secret_type!(
    /// A ChaCha20-Poly1305 key, a chaining key or a pre-shared key.
    SymmetricKey,
    KEY_LEN
);
