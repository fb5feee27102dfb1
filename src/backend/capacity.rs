//! The pool cap: floor(@@max_connections × max_connections_percent / 100), read through
//! a pooled connection at start and on an interval, plus the pool's background upkeep.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::BackendConn;
use super::pool::{Grant, PartitionKey, Pool};
use super::BackendError;
use crate::multiplex::handshake_state::{Collations, COLLATIONS_QUERY};

impl Pool {
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
            return Err(BackendError::Unavailable);
        }
        let result = self.probe_capacity().await;
        self.lock().probe_failed_at = result.is_err().then(Instant::now);
        result
    }

    /// Reads @@max_connections through a pooled connection and recomputes the cap.
    pub async fn refresh_capacity(self: &Arc<Self>) -> Result<usize, BackendError> {
        let _single = self.capacity_lock.lock().await;
        self.probe_capacity().await
    }

    /// A connection to read the capacity through: any user will do, so one whose login
    /// cannot be had (its secret unreadable, its password refused) does not keep every
    /// user's pool from starting. Static logins come first.
    async fn open_probe(&self) -> Result<BackendConn, BackendError> {
        let mut last = BackendError::NoLogin("(no users configured)".into());
        for user in &self.probe_users {
            let key = PartitionKey {
                user: user.clone(),
                flags: 0,
            };
            match self.open_conn(&key, None).await {
                Ok(c) => return Ok(c),
                Err(e @ (BackendError::Credentials(_) | BackendError::Server { .. })) => last = e,
                // The server itself is unreachable: another user will not help.
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    async fn probe_capacity(self: &Arc<Self>) -> Result<usize, BackendError> {
        if self.probe_users.is_empty() {
            return Err(BackendError::NoLogin("(no users configured)".into()));
        }
        let (mut conn, slot_taken) = {
            let mut st = self.lock();
            match st.take_idle_any() {
                Some(c) => (Some(c), false),
                None if st.cap.is_none() || st.has_slot() => {
                    st.open += 1;
                    (None, true)
                }
                // At the cap with nothing idle: the cap is in use, try again later.
                None => return st.cap.ok_or(BackendError::BorrowTimeout),
            }
        };
        if conn.is_none() {
            match self.open_probe().await {
                Ok(c) => {
                    self.connected(&c);
                    conn = Some(c);
                }
                Err(e) => {
                    self.metrics.database_connections_setup_failed.inc();
                    if slot_taken {
                        self.free_slot();
                    }
                    return Err(BackendError::CapacityUnknown(Box::new(e)));
                }
            }
        }
        let mut conn = conn.expect("set above");
        self.metrics.database_connections_borrowed.inc();
        // A backend that authenticates and then stalls must not hold the capacity lock.
        let probe = conn.query("SELECT @@max_connections, @@max_prepared_stmt_count");
        let rows = match tokio::time::timeout(self.target.connect_timeout, probe).await {
            Ok(Ok(rows)) => rows,
            outcome => {
                let e = match outcome {
                    Ok(Err(e)) => e,
                    _ => BackendError::ConnectTimeout,
                };
                self.metrics.database_connections_borrowed.dec();
                self.close(conn, "error");
                return Err(e);
            }
        };
        let column = |i: usize| {
            rows.first()
                .and_then(|r| r.get(i).cloned().flatten())
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<usize>().ok())
        };
        let max_connections = column(0).unwrap_or(1);
        if self.lock().collations.is_none() {
            let read = conn.query(COLLATIONS_QUERY);
            match tokio::time::timeout(self.target.connect_timeout, read).await {
                Ok(Ok(rows)) => {
                    let collations = Collations::from_rows(rows.iter().filter_map(|r| {
                        Some([
                            r.first()?.as_deref()?,
                            r.get(1)?.as_deref()?,
                            r.get(2)?.as_deref()?,
                        ])
                    }));
                    self.lock().collations = Some(Arc::new(collations));
                }
                // Without the table, clients' handshake character sets fall back to the
                // server's (as for an unknown id) until a later probe reads it.
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the server's collations failed"),
                Err(_) => tracing::warn!("reading the server's collations timed out"),
            }
        }
        let cap = (max_connections * self.settings.max_connections_percent as usize / 100).max(1);
        let max_idle = max_connections * self.settings.max_idle_connections_percent as usize / 100;
        {
            let mut st = self.lock();
            st.cap = Some(cap);
            st.max_idle = max_idle.min(cap);
            // Leave a tenth of the server's statements to everyone else.
            st.statement_bound = column(1).map(|count| {
                (count.saturating_mul(9) / 10 / cap).clamp(1, self.settings.max_prepared_statements)
            });
        }
        self.metrics
            .database_connections_max_allowed
            .set(cap as i64);
        if slot_taken {
            // Opened just for this probe, in a partition no client may use: let it go
            // rather than have it take a slot from the clients' partitions later.
            self.metrics.database_connections_borrowed.dec();
            self.close(conn, "probe");
        } else {
            self.put_back(conn);
        }
        // A larger cap may have room for waiters.
        self.grant_free_slots();
        Ok(cap)
    }

    fn grant_free_slots(&self) {
        let mut st = self.lock();
        while st.has_slot() {
            let Some(w) = st.waiters.pop_front() else {
                break;
            };
            if w.tx.send(Grant::Slot).is_ok() {
                st.open += 1;
            }
        }
    }

    /// Background upkeep: capacity refresh, idle reaping and the DDL watch, until the pool
    /// is dropped.
    pub async fn maintain(self: Arc<Self>, refresh_every: Duration) {
        let mut last_refresh = Instant::now();
        loop {
            let known = self.cap().is_some();
            tokio::time::sleep(if known {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(500)
            })
            .await;
            self.reap();
            self.watch_ddl().await;
            if !known || last_refresh.elapsed() >= refresh_every {
                last_refresh = Instant::now();
                if let Err(e) = self.refresh_capacity().await {
                    tracing::warn!(error = %e, "cannot read the backend's max_connections");
                }
            }
        }
    }
}
