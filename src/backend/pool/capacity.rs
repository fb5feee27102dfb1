//! The pool cap: floor(@@max_connections × max_connections_percent / 100), read through
//! a pooled connection at start and on an interval (`backend::upkeep`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::borrow::Granted;
use super::grant::Grant;
use super::lease::Lease;
use super::shared::Pool;
use super::traits::{Connector, ServerLimits};
use crate::backend::{BackendError, ConnectionError, PoolError};

/// How often a borrower waiting for the cap asks again (probes themselves are at most
/// one a second: `ensure_capacity`).
const CAPACITY_RETRY: Duration = Duration::from_millis(200);

impl<K: Connector> Pool<K> {
    /// Learns the cap if it is still unknown; concurrent callers wait for one probe.
    pub(super) async fn ensure_capacity(self: &Arc<Self>) -> Result<usize, BackendError> {
        let _single = self.capacity_lock.lock().await;
        let (cap, failed_at) = {
            let st = self.lock();
            (st.cap, st.probe_failed_at)
        };
        if let Some(cap) = cap {
            return Ok(cap);
        }
        if failed_at.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return Err(PoolError::Unavailable.into());
        }
        let result = self.probe_capacity().await;
        self.lock().probe_failed_at = result.is_err().then(Instant::now);
        result
    }

    /// As `ensure_capacity`, waiting until `deadline` while the database refuses (down,
    /// full, or no instance writable: a proxy started during a failover), as borrowers
    /// wait for a connection once the cap is known; then a borrow timeout. Any other
    /// failure (TLS, a login) is passed on at once.
    pub(super) async fn capacity_by(
        self: &Arc<Self>,
        deadline: Instant,
    ) -> Result<usize, BackendError> {
        loop {
            let e = match self.ensure_capacity().await {
                Ok(cap) => return Ok(cap),
                Err(e) => e,
            };
            let waits = match &e {
                BackendError::Pool(PoolError::Unavailable) => true,
                BackendError::Pool(PoolError::CapacityUnknown(cause)) => cause.is_refusal(),
                _ => false,
            };
            if !waits {
                return Err(e);
            }
            if Instant::now() + CAPACITY_RETRY >= deadline {
                self.metrics.borrow_timeouts.inc();
                tracing::debug!(error = %e, "the database's capacity stayed unknown");
                return Err(PoolError::BorrowTimeout.into());
            }
            crate::clock::sleep(CAPACITY_RETRY).await;
        }
    }

    /// Reads the server's limits through a pooled connection and recomputes the cap.
    pub async fn refresh_capacity(self: &Arc<Self>) -> Result<usize, BackendError> {
        let _single = self.capacity_lock.lock().await;
        self.probe_capacity().await
    }

    async fn probe_capacity(self: &Arc<Self>) -> Result<usize, BackendError> {
        let (mut lease, opened) = match self.lend_idle() {
            Some(lease) => (lease, false),
            None => match self.open_for_probe().await? {
                Some(lease) => (lease, true),
                // At the cap with nothing idle: the cap is known and in use.
                None => return self.cap().ok_or(PoolError::BorrowTimeout.into()),
            },
        };
        let probe = self.connector.probe(lease.conn());
        let limits = match crate::clock::timeout(self.connector.timeout(), probe).await {
            Ok(Ok(limits)) => limits,
            // A backend that authenticates and then stalls must not hold the capacity
            // lock.
            outcome => {
                lease.close("error");
                return Err(match outcome {
                    Ok(Err(e)) => e,
                    _ => ConnectionError::ConnectTimeout.into(),
                });
            }
        };
        let cap = self.apply(limits);
        if opened {
            // Opened just for this probe, in a partition no client may use: let it go
            // rather than have it take a slot from the clients' partitions later.
            lease.close("probe");
        } else {
            // Not a use: the connection still expires when its clients stop.
            lease.release_unused();
        }
        // A larger cap may have room for waiters.
        self.grant_free_slots();
        Ok(cap)
    }

    /// A connection just for the probe, in a free slot (any slot while the cap is
    /// unknown); None when there is no free slot.
    async fn open_for_probe(self: &Arc<Self>) -> Result<Option<Lease<K>>, BackendError> {
        self.open_spare()
            .await
            .map_err(|e| PoolError::CapacityUnknown(Box::new(e)).into())
    }

    /// A connection of the probe's partition (no client uses it: it is replaced when a
    /// client needs its slot), in a free slot; None when there is none. The connect's
    /// own error on failure. Cancellation safe: the slot is freed.
    pub async fn open_spare(self: &Arc<Self>) -> Result<Option<Lease<K>>, BackendError> {
        {
            let mut st = self.lock();
            if st.cap.is_some() && !st.has_slot() {
                return Ok(None);
            }
            st.open += 1;
        }
        let slot = Granted::new(Grant::Slot, self.clone());
        match self.connector.connect_probe().await {
            Ok(conn) => {
                self.metrics.database_connections_setup_succeeded.inc();
                slot.fulfilled();
                Ok(Some(Lease::new(conn, self.clone())))
            }
            Err(e) => {
                self.metrics.database_connections_setup_failed.inc();
                // Dropping the slot's guard frees it.
                Err(e)
            }
        }
    }

    /// Sets the cap and the bounds that follow from the server's limits.
    fn apply(&self, limits: ServerLimits) -> usize {
        let max_connections = limits.max_connections;
        let settings = &self.settings;
        let cap = (max_connections * settings.max_connections_percent as usize / 100).max(1);
        let max_idle = max_connections * settings.max_idle_connections_percent as usize / 100;
        {
            let mut st = self.lock();
            st.cap = Some(cap);
            st.max_idle = max_idle.min(cap);
            // Leave a tenth of the server's statements to everyone else.
            st.statement_bound = limits.max_prepared_statements.map(|count| {
                (count.saturating_mul(9) / 10 / cap).clamp(1, settings.max_prepared_statements)
            });
            self.publish_effective_cap(&st);
        }
        self.gauges.max_allowed.set(cap as i64);
        cap
    }
}
