//! What the pool needs of the connections it keeps and of whatever opens them. The pool
//! itself is bookkeeping: slots under a cap, idle lists, a FIFO of borrowers. Behind
//! these two traits sits MySQL (`backend::connector`), or a fake in the pool's tests.

use std::future::Future;
use std::time::{Duration, Instant};

use super::super::partition::PartitionKey;
use super::super::BackendError;
use crate::multiplex::Variables;

/// A connection as the pool sees it.
pub trait Pooled: Send + 'static {
    fn key(&self) -> &PartitionKey;
    /// Its default schema is known to be `schema`.
    fn has_schema(&self, schema: Option<&[u8]>) -> bool;
    /// Its session variables (as differences from the partition's baseline) are `vars`.
    fn has_vars(&self, vars: &Variables) -> bool;
    fn created(&self) -> Instant;
    fn last_used(&self) -> Instant;
    fn set_last_used(&mut self, at: Instant);
    /// The server closed it, or sent something unasked, while it sat idle.
    fn server_gone(&self) -> bool;
    /// The writer generation it was opened in ([`Connector::generation`]).
    fn generation(&self) -> u64;
}

/// A boxed connection is pooled as what it holds: a pool of large connections keeps
/// them boxed, so that handing one over moves a pointer, not the whole connection.
impl<P: Pooled> Pooled for Box<P> {
    fn key(&self) -> &PartitionKey {
        (**self).key()
    }
    fn has_schema(&self, schema: Option<&[u8]>) -> bool {
        (**self).has_schema(schema)
    }
    fn has_vars(&self, vars: &Variables) -> bool {
        (**self).has_vars(vars)
    }
    fn created(&self) -> Instant {
        (**self).created()
    }
    fn last_used(&self) -> Instant {
        (**self).last_used()
    }
    fn set_last_used(&mut self, at: Instant) {
        (**self).set_last_used(at)
    }
    fn server_gone(&self) -> bool {
        (**self).server_gone()
    }
    fn generation(&self) -> u64 {
        (**self).generation()
    }
}

/// The server's own limits, read by the capacity probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `@@max_connections`.
    pub max_connections: usize,
    /// `@@max_prepared_stmt_count`, when the server has one.
    pub max_prepared_statements: Option<usize>,
}

/// Opens, resets and closes connections, and asks the server what the pool must know.
pub trait Connector: Send + Sync + Sized + 'static {
    type Conn: Pooled;

    /// Opens a connection for `key` with `schema` as its default schema.
    fn connect(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> impl Future<Output = Result<Self::Conn, BackendError>> + Send;

    /// Opens a connection just to read the server's limits: any user will do.
    fn connect_probe(&self) -> impl Future<Output = Result<Self::Conn, BackendError>> + Send;

    /// Reads the server's limits through `conn`, bounded by [`Connector::timeout`].
    fn probe(
        &self,
        conn: &mut Self::Conn,
    ) -> impl Future<Output = Result<ServerLimits, BackendError>> + Send;

    /// Gives `conn` a fresh session, as a new connection has (after a pinned client).
    fn reset(&self, conn: &mut Self::Conn)
        -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Leaves politely; returns once the server has let the connection go, so that its
    /// slot can be reused without the server ever counting more than the cap.
    fn quit(conn: Self::Conn) -> impl Future<Output = ()> + Send;

    /// How long the pool waits on the server (connects, probes).
    fn timeout(&self) -> Duration;

    /// The writer generation new connections belong to: bumped at each change of
    /// writer (a failover), after which older connections are let go.
    fn generation(&self) -> u64;
}
