//! Borrowing: an idle connection that fits, a free slot to open one in, the slot of an
//! idle connection of another partition, or a place in the FIFO queue until one of those
//! comes back, within the borrow timeout.
//!
//! Cancellation safe: a borrow may be dropped at any await (a client gone, a timeout or
//! `select!` around it). A queued borrower leaves the queue, and a grant that reached it
//! before it left is handed back; a slot it was given, or a connection it was quitting
//! to make room, is freed. [`Granted`] and [`Queued`] do this on drop.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::grant::Grant;
use super::lease::Lease;
use super::opening::Opening;
use super::shared::Pool;
use super::traits::{Connector, Pooled};
use crate::backend::partition::PartitionKey;
use crate::backend::{BackendError, PoolError};
use crate::multiplex::Variables;

impl<K: Connector> Pool<K> {
    /// Borrows a connection for `key`, waiting FIFO up to the borrow timeout.
    pub async fn borrow(
        self: &Arc<Self>,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Result<Lease<K>, BackendError> {
        // The rare paths (probing the capacity, opening a connection: TLS, the login)
        // are boxed: inline, their futures would be part of every session's state
        // machine, allocated for each client connection whether it ever opens one or not.
        //
        // A borrow served at once from the idle list is recorded as taking no time: it
        // took a lock and no wait, and the clock is not read twice on every statement
        // to say so.
        let mut start = None;
        if self.cap().is_none() {
            let now = Instant::now();
            start = Some(now);
            Box::pin(self.capacity_by(now + self.settings.borrow_timeout)).await?;
        }
        // A borrower whose connect the database refused goes back to the head of the
        // line (it was served first) and waits for what remains of its time.
        let mut refused = false;
        let conn = loop {
            let mut granted = match self.grant_now(key, schema, vars, refused) {
                Ok(granted) => granted,
                Err(queued) => {
                    let since = *start.get_or_insert_with(Instant::now);
                    queued.wait(since + self.settings.borrow_timeout).await?
                }
            };
            if let Some(conn) = granted.take_conn() {
                break conn;
            }
            let attempted = Instant::now();
            start.get_or_insert(attempted);
            if let Some(old) = granted.take_replaced() {
                Box::pin(K::quit(old)).await;
            }
            match Box::pin(self.connector.connect(key, schema)).await {
                Ok(conn) => {
                    self.metrics.database_connections_setup_succeeded.inc();
                    granted.fulfilled();
                    self.opened();
                    break conn;
                }
                Err(e) if e.is_refusal() => {
                    self.metrics.database_connections_setup_failed.inc();
                    tracing::debug!(error = %e, "the database refused a connection; waiting for one that works");
                    self.refused(granted, attempted);
                    refused = true;
                }
                Err(e) => {
                    self.metrics.database_connections_setup_failed.inc();
                    // Dropping the grant frees its slot.
                    return Err(e);
                }
            }
        };
        self.metrics
            .borrow_duration
            .observe(start.map_or(0.0, |t| t.elapsed().as_secs_f64()));
        Ok(Lease::new(conn, self.clone()))
    }

    /// The database refused the connection `granted` was for: the pool keeps to those
    /// open (`Opening`), the slot disappears, and waiters are served again once the
    /// pause is over (sooner by a working connection coming back).
    fn refused(self: &Arc<Self>, granted: Granted<K>, attempted: Instant) {
        let retry_at = {
            let mut st = self.lock();
            // The refused slot is still counted in `open`.
            let working = st.open.saturating_sub(1);
            let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0);
            let retry_at = st
                .opening
                .refused(working, attempted, Instant::now(), jitter);
            self.publish_effective_cap(&st);
            retry_at
        };
        drop(granted);
        self.metrics.database_connections_refused.inc();
        let pool = self.clone();
        tokio::spawn(async move {
            crate::clock::sleep_until(retry_at).await;
            pool.grant_free_slots();
        });
    }

    /// A connection was opened: after a refusal, the pool may try one more at once.
    fn opened(&self) {
        let refused = {
            let mut st = self.lock();
            let was = st.opening != Opening::Free;
            if let Some(cap) = st.cap {
                let open = st.open;
                st.opening.opened(open, cap, Instant::now());
                self.publish_effective_cap(&st);
            }
            was
        };
        if refused {
            self.grant_free_slots();
        }
    }

