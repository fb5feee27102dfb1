//! The reader endpoint, on a writer and two replicas started by the harness: reader
//! sessions' statements spread over the replicas (the least loaded first), writes there
//! get the replica's own read-only error, a replica that stops replicating or falls
//! behind gets no new work and comes back when current, and with no replica fit the
//! endpoint falls back to the writer or refuses, as configured.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::proxy::config_for_instances;
use common::replication::{delay_replication, resume_replicating, stop_replicating, Replicated};
use common::{Proxy, TestDb};
use mysql_async::prelude::*;

const MAX_CONNECTIONS: u32 = 40;
const WRITER_ID: u32 = 1;

fn config(set: &Replicated, fallback: &str) -> String {
    let mut instances = vec![&set.writer];
    instances.extend(set.replicas.iter());
    let reader = format!(
        "[reader]\nlisten = \"127.0.0.1:0\"\nmax_replica_lag = 1\nfallback = \"{fallback}\"\n"
    );
    config_for_instances(&instances, "monitor_interval = 0.2", &reader)
}

async fn code(conn: &mut mysql_async::Conn, sql: &str) -> u16 {
    match conn.query_drop(sql).await {
        Ok(()) => 0,
        Err(mysql_async::Error::Server(e)) => e.code,
        Err(e) => panic!("{sql}: {e}"),
    }
}

async fn server_id(c: &mut mysql_async::Conn) -> u32 {
    c.query_first("SELECT @@server_id").await.unwrap().unwrap()
}

/// The servers `n` reader sessions' reads ran on, with how many each. A session each:
/// one session's statements in quick succession keep their backend (the affinity
/// window after a result), so they show one choice, not `n`.
async fn reads(proxy: &Proxy, n: usize) -> BTreeMap<u32, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let mut c = mysql_async::Conn::new(proxy.reader_opts()).await.unwrap();
        *seen.entry(server_id(&mut c).await).or_default() += 1;
        c.disconnect().await.unwrap();
    }
    seen
}

/// Waits until `metric` of `db` (an instance-labelled sample in /metrics) satisfies
/// `wanted`, within 20 s.
async fn metric_until(proxy: &Proxy, metric: &str, db: &TestDb, wanted: impl Fn(f64) -> bool) {
    let sample = format!("{metric}{{instance=\"{}\"}}", db.address());
    let now = proxy
        .metric_until(&sample, Duration::from_secs(20), &wanted)
        .await;
    assert!(wanted(now), "{sample} is still {now}");
}

/// Waits until Sluice shows `db` as serving reads (or not).
async fn serves(proxy: &Proxy, db: &TestDb, expected: bool) {
    let value = f64::from(u8::from(expected));
    metric_until(proxy, "sluice_instance_serves_reads", db, |now| {
        now == value
    })
    .await
}

/// Waits until Sluice shows `db` more than `seconds` behind its source.
async fn lag_above(proxy: &Proxy, db: &TestDb, seconds: f64) {
    let metric = "sluice_instance_replica_lag_seconds";
    metric_until(proxy, metric, db, |now| now > seconds).await
}

