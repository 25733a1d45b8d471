//! Password hashing with argon2id and a random 16-byte salt per hash, stored in the PHC
//! string format (`$argon2id$v=19$m=...`), which carries its own parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::config::PasswordCost;

/// Minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum password length, in bytes, so that the hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Length of a salt, in bytes (the PHC recommendation).
const SALT_LEN: usize = 16;

/// Failure of checking or hashing a password. Messages never contain the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password has {0} characters; use at least {MIN_PASSWORD_CHARS}")]
    TooShort(usize),
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is longer than {MAX_PASSWORD_BYTES} bytes; use a shorter one")]
    TooLong,
    /// The cost parameters are outside what argon2 accepts.
    #[error("invalid argon2 parameters: {0}")]
    InvalidCost(argon2::Error),
    /// Hashing failed, or a stored hash is not a valid PHC string.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Checks the length rules for a new password.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(chars));
    }
    Ok(())
}

/// Hashes a new password with argon2id after checking its length. Returns the PHC string.
pub fn hash_password(password: &str, cost: PasswordCost) -> Result<String, PasswordError> {
    check_new_password(password)?;
    let mut salt_bytes = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(PasswordError::Hash)?;
    let hash = hasher(cost)?
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Checks `password` against a stored PHC string, in constant time in the password.
/// Returns `Ok(false)` for a wrong password and an error for a malformed hash.
pub fn verify_password(password: &str, stored_hash: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(stored_hash).map_err(PasswordError::Hash)?;
    // The parameters come from the stored hash, not from the current configuration.
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(error) => Err(PasswordError::Hash(error)),
    }
}

/// Spends about the time of one verification, so that a sign-in for an unknown user name
/// takes as long as one with a wrong password.
pub fn spend_verification_time(cost: PasswordCost) {
    let filler = Zeroizing::new([0u8; 32]);
    if let Ok(argon2) = hasher(cost) {
        let mut output = [0u8; 32];
        // The result is discarded: only the time spent matters.
        let _ = argon2.hash_password_into(filler.as_ref(), &[0u8; SALT_LEN], &mut output);
    }
}

fn hasher(cost: PasswordCost) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(PasswordError::InvalidCost)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let cost = PasswordCost::insecure_for_tests();
        let hash = hash_password("correct horse battery", cost).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(verify_password("correct horse battery", &hash).unwrap());
        assert!(!verify_password("correct horse batterz", &hash).unwrap());
    }

    #[test]
    fn same_password_gets_different_salts() {
        let cost = PasswordCost::insecure_for_tests();
        let first = hash_password("correct horse battery", cost).unwrap();
        let second = hash_password("correct horse battery", cost).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn short_password_is_rejected() {
        let error = hash_password("elevenchars", PasswordCost::insecure_for_tests());
        assert!(matches!(error, Err(PasswordError::TooShort(11))));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Twelve two-byte characters pass, eleven do not.
        assert!(check_new_password(&"é".repeat(12)).is_ok());
        assert!(matches!(
            check_new_password(&"é".repeat(11)),
            Err(PasswordError::TooShort(11))
        ));
    }
}
