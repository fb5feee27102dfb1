//! A borrowed backend connection: an RAII guard that returns its connection to the pool
//! only when released explicitly.

use std::sync::Arc;

use super::conn::BackendConn;
use super::pool::Pool;

/// A borrowed connection. Give it back with [`Lease::release`]; dropping a lease closes
/// the connection instead, because its state is then unknown.
pub struct Lease {
    conn: Option<BackendConn>,
    pool: Arc<Pool>,
}

impl Lease {
    pub(super) fn new(conn: BackendConn, pool: Arc<Pool>) -> Self {
        Self {
            conn: Some(conn),
            pool,
        }
    }

    pub fn conn(&mut self) -> &mut BackendConn {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until consumed")
    }

    /// Returns a clean connection to the pool.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put_back(conn);
        }
    }

    /// Resets the connection (COM_RESET_CONNECTION and session set-up) and returns it;
    /// closes it if the reset fails. For pinned or interrupted sessions.
    pub async fn reset_and_release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match conn.reset(self.pool.target()).await {
            Ok(()) => self.pool.put_back(conn),
            Err(e) => {
                tracing::debug!(error = %e, "backend reset failed; closing it");
                self.pool.metrics.database_connections_borrowed.dec();
                self.pool.close(conn, "reset_failed");
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.metrics.database_connections_borrowed.dec();
            self.pool.close(conn, "discarded");
        }
    }
}
