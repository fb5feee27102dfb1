//! A borrowed connection: an RAII guard that returns its connection to the pool only
//! when released explicitly, and closes it when dropped.

use std::sync::Arc;

use super::shared::Pool;
use super::traits::Connector;

/// A borrowed connection. Give it back with [`Lease::release`]; dropping a lease closes
/// the connection instead, because its state is then unknown (a client gone mid-command,
/// a cancelled reset).
pub struct Lease<K: Connector> {
    conn: Option<K::Conn>,
    pool: Arc<Pool<K>>,
}

impl<K: Connector> Lease<K> {
    /// Counts the connection as borrowed.
    pub(super) fn new(conn: K::Conn, pool: Arc<Pool<K>>) -> Self {
        pool.gauges.borrowed.inc();
        Self {
            conn: Some(conn),
            pool,
        }
    }

    pub fn conn(&mut self) -> &mut K::Conn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until consumed")
    }

    /// Of the current writer generation: false once the writer has changed (the
    /// connection is closed when it comes back; a session holding it must not go on
    /// there).
    pub fn is_current(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !self.pool.is_stale(c))
    }

    /// How many prepared statements a connection of its pool may keep open.
    pub fn statement_bound(&self) -> usize {
        self.pool.statement_bound()
    }

    /// Returns a clean connection to the pool.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }

    /// Gives the connection a fresh session and returns it; closes it if the reset fails.
    /// For pinned or interrupted sessions. Cancelled midway, the lease's drop closes it.
    pub async fn reset_and_release(mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let reset = self.pool.connector.reset(conn).await;
        let Some(conn) = self.conn.take() else {
            return;
        };
        match reset {
            Ok(()) => self.pool.put_back(conn),
            Err(e) => {
                tracing::debug!(error = %e, "backend reset failed; closing it");
                self.pool.gauges.borrowed.dec();
                self.pool.close(conn, "reset_failed");
            }
        }
    }

    /// Returns the connection as it was lent, without counting this as a use: the pool's
    /// own looks at an idle connection must not keep it from expiring.
    pub fn release_unused(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.gauges.borrowed.dec();
            self.pool.return_unused(conn);
        }
    }

    /// Closes the connection, counted under `reason`.
    pub fn close(mut self, reason: &str) {
        if let Some(conn) = self.conn.take() {
            self.pool.gauges.borrowed.dec();
            self.pool.close(conn, reason);
        }
    }
}

impl<K: Connector> Drop for Lease<K> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.gauges.borrowed.dec();
            self.pool.close(conn, "discarded");
        }
    }
}

impl<K: Connector> Pool<K> {
    /// An idle connection lent to the pool's own upkeep (the health check, the capacity
    /// probe, the DDL watch), of whichever partition has one: the one used last, to be
    /// given back with `release_unused`; `None` when nothing is idle.
    pub fn lend_idle(self: &Arc<Self>) -> Option<Lease<K>> {
        let conn = self.lock().take_idle_newest()?;
        self.publish();
        Some(Lease::new(conn, self.clone()))
    }
}
