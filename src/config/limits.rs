//! `[server]` keys that protect the login phase: how many connections may be logging in
//! at once, and the failed-login throttle (`[server.login_throttle]`).

use std::net::IpAddr;

use serde::Deserialize;

use super::{ConfigError, Seconds};

/// `[server.login_throttle]`: failed logins slow down, then temporarily refuse, their
/// address and their user name (`auth::throttle` has the rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginThrottleConfig {
    /// Failures (of an address, or of a user name) answered at once; later ones wait
    /// 0.1 s, doubling up to `max_delay`.
    #[serde(default = "default_delay_after")]
    pub delay_after: u32,
    #[serde(default = "default_max_delay")]
    pub max_delay: Seconds,
    /// Failures after which the address (or the user name, from addresses that failed)
    /// is refused for `block_seconds`.
    #[serde(default = "default_block_after")]
    pub block_after: u32,
    #[serde(default = "default_block_seconds")]
    pub block_seconds: Seconds,
    /// Seconds without a failure after which an address's or a user's count starts again.
    #[serde(default = "default_window")]
    pub window: Seconds,
    /// Addresses never blocked (their failures are still delayed): for a sidecar whose
    /// clients all connect from 127.0.0.1.
    #[serde(default)]
    pub exempt_addresses: Vec<IpAddr>,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            delay_after: default_delay_after(),
            max_delay: default_max_delay(),
            block_after: default_block_after(),
            block_seconds: default_block_seconds(),
            window: default_window(),
            exempt_addresses: Vec::new(),
        }
    }
}

impl LoginThrottleConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.block_after == 0 {
            return Err(ConfigError::Invalid(
                "server.login_throttle.block_after must be at least 1".into(),
            ));
        }
        if self.window.get().is_zero() {
            return Err(ConfigError::Invalid(
                "server.login_throttle.window must be greater than 0".into(),
            ));
        }
        Ok(())
    }
}

pub(super) fn default_max_handshakes() -> usize {
    2048
}
pub(super) fn default_max_handshakes_per_address() -> usize {
    256
}
fn default_delay_after() -> u32 {
    3
}
fn default_max_delay() -> Seconds {
    Seconds::from_secs(5)
}
fn default_block_after() -> u32 {
    20
}
fn default_block_seconds() -> Seconds {
    Seconds::from_secs(60)
}
fn default_window() -> Seconds {
    Seconds::from_secs(300)
}