    /// What can be had without waiting, or a place in the queue.
    fn grant_now(
        self: &Arc<Self>,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
        at_head: bool,
    ) -> Result<Granted<K>, Queued<K>> {
        let mut gone = Vec::new();
        let outcome = {
            let mut st = self.lock();
            // An idle connection the server has closed (its wait_timeout, which a client
            // may have lowered and Sluice replayed, or a restart) is never handed out,
            // nor one to a writer that is no longer the writer (a failover the pool has
            // not caught up with yet).
            let taken = loop {
                match st.take_idle(key, schema, vars) {
                    Some(conn) if conn.server_gone() => gone.push((conn, "server_closed")),
                    Some(conn) if self.is_stale(&conn) => gone.push((conn, "failover")),
                    taken => break taken,
                }
            };
            let outcome = if let Some(conn) = taken {
                Ok(Grant::Conn(conn))
            } else if st.has_slot() {
                st.open += 1;
                Ok(Grant::Slot)
            } else if let Some(victim) = st.take_victim() {
                // The slot of an idle connection that does not fit (another partition,
                // or a schema this client must not see) changes hands.
                self.metrics
                    .database_connections_closed
                    .with_label_values(&["replaced"])
                    .inc();
                Ok(Grant::Replace(victim))
            } else {
                Err(st.enqueue(key, schema.is_none(), at_head))
            };
            self.publish_locked(&st);
            outcome
        };
        for (conn, reason) in gone {
            self.close(conn, reason);
        }
        match outcome {
            Ok(grant) => Ok(Granted::new(grant, self.clone())),
            Err((id, rx)) => Err(Queued {
                pool: self.clone(),
                id,
                rx: Some(rx),
            }),
        }
    }
}

/// A grant the borrower holds until it has a connection of its own; dropped before
/// that, it hands back what it holds.
pub(super) struct Granted<K: Connector> {
    grant: Option<Grant<K::Conn>>,
    pool: Arc<Pool<K>>,
}

impl<K: Connector> Granted<K> {
    pub(super) fn new(grant: Grant<K::Conn>, pool: Arc<Pool<K>>) -> Self {
        Self {
            grant: Some(grant),
            pool,
        }
    }

    /// The connection, when the grant is an idle one; the guard then holds nothing.
    fn take_conn(&mut self) -> Option<K::Conn> {
        match self.grant.take() {
            Some(Grant::Conn(conn)) => Some(conn),
            other => {
                self.grant = other;
                None
            }
        }
    }

    /// The connection to quit, when the grant replaces one; the guard then holds its
    /// slot.
    fn take_replaced(&mut self) -> Option<K::Conn> {
        match self.grant.take() {
            Some(Grant::Replace(conn)) => {
                self.grant = Some(Grant::Slot);
                Some(conn)
            }
            other => {
                self.grant = other;
                None
            }
        }
    }

    /// The slot now belongs to a connection the borrower opened.
    pub(super) fn fulfilled(mut self) {
        self.grant = None;
    }
}

impl<K: Connector> Drop for Granted<K> {
    fn drop(&mut self) {
        match self.grant.take() {
            None => {}
            Some(Grant::Conn(conn)) => self.pool.return_unused(conn),
            Some(Grant::Replace(conn)) => self.pool.retire(conn),
            Some(Grant::Slot) => self.pool.free_slot(),
        }
    }
}

/// A borrower's place in the queue. Dropped (timed out or cancelled), it leaves the
/// queue, and a grant sent to it meanwhile goes back.
pub(super) struct Queued<K: Connector> {
    pool: Arc<Pool<K>>,
    id: u64,
    /// None once the wait is over.
    rx: Option<oneshot::Receiver<Grant<K::Conn>>>,
}

impl<K: Connector> Queued<K> {
    /// Waits for a grant until `deadline`.
    async fn wait(mut self, deadline: Instant) -> Result<Granted<K>, BackendError> {
        let Some(rx) = self.rx.as_mut() else {
            return Err(PoolError::BorrowTimeout.into());
        };
        if let Ok(Ok(grant)) = crate::clock::timeout_at(deadline, rx).await {
            self.rx = None;
            return Ok(Granted::new(grant, self.pool.clone()));
        }
        // A grant sent just before the deadline is still ours.
        match self.leave() {
            Some(grant) => Ok(Granted::new(grant, self.pool.clone())),
            None => {
                self.pool.metrics.borrow_timeouts.inc();
                Err(PoolError::BorrowTimeout.into())
            }
        }
    }

    /// Leaves the queue (nothing can be sent here afterwards) with whatever grant was
    /// sent before.
    fn leave(&mut self) -> Option<Grant<K::Conn>> {
        let mut rx = self.rx.take()?;
        self.pool.lock().waiters.retain(|w| w.id != self.id);
        rx.close();
        rx.try_recv().ok()
    }
}

impl<K: Connector> Drop for Queued<K> {
    fn drop(&mut self) {
        if let Some(grant) = self.leave() {
            drop(Granted::new(grant, self.pool.clone()));
        }
    }
}
