//! The pool's background upkeep: reaping idle connections, the DDL watch, and reading
//! the server's limits again on an interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Pool;

impl Pool {
    /// Runs until the pool is dropped.
    pub async fn maintain(self: Arc<Self>, refresh_every: Duration) {
        let mut last_refresh = Instant::now();
        loop {
            let known = self.cap().is_some();
            crate::clock::sleep(if known {
                Duration::from_secs(1)
            } else {
                Duration::from_millis(500)
            })
            .await;
            self.reap();
            // After a refusal, waiters get their next attempt from a timer; this is the
            // net under it (a borrower given an attempt may give it up unused).
            self.grant_free_slots();
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
