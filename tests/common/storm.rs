//! The user story's connection storm: workers that each open a new connection per
//! invocation, run `SELECT * FROM menus`, check the rows and close. The preamble variant
//! first sends what ORMs send at connect, then a few statements, one prepared.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

use super::MENUS;

#[derive(Debug, Default)]
pub struct StormReport {
    pub ok: usize,
    pub errors: usize,
    pub wrong_results: usize,
    /// Error codes seen (server errors) or 0 for client-side/IO errors, with counts.
    pub error_codes: std::collections::BTreeMap<u16, usize>,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
    /// The latencies of the invocations that succeeded. Directly, most of a storm's
    /// attempts fail fast with 1040; the user story compares Sluice with the direct
    /// path that succeeds, so that path needs its own figures.
    pub ok_latencies: Vec<Duration>,
}

impl StormReport {
    pub fn rate(&self) -> f64 {
        (self.ok + self.errors + self.wrong_results) as f64 / self.elapsed.as_secs_f64()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} ok, {} failed {:?}, {:.0} invocations/s, p50 {:.1} ms, p99 {:.1} ms",
            self.ok,
            self.errors,
            self.error_codes,
            self.rate(),
            self.percentile(0.5).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3
        )
    }

    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// A percentile over the successful invocations only.
    pub fn ok_percentile(&self, p: f64) -> Duration {
        percentile(&self.ok_latencies, p)
    }
}

fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut l = latencies.to_vec();
    l.sort();
    l.get(((l.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or_default()
}

/// What one invocation does after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `SELECT * FROM menus`, as the user story's Lambda.
    Menus,
    /// A typical ORM connect preamble, then a few statements (one prepared), with 20 ms
    /// of application work between them.
    Preamble,
}

pub async fn run(
    opts: mysql_async::OptsBuilder,
    workers: usize,
    invocations: usize,
) -> StormReport {
    run_with(opts, workers, invocations, Workload::Menus).await
}

pub async fn run_with(
    opts: mysql_async::OptsBuilder,
    workers: usize,
    invocations: usize,
    workload: Workload,
) -> StormReport {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (next, opts) = (next.clone(), opts.clone());
        tasks.push(tokio::spawn(async move {
            let mut r = StormReport::default();
            while next.fetch_add(1, Ordering::Relaxed) < invocations {
                let t = Instant::now();
                match invoke(opts.clone(), workload).await {
                    Ok(true) => {
                        r.ok += 1;
                        r.ok_latencies.push(t.elapsed());
                    }
                    Ok(false) => r.wrong_results += 1,
                    Err(e) => {
                        r.errors += 1;
                        let code = match e {
                            mysql_async::Error::Server(s) => s.code,
                            _ => 0,
                        };
                        *r.error_codes.entry(code).or_default() += 1;
                    }
                }
                r.latencies.push(t.elapsed());
            }
            r
        }));
    }
    let mut total = StormReport::default();
    for t in tasks {
        let r = t.await.unwrap();
        total.ok += r.ok;
        total.errors += r.errors;
        total.wrong_results += r.wrong_results;
        for (k, v) in r.error_codes {
            *total.error_codes.entry(k).or_default() += v;
        }
        total.latencies.extend(r.latencies);
        total.ok_latencies.extend(r.ok_latencies);
    }
    total.elapsed = start.elapsed();
    total
}

/// What Connector/J, Rails and Sequelize-style clients send right after connecting.
const PREAMBLE: &str = "SET NAMES utf8mb4; SET autocommit = 1; \
SET sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'; SET time_zone = '+00:00'; \
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// One Lambda invocation: connect, query, verify, disconnect.
async fn invoke(
    opts: mysql_async::OptsBuilder,
    workload: Workload,
) -> Result<bool, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    if workload == Workload::Preamble {
        // The application works between statements (here 20 ms): a direct connection
        // sits idle meanwhile, a multiplexed one is free for other clients.
        let think = || tokio::time::sleep(Duration::from_millis(20));
        conn.query_drop(PREAMBLE).await?;
        think().await;
        let price: Option<i32> = conn
            .exec_first("SELECT price FROM menus WHERE id = ?", (2,))
            .await?;
        think().await;
        let zone: Option<String> = conn.query_first("SELECT @@time_zone").await?;
        think().await;
        if price != Some(750) || zone.as_deref() != Some("+00:00") {
            return Ok(false);
        }
    }
    let rows: Vec<(i32, String, i32, String, i32)> = conn.query("SELECT * FROM menus").await?;
    conn.disconnect().await?;
    Ok(rows.len() == MENUS.len()
        && rows
            .iter()
            .zip(MENUS.iter())
            .all(|(a, b)| a.0 == b.0 && a.1 == b.1 && a.2 == b.2 && a.3 == b.3 && a.4 == b.4))
}
