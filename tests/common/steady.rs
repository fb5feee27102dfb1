//! A steady client beside an experiment: what one client does (or suffers) must not
//! reach the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::Proxy;

/// A client already logged in, running `SELECT 1` every 10 ms until stopped.
pub struct Steady {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, usize, Duration)>,
}

impl Steady {
    pub async fn start(proxy: &Proxy) -> Self {
        let mut conn = proxy.conn().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut ok, mut errors, mut worst) = (0, 0, Duration::ZERO);
            while !flag.load(Ordering::Relaxed) {
                let start = Instant::now();
                match conn.query_first::<i64, _>("SELECT 1").await {
                    Ok(Some(1)) => ok += 1,
                    _ => errors += 1,
                }
                worst = worst.max(start.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, errors, worst)
        });
        Self { stop, task }
    }

    /// Stops it and checks it was never refused or stalled.
    pub async fn check(self) {
        self.stop.store(true, Ordering::Relaxed);
        let (ok, errors, worst) = self.task.await.unwrap();
        assert_eq!(errors, 0, "the steady client got errors");
        assert!(ok > 0, "the steady client ran no statement");
        // Generous for a shared 2-core machine: the point is that it never waits for
        // the abuse (a handshake timeout, a login delay) next to it.
        assert!(
            worst < Duration::from_secs(1),
            "worst statement took {worst:?}"
        );
    }
}
