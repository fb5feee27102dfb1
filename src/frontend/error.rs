//! Errors that end a client session or its setup.

use crate::auth::throttle::Blocked;
use crate::backend::{BackendError, ConnectionError};
use crate::protocol::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("TLS handshake with the client failed: {0}")]
    Tls(std::io::Error),
    #[error("client did not use TLS but TLS is required")]
    TlsRequired,
    #[error("client sent SSLRequest but TLS is not configured")]
    TlsUnavailable,
    #[error("access denied")]
    AccessDenied,
    #[error("the user's credentials cannot be read")]
    CredentialsUnavailable,
    #[error("too many client connections")]
    TooManyConnections,
    #[error("the server refused the client's default schema")]
    SchemaRefused,
    #[error("login refused after too many failures: {0:?}")]
    Blocked(Blocked),
    #[error("backend connection lost mid-response: {0}")]
    Backend(#[from] BackendError),
    #[error("the backend holding the session's transaction or pinned state failed")]
    SessionStateLost,
}

impl From<ConnectionError> for FrontendError {
    fn from(e: ConnectionError) -> Self {
        Self::Backend(e.into())
    }
}

/// A failed read or write on the client's connection.
impl From<std::io::Error> for FrontendError {
    fn from(e: std::io::Error) -> Self {
        Self::Protocol(e.into())
    }
}

impl FrontendError {
    /// Metric label for a failed connection setup.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Protocol(ProtocolError::Closed) => "client_closed",
            Self::Protocol(ProtocolError::TooLarge { .. }) => "packet_too_large",
            Self::Protocol(_) => "protocol",
            Self::Tls(_) | Self::TlsUnavailable => "tls",
            Self::TlsRequired => "tls_required",
            Self::AccessDenied => "auth",
            Self::CredentialsUnavailable => "credentials_unavailable",
            Self::TooManyConnections => "too_many_connections",
            Self::SchemaRefused => "schema",
            Self::Blocked(Blocked::Address { .. }) => "address_blocked",
            Self::Blocked(Blocked::User { .. }) => "user_blocked",
            Self::Backend(_) | Self::SessionStateLost => "backend",
        }
    }
}