fn ids(set: &Replicated) -> [u32; 2] {
    // The harness numbers the writer 1 and the replicas from 2 in order.
    assert_eq!(set.replicas.len(), 2);
    [2, 3]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_spread_over_the_replicas_and_one_out_of_date_gets_no_new_work() {
    let mut set = Replicated::start(MAX_CONNECTIONS, 2).await;
    let [first, second] = ids(&set);
    let proxy = Proxy::start(&config(&set, "writer")).await;
    for replica in &set.replicas {
        serves(&proxy, replica, true).await;
    }
    // One session's reads take turns over both replicas, and never reach the writer.
    let seen = reads(&proxy, 20).await;
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [first, second],
        "{seen:?}"
    );
    assert!(seen.values().all(|&n| n >= 5), "{seen:?}");
    // A write gets the replica's own answer.
    let mut c = mysql_async::Conn::new(proxy.reader_opts()).await.unwrap();
    let insert = "INSERT INTO items (owner, note) VALUES (1, 'reader')";
    assert_eq!(code(&mut c, insert).await, 1290);
    c.disconnect().await.unwrap();
    // New work goes to the replica with less of its cap in use: four open transactions
    // (each holding its backend) end up two on each.
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut c = mysql_async::Conn::new(proxy.reader_opts()).await.unwrap();
        c.query_drop("BEGIN").await.unwrap();
        let id = server_id(&mut c).await;
        open.push((c, id));
    }
    let on_first = open.iter().filter(|(_, id)| *id == first).count();
    assert_eq!(
        on_first,
        2,
        "{:?}",
        open.iter().map(|o| o.1).collect::<Vec<_>>()
    );
    for (mut c, _) in open {
        c.query_drop("COMMIT").await.unwrap();
        c.disconnect().await.unwrap();
    }
    // Each replica's pool is capped by its own max_connections.
    let cap = (MAX_CONNECTIONS * 70 / 100) as f64;
    for replica in &set.replicas {
        let sample = format!(
            "sluice_reader_database_connections_max_allowed{{instance=\"{}\"}}",
            replica.address()
        );
        assert_eq!(proxy.metric(&sample).await, cap, "{sample}");
    }

    // Replication stopped on the first: no new work for it.
    stop_replicating(&set.replicas[0]);
    serves(&proxy, &set.replicas[0], false).await;
    assert_eq!(reads(&proxy, 10).await, BTreeMap::from([(second, 10)]));

    // The second falls behind by more than max_replica_lag (a delayed replica, after a
    // write on the writer): no replica is fit, and reads fall back to the writer.
    delay_replication(&set.replicas[1], 60);
    let mut w = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    w.query_drop("INSERT INTO items (owner, note) VALUES (1, 'delayed')")
        .await
        .unwrap();
    // (Its replication restarting may have taken it out for a moment already: wait for
    // the lag itself.)
    lag_above(&proxy, &set.replicas[1], 1.0).await;
    serves(&proxy, &set.replicas[1], false).await;
    assert_eq!(reads(&proxy, 5).await, BTreeMap::from([(WRITER_ID, 5)]));
    assert!(proxy.metric("sluice_reader_fallbacks_total").await >= 5.0);

    // The first replicates again: it is back, and takes the reads.
    resume_replicating(&set.replicas[0]);
    serves(&proxy, &set.replicas[0], true).await;
    assert_eq!(reads(&proxy, 5).await, BTreeMap::from([(first, 5)]));

    // An idle reader session whose replica dies keeps its session; its next read runs
    // where reads go now (the writer, the other replica still being behind).
    let mut idle = mysql_async::Conn::new(proxy.reader_opts()).await.unwrap();
    idle.query_drop("SET SESSION group_concat_max_len = 7777")
        .await
        .unwrap();
    assert_eq!(server_id(&mut idle).await, first);
    set.replicas[0].kill();
    let (id, len): (u32, i64) = idle
        .query_first("SELECT @@server_id, @@group_concat_max_len")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id, len), (WRITER_ID, 7777));
    serves(&proxy, &set.replicas[0], false).await;
    // Both replicas down: the fallback still holds.
    set.replicas[1].kill();
    serves(&proxy, &set.replicas[1], false).await;
    assert_eq!(reads(&proxy, 3).await, BTreeMap::from([(WRITER_ID, 3)]));
    idle.disconnect().await.unwrap();
    w.disconnect().await.unwrap();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_replica_fit_a_refusing_reader_endpoint_answers_3032() {
    let mut set = Replicated::start(MAX_CONNECTIONS, 2).await;
    let proxy = Proxy::start(&config(&set, "refuse")).await;
    for replica in &set.replicas {
        serves(&proxy, replica, true).await;
    }
    let mut reader = mysql_async::Conn::new(proxy.reader_opts()).await.unwrap();
    assert!(ids(&set).contains(&server_id(&mut reader).await));
    for replica in &mut set.replicas {
        replica.kill();
    }
    for replica in &set.replicas {
        serves(&proxy, replica, false).await;
    }
    // The session that was open gets the error and stays open.
    assert_eq!(code(&mut reader, "SELECT 1").await, 3032);
    assert_eq!(code(&mut reader, "SELECT 1").await, 3032);
    // A new session logs in (that needs no backend), and its first statement (the
    // driver's own setup query) gets the error.
    match mysql_async::Conn::new(proxy.reader_opts()).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 3032, "{e}"),
        outcome => panic!("a new reader session: {:?}", outcome.map(|_| ())),
    }
    assert!(proxy.metric("sluice_reader_refusals_total").await >= 3.0);
    // The writer's endpoint is not affected.
    let mut writer = proxy.conn().await;
    assert_eq!(server_id(&mut writer).await, WRITER_ID);
    let insert = "INSERT INTO items (owner, note) VALUES (1, 'writer')";
    assert_eq!(code(&mut writer, insert).await, 0);
    for c in [reader, writer] {
        c.disconnect().await.unwrap();
    }
    proxy.stop().await;
}
