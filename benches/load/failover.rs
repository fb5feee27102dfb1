//! Failover (`failover`): the steady load of the failover tests (50 clients alternating
//! autocommit writes and two-row transactions, each with a session variable of its
//! own) on a writer and a replica; after 3 s the writer is killed and the replica
//! promoted, as RDS fails over. Once straight to the writer's address, once through
//! Sluice (the release binary, both instances configured): errors, sessions lost
//! outside a transaction, client-visible recovery time (from the kill to the first
//! write that lands, and to the last client's first), and the longest wait.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::common::db::free_port;
use super::common::failover_load::{Load, Seen};
use super::common::process::SluiceProcess;
use super::common::proxy::config_for_instances;
use super::common::replication::{OldWriter, Replicated};

const CLIENTS: usize = 50;

/// One run: the load straight to the writer, or through Sluice on its default
/// `monitor_interval` (1 s), with the failover in the middle; what the clients saw,
/// when the writer was killed, and how long the promotion took.
async fn run(through_sluice: bool) -> (Vec<Seen>, Instant, Duration) {
    let mut set = Replicated::start(100, 1).await;
    let mut sluice = None;
    let opts = if through_sluice {
        let port = free_port();
        let config = config_for_instances(
            &[&set.writer, &set.replicas[0]],
            "",
            "[log]\nlevel = \"warn\"\n",
        )
        .replacen("127.0.0.1:0", &format!("127.0.0.1:{port}"), 1);
        let binary = std::env::var("SLUICE_BENCH_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_sluice").to_string());
        let process =
            SluiceProcess::start_binary_under(&binary, &[], &config, port, Stdio::inherit()).await;
        let opts = mysql_async::OptsBuilder::from_opts(set.writer.direct_opts())
            .ip_or_hostname("127.0.0.1")
            .tcp_port(port);
        sluice = Some(process);
        opts
    } else {
        set.writer.direct_opts()
    };
    let load = Load::start(opts, CLIENTS, 0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = Instant::now();
    set.fail_over(OldWriter::Killed).await;
    let promoted = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = load.stop().await;
    drop(sluice);
    (seen, killed, promoted)
}

fn row(path: &str, seen: &[Seen], killed: Instant, promoted: Duration) {
    let errors: usize = seen.iter().map(|s| s.errors.len()).sum();
    let lost: usize = seen.iter().map(|s| s.lost_idle).sum();
    let wrong: usize = seen.iter().map(|s| s.wrong_session).sum();
    let statements: usize = seen.iter().map(|s| s.statements).sum();
    let firsts: Vec<Option<Duration>> = seen
        .iter()
        .map(|s| s.first_write_after(killed).map(|t| t - killed))
        .collect();
    let secs = |d: Option<Duration>| {
        d.map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
    };
    let first = firsts.iter().flatten().min().copied();
    // A client that never wrote again counts as never recovered.
    let last = if firsts.iter().all(Option::is_some) {
        firsts.iter().flatten().max().copied()
    } else {
        None
    };
    let longest = seen.iter().map(|s| s.longest).max().unwrap_or_default();
    println!(
        "failover {path}: {statements} statements, {errors} errors, {lost} sessions lost \
         outside a transaction, {wrong} wrong session values; first write after the kill \
         {}, every client writing again {}; longest wait {:.2} s (promotion took {:.2} s)",
        secs(first),
        secs(last),
        longest.as_secs_f64(),
        promoted.as_secs_f64()
    );
}

pub(super) async fn failover_suite() {
    let (direct, killed, promoted) = run(false).await;
    row("direct", &direct, killed, promoted);
    let (sluice, killed, promoted) = run(true).await;
    row("through Sluice", &sluice, killed, promoted);
}
