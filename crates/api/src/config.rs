//! Limits and costs of the API, with production defaults.

/// Settings of an [`crate::ApiState`].
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Lifetime of a bearer token, in seconds. Default: 3600.
    pub token_lifetime_s: i64,
    /// Failed sign-ins in a row after which an account is locked. Default: 5.
    pub max_failed_sign_ins: u32,
    /// Lock duration after the failure that reaches `max_failed_sign_ins`, in seconds.
    /// Each further failure doubles it. Default: 30.
    pub lockout_base_s: i64,
    /// Maximum lock duration, in seconds. Default: 3600.
    pub lockout_max_s: i64,
    /// Maximum break-glass duration, in minutes, and the default when the request gives
    /// none. Default: 60.
    pub break_glass_max_minutes: i64,
    /// Cost of the argon2id password hash.
    pub password_cost: PasswordCost,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token_lifetime_s: 3600,
            max_failed_sign_ins: 5,
            lockout_base_s: 30,
            lockout_max_s: 3600,
            break_glass_max_minutes: 60,
            password_cost: PasswordCost::default(),
        }
    }
}

impl ApiConfig {
    /// Returns how long an account stays locked after `failed_sign_ins` failures in a
    /// row, or `None` while the count is below the limit.
    pub fn lockout_s(&self, failed_sign_ins: u32) -> Option<i64> {
        let over = failed_sign_ins.checked_sub(self.max_failed_sign_ins)?;
        // 2^20 times the base is far above any sensible maximum, so clamping the
        // exponent there changes nothing but prevents an overflow.
        let factor = 1i64 << over.min(20);
        Some(
            self.lockout_base_s
                .saturating_mul(factor)
                .min(self.lockout_max_s),
        )
    }
}

/// Cost parameters of argon2id. A stored hash carries its own parameters, so changing
/// them affects only new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism.
    pub parallelism: u32,
}

impl Default for PasswordCost {
    /// Returns the argon2id minimum of the OWASP Password Storage Cheat Sheet (May 2023
    /// revision): 19 MiB of memory, 2 passes, parallelism 1.
    fn default() -> Self {
        PasswordCost {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordCost {
    /// Returns the cheapest parameters argon2 accepts. For tests only: such hashes are
    /// cheap to brute-force.
    pub const fn insecure_for_tests() -> Self {
        PasswordCost {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }
}
