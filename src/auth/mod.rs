//! Password authentication plugins, for checking clients and for logging in to backends.

pub mod caching_sha2;
pub mod iam;
pub mod native;
pub mod throttle;

use subtle::ConstantTimeEq;

pub const MYSQL_NATIVE_PASSWORD: &[u8] = b"mysql_native_password";
pub const CACHING_SHA2_PASSWORD: &[u8] = b"caching_sha2_password";
pub const MYSQL_CLEAR_PASSWORD: &[u8] = b"mysql_clear_password";

/// The authentication plugins Sluice speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plugin {
    Native,
    CachingSha2,
    Clear,
}

impl Plugin {
    pub fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            MYSQL_NATIVE_PASSWORD => Some(Self::Native),
            CACHING_SHA2_PASSWORD => Some(Self::CachingSha2),
            MYSQL_CLEAR_PASSWORD => Some(Self::Clear),
            _ => None,
        }
    }

    pub fn name(self) -> &'static [u8] {
        match self {
            Self::Native => MYSQL_NATIVE_PASSWORD,
            Self::CachingSha2 => CACHING_SHA2_PASSWORD,
            Self::Clear => MYSQL_CLEAR_PASSWORD,
        }
    }
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
