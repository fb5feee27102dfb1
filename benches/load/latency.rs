//! Added latency per query at one client, as medians of per-query times: direct, through
//! Sluice and through the bare relay (a process of its own), in one run.
//!
//! sysbench's 1-thread figure is throughput over seconds-long runs, and on this shared
//! machine two runs of the same path differ by more than the 5 µs target. Here the three
//! paths take turns every `BATCH` queries (in a rotating order) for `ROUNDS` rounds, so a
//! slow minute of the host falls on all three alike, and each path's figure is the median
//! of every query's own time, which spikes barely move. The client is mysql_async on a
//! current-thread runtime of its own thread: the same client cost on every path.

use std::time::Instant;

use mysql_async::prelude::Queryable;

use super::common::{self, TestDb};

const ROUNDS: usize = 60;
const BATCH: usize = 200;
/// The target: Sluice adds at most this much over the bare relay to a text point-select.
const TARGET_US: f64 = 5.0;

#[derive(Clone, Copy)]
enum Query {
    Text,
    Prepared,
}

impl Query {
    fn name(self) -> String {
        match self {
            Query::Text => format!("text `{}`", super::TEXT),
            Query::Prepared => format!("prepared `{}`", super::PREPARED),
        }
    }

    async fn run(self, conn: &mut mysql_async::Conn) -> Option<String> {
        match self {
            Query::Text => conn.query_first(super::TEXT).await,
            Query::Prepared => conn.exec_first(super::PREPARED, (3,)).await,
        }
        .expect("a point-select succeeds")
    }
}

/// Each query's time in ns, per path (direct, Sluice, relay).
async fn measure(ports: [u16; 3], db: mysql_async::OptsBuilder, query: Query) -> [Vec<u64>; 3] {
    let mut conns = Vec::new();
    for port in ports {
        let mut conn = mysql_async::Conn::new(db.clone().tcp_port(port))
            .await
            .expect("a client connects");
        for _ in 0..BATCH {
            query.run(&mut conn).await;
        }
        conns.push(conn);
    }
    let mut times: [Vec<u64>; 3] = Default::default();
    for round in 0..ROUNDS {
        for k in 0..3 {
            let path = (round + k) % 3;
            for _ in 0..BATCH {
                let start = Instant::now();
                let name = query.run(&mut conns[path]).await;
                times[path].push(start.elapsed().as_nanos() as u64);
                assert_eq!(name.as_deref(), Some(common::MENUS[2].1));
            }
        }
    }
    for conn in conns {
        let _ = conn.disconnect().await;
    }
    times
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub async fn latency_suite() {
    let db = TestDb::start(50).await;
    let sluice = super::start_sluice(&db, 70).await;
    let relay = super::spawn_relay_process(&[], db.port).await;
    let ports = [db.port, sluice.port, relay.port];
    println!("\n## added latency per query, one client, median of {} queries per path (direct / Sluice / bare relay take turns every {BATCH})\n", ROUNDS * BATCH);
    println!("| query | direct p50 µs | Sluice adds (p50) | bare relay adds (p50) | Sluice over the relay, p50 | Sluice over the relay, p90 |");
    println!("|---|---|---|---|---|---|");
    let mut text_over = f64::NAN;
    for query in [Query::Text, Query::Prepared] {
        let opts = db.direct_opts();
        // Its own thread and current-thread runtime: nothing else of the harness runs
        // beside the client while it measures.
        let mut times = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime")
                .block_on(measure(ports, opts, query))
        })
        .join()
        .expect("the latency client finished");
        for t in &mut times {
            t.sort_unstable();
        }
        let p = |path: usize, q: f64| percentile(&times[path], q);
        let over = p(1, 0.5) - p(2, 0.5);
        if matches!(query, Query::Text) {
            text_over = over;
        }
        println!(
            "| {} | {:.1} | {:.1} µs | {:.1} µs | {over:.1} µs | {:.1} µs |",
            query.name(),
            p(0, 0.5),
            p(1, 0.5) - p(0, 0.5),
            p(2, 0.5) - p(0, 0.5),
            p(1, 0.9) - p(2, 0.9),
        );
    }
    let verdict = if text_over <= TARGET_US {
        "met"
    } else {
        "NOT met"
    };
    println!("\ntarget: a text point-select through Sluice at most {TARGET_US} µs over the bare relay (p50): {text_over:.1} µs, {verdict}");
}
