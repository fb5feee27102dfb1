//! Errors of the backend layer. Three kinds, each its own type: a connection failing
//! (connecting, authenticating, talking to the server: [`ConnectionError`]), the pool
//! unable to lend one ([`PoolError`]), and the login for it unavailable
//! ([`CredentialsError`], from the credentials layer). [`BackendError`] is any of them.

use crate::auth::caching_sha2::RsaError;
use crate::credentials::CredentialsError;
use crate::protocol::errors::SqlState;
use crate::protocol::ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

/// Why the pool could not lend a connection.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The borrower waited `connection_borrow_timeout` in the queue.
    #[error("Timed-out waiting to acquire database connection")]
    BorrowTimeout,
    /// A capacity probe failed a moment ago; the next is not due yet.
    #[error("the backend was unreachable a moment ago; retrying shortly")]
    Unavailable,
    /// No replica is fit to serve reads, and the reader endpoint does not fall back to
    /// the writer.
    #[error("no replica is available for reads")]
    NoReplica,
    /// The server's `max_connections` could not be read, so there is no cap yet.
    #[error("backend capacity is not known yet: {0}")]
    CapacityUnknown(Box<BackendError>),
}

/// One backend connection failed, or the server refused what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("cannot connect to the backend: {0}")]
    Connect(std::io::Error),
    #[error("timed out connecting to the backend")]
    ConnectTimeout,
    /// None of the instances takes writes now (a failover under way).
    #[error("no writable database instance")]
    NoWriter,
    /// The replica a reader pool connects to does not serve reads now (down, behind,
    /// promoted): the reader endpoint tries another.
    #[error("the replica does not serve reads now")]
    ReplicaOut,
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
    /// A command failed halfway through changing the connection's session state on
    /// Sluice's behalf: what the connection holds now is unknown, so it is closed. The
    /// client gets the inner error.
    #[error("{0}")]
    StateLost(Box<ConnectionError>),
}

impl ConnectionError {
    /// The server's error code, when the server refused with an ERR packet.
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Self::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// What the client is told about: the failure under any `StateLost`.
    pub fn cause(&self) -> &Self {
        let mut e = self;
        while let Self::StateLost(inner) = e {
            e = inner;
        }
        e
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

impl BackendError {
    /// The server's error code, when the server refused with an ERR packet (the
    /// connection is still good).
    pub fn server_code(&self) -> Option<u16> {
        match self {
            Self::Connection(e) => e.server_code(),
            _ => None,
        }
    }
}

impl BackendError {
    /// The database had no room for another connection (1040 Too many connections,
    /// 1203 for the user's own limit), or nothing accepted one at its address in time
    /// or it dropped the connection while logging in, or no instance takes writes (a
    /// failover under way):
    /// worth waiting for a connection that works, not worth passing on.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Connection(ConnectionError::Server { code, .. }) => {
                matches!(code, 1040 | 1203)
            }
            // Reset, aborted or closed while connecting or logging in: the server went
            // away (a failover, a restart).
            Self::Connection(ConnectionError::Connect(e)) => went_away(e),
            Self::Connection(ConnectionError::Protocol(ProtocolError::Io(e))) => went_away(e),
            Self::Connection(ConnectionError::Protocol(ProtocolError::Closed)) => true,
            Self::Connection(ConnectionError::ConnectTimeout | ConnectionError::NoWriter) => true,
            _ => false,
        }
    }
}

/// The other end refused or dropped the connection.
fn went_away(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

impl From<ProtocolError> for BackendError {
    fn from(e: ProtocolError) -> Self {
        Self::Connection(e.into())
    }
}
