//! Where user passwords come from. The static provider (config) is the only one for now;
//! Secrets Manager joins it as another source behind the same [`Credentials`] type.

pub mod static_provider;

use std::sync::Arc;

/// A user's login: the name and password Sluice checks clients against and uses for its
/// own backend connections. Never logged (Debug hides the password).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: Arc<str>,
    pub password: Arc<[u8]>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

pub use static_provider::Credentials;
