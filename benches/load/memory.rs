//! Memory per idle client connection: the resident memory a fresh Sluice process gains
//! with `CLIENTS` authenticated clients open and idle, per client, and what it keeps
//! after they close, over several rounds (it must not grow round after round).

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::common::TestDb;

const CLIENTS: usize = 2_000;
const ROUNDS: usize = 3;
/// The target: at most this many bytes per idle client.
const TARGET: u64 = 8 * 1024;

/// Resident set size of `pid`, in bytes (`VmRSS` of /proc/<pid>/status).
pub(super) fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn open_clients(opts: &mysql_async::Opts) -> Vec<mysql_async::Conn> {
    let mut conns = Vec::with_capacity(CLIENTS);
    // 50 logins at a time: the figure is memory, not login speed.
    for _ in 0..CLIENTS / 50 {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..50 {
            batch.spawn(mysql_async::Conn::new(opts.clone()));
        }
        while let Some(conn) = batch.join_next().await {
            conns.push(
                conn.unwrap()
                    .expect("an idle client logs in through Sluice"),
            );
        }
    }
    conns
}

pub async fn memory_suite() {
    let db = TestDb::start(50).await;
    let sluice = super::start_sluice(&db, 70).await;
    let opts: mysql_async::Opts = db.direct_opts().tcp_port(sluice.port).into();
    // One client first, so the pool, the runtime's workers and the backend's first
    // connections exist before the baseline is read.
    let mut warm = mysql_async::Conn::new(opts.clone()).await.unwrap();
    warm.query_drop("SELECT 1").await.unwrap();
    warm.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = rss(sluice.pid());
    println!("\n## memory per idle client ({CLIENTS} authenticated idle clients, fresh process)\n");
    println!("RSS before the first round: {} kB\n", fresh / 1024);
    println!("| round | RSS with the clients open | per idle client | RSS after they closed |");
    println!("|---|---|---|---|");
    let mut worst = 0;
    for round in 1..=ROUNDS {
        let conns = open_clients(&opts).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let open = rss(sluice.pid());
        let per_client = open.saturating_sub(fresh) / CLIENTS as u64;
        worst = worst.max(per_client);
        for conn in conns {
            let _ = conn.disconnect().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let closed = rss(sluice.pid());
        println!(
            "| {round} | {} kB | {:.1} kB | {} kB |",
            open / 1024,
            per_client as f64 / 1024.0,
            closed / 1024
        );
    }
    println!(
        "\nworst per idle client: {:.1} kB (target: at most {} kB)",
        worst as f64 / 1024.0,
        TARGET / 1024
    );
}
