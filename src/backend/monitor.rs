//! The health check: is the database answering? Every `health_check_interval` the
//! monitor pings an idle pooled connection within `health_check_timeout`. With none
//! idle, a connection that came back from a client's statement since the last check
//! is proof enough; without that either, it opens one in a free slot (kept idle for the
//! next check). All slots busy and none coming back: it cannot tell, and keeps what it
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
        loop {
            tokio::time::sleep(every).await;
            if let Some(found) = self.check(every, timeout).await {
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

    /// One check; None when it cannot tell.
    async fn check(self: &Arc<Self>, every: Duration, timeout: Duration) -> Option<Health> {
        if let Some(mut lease) = self.lend_idle() {
            match tokio::time::timeout(timeout, lease.conn().ping()).await {
                Ok(Ok(())) => {
                    // Not a use: the check must not keep idle connections from expiring.
                    lease.release_unused();
                    return Some(Health::Up);
                }
                Err(_) => {
                    lease.close("health_check");
                    return Some(Health::Down(Down::Frozen));
                }
                // That connection was broken (the server closed it): try a new one.
                Ok(Err(_)) => lease.close("health_check"),
            }
        } else if self.returned_within(every) {
            return Some(Health::Up);
        }
        let opened = tokio::time::timeout(timeout, async {
            let mut lease = self.open_spare().await?;
            if let Some(lease) = lease.as_mut() {
                lease.conn().ping().await?;
            }
            Ok::<_, super::BackendError>(lease)
        });
        match opened.await {
            Ok(Ok(Some(lease))) => {
                lease.release();
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
