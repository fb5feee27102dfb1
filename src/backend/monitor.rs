//! The health check: is the database answering? Every `health_check_interval` the
//! monitor pings an idle pooled connection within `health_check_timeout`. With none
//! idle, a connection that came back from a client's statement since the last check
//! is proof enough; without that either (a quiet pool), it opens one in a free slot and
//! closes it again, at most every tenth interval while the database was last found
//! answering (a quiet pool is not to be kept busy logging in), every interval while it
//! was not. All slots busy and none coming back: it cannot tell, and keeps what it
//! found last (long statements are not a failure).
//!
//! It never checks with a connection that reads the greeting and leaves: MySQL counts
//! those as connect errors of Sluice's host (`max_connect_errors`) and would block it.
//! It runs apart from the pool's upkeep, which a frozen database must not stall.

use std::sync::Arc;
use std::time::Duration;

use super::pool::{Down, Health};
use super::Pool;

impl Pool {
    /// Runs until the pool is dropped.
    pub async fn monitor(self: Arc<Self>, every: Duration, timeout: Duration) {
        let mut since_opened = 0u32;
        loop {
            crate::clock::sleep(every).await;
            since_opened += 1;
            let may_open = since_opened >= 10 || self.health() != Health::Up;
            let (found, opened) = self.check(every, timeout, may_open).await;
            if opened {
                since_opened = 0;
            }
            if let Some(found) = found {
                let before = self.health();
                if found != before {
                    match found.not_ready() {
                        Some(why) => tracing::warn!(why, "database health check failed"),
                        None => tracing::info!("database answering again"),
                    }
                }
                self.set_health(found);
            }
        }
    }

    /// One check: what it found (None when it cannot tell), and whether it opened a
    /// connection (only when `may_open`).
    async fn check(
        self: &Arc<Self>,
        every: Duration,
        timeout: Duration,
        may_open: bool,
    ) -> (Option<Health>, bool) {
        if let Some(mut lease) = self.lend_idle() {
            match crate::clock::timeout(timeout, lease.conn().ping()).await {
                Ok(Ok(())) => {
                    // Not a use: the check must not keep idle connections from expiring.
                    lease.release_unused();
                    return (Some(Health::Up), false);
                }
                Err(_) => {
                    lease.close("health_check");
                    return (Some(Health::Down(Down::Frozen)), false);
                }
                // That connection was broken (the server closed it, or died): a new
                // one tells which, now.
                Ok(Err(_)) => {
                    lease.close("health_check");
                    return (self.check_with_new_connection(timeout).await, true);
                }
            }
        } else if self.returned_within(every) {
            return (Some(Health::Up), false);
        }
        if !may_open {
            return (None, false);
        }
        (self.check_with_new_connection(timeout).await, true)
    }

    /// Opens a connection in a free slot, pings it and closes it: what the database
    /// answers a newcomer. None when no slot is free.
    async fn check_with_new_connection(self: &Arc<Self>, timeout: Duration) -> Option<Health> {
        let opened = crate::clock::timeout(timeout, async {
            let mut lease = self.open_spare().await?;
            if let Some(lease) = lease.as_mut() {
                lease.conn().ping().await?;
            }
            Ok::<_, super::BackendError>(lease)
        });
        match opened.await {
            Ok(Ok(Some(lease))) => {
                // Of the probe's partition: closed, not kept to be replaced later.
                lease.close("probe");
                Some(Health::Up)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) if matches!(e.server_code(), Some(1040 | 1203)) => {
                Some(Health::Down(Down::Refusing))
            }
            Ok(Err(_)) => Some(Health::Down(Down::Unreachable)),
            Err(_) => Some(Health::Down(Down::Frozen)),
        }
    }
}
