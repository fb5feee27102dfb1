//! Errors of the backend layer: connecting, authenticating and talking to the server.

use crate::auth::caching_sha2::RsaError;
use crate::protocol::errors::SqlState;
use crate::protocol::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to the backend: {0}")]
    Connect(std::io::Error),
    #[error("timed out connecting to the backend")]
    ConnectTimeout,
    #[error("backend TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("invalid backend TLS server name {0:?}")]
    ServerName(String),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("backend error {code}: {message}")]
    Server {
        code: u16,
        sql_state: SqlState,
        message: String,
    },
    #[error("backend does not support {0}")]
    Unsupported(&'static str),
    #[error(transparent)]
    Rsa(#[from] RsaError),
    #[error("no login is configured for backend user {0:?}")]
    NoLogin(String),
    #[error("Timed-out waiting to acquire database connection")]
    BorrowTimeout,
    #[error("the backend was unreachable a moment ago; retrying shortly")]
    Unavailable,
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),
    #[error("backend capacity is not known yet: {0}")]
    CapacityUnknown(Box<BackendError>),
    /// A command failed halfway through changing the connection's session state on
    /// Sluice's behalf: what the connection holds now is unknown, so it is closed. The
    /// client gets the inner error.
    #[error("{0}")]
    StateLost(Box<BackendError>),
}

impl BackendError {
    /// The server's error code, when the server refused with an ERR packet.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn from_err_packet(payload: &[u8]) -> Self {
        match crate::protocol::response::ErrPacket::parse(payload) {
            Ok(e) => Self::Server {
                code: e.code,
                sql_state: e.sql_state,
                message: e.message_lossy(),
            },
            Err(e) => e.into(),
        }
    }
}
