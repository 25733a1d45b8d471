//! Bearer tokens: 32 random bytes, sent as 64 hex digits. Only their BLAKE2s-256 hash
//! is stored, so a copy of the database cannot be used to sign in.

use std::fmt;

use blake2::{Blake2s256, Digest};
use rand::RngCore;
use zeroize::Zeroizing;

/// Length of a token, in bytes.
const TOKEN_LEN: usize = 32;

/// A bearer token as issued to a client. `Debug` prints none of it.
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    /// Draws a fresh token from the operating system's RNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; TOKEN_LEN]);
        rand::rngs::OsRng.fill_bytes(bytes.as_mut());
        BearerToken(Zeroizing::new(hex::encode(bytes.as_ref())))
    }

    /// Returns the token text, for the sign-in response only.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Returns the hash under which the token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("BearerToken(..)")
    }
}

/// BLAKE2s-256 hash of a token's text, the stored and looked-up form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes the text of a presented token. Any text is accepted: an invalid one just
    /// matches no stored hash.
    pub fn of(token: &str) -> Self {
        TokenHash(Blake2s256::digest(token.as_bytes()).into())
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TokenHash(..)")
    }
}
