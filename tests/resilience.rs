//! Borrow timeouts, a backend that dies and comes back, and clients that send garbage.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::config_for;
use common::steady::Steady;
use common::{Proxy, TestDb};
use mysql_async::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrow_timeout_gives_9501_and_the_session_survives() {
    // max_connections 10 × 10% = a cap of one backend connection.
    let db = TestDb::start(10).await;
    let config = config_for(
        &db,
        "max_connections_percent = 10\nconnection_borrow_timeout = 1",
        "",
    );
    let proxy = Proxy::start(&config).await;
    // mysql_async reads server variables while connecting, so both connect first.
    let mut holder = proxy.conn().await;
    let mut waiter = proxy.conn().await;
    holder.query_drop("BEGIN").await.unwrap();
    holder
        .query_drop("INSERT INTO items (owner, note) VALUES (1, 'held')")
        .await
        .unwrap();

    let start = Instant::now();
    let e = waiter.query_drop("SELECT 1").await.unwrap_err();
    let waited = start.elapsed();
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 9501);
            assert_eq!(
                s.message,
                "Timed-out waiting to acquire database connection"
            );
        }
        other => panic!("expected 9501, got {other:?}"),
    }
    assert!(
        waited >= Duration::from_millis(900),
        "gave up after {waited:?}"
    );

    holder.query_drop("COMMIT").await.unwrap();
    let n: Option<i64> = waiter
        .query_first("SELECT COUNT(*) FROM items")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
    assert_eq!(
        proxy
            .metric("sluice_database_connection_borrow_timeouts_total")
            .await,
        1.0
    );
    holder.disconnect().await.unwrap();
    waiter.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_restart_gives_clean_errors_then_recovers() {
    let mut db = TestDb::start(40).await;
    let config = config_for(
        &db,
        "connection_borrow_timeout = 5\nconnect_timeout = 2",
        "",
    );
    let proxy = Arc::new(Proxy::start(&config).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..8 {
        let (proxy, stop, ok, failed) = (proxy.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                // Every statement must finish (error or not) well within its deadline.
                let attempt = async {
                    let mut c = mysql_async::Conn::new(proxy.opts()).await?;
                    c.query_drop("SELECT SLEEP(0.01), COUNT(*) FROM menus")
                        .await?;
                    c.disconnect().await
                };
                match sluice::clock::timeout(Duration::from_secs(15), attempt).await {
                    Ok(Ok(())) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(_)) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => panic!("a client hung"),
                };
                sluice::clock::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    sluice::clock::sleep(Duration::from_millis(500)).await;
    db.kill();
    sluice::clock::sleep(Duration::from_millis(1000)).await;
    let failed_while_down = failed.load(Ordering::Relaxed);
    db.restart().await;
    sluice::clock::sleep(Duration::from_millis(1500)).await;
    let ok_before = ok.load(Ordering::Relaxed);
    sluice::clock::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert!(failed_while_down > 0, "no client noticed the outage");
    assert!(
        ok.load(Ordering::Relaxed) > ok_before,
        "no recovery after restart"
    );
    // A fresh client works without restarting Sluice.
    let mut c = proxy.conn().await;
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM menus").await.unwrap();
    assert_eq!(n, Some(9));
    c.disconnect().await.unwrap();
}

/// Connects, reads the greeting, sends `bytes`, and returns what Sluice answered before
/// closing (or an empty vector), failing if it takes longer than `within`.
async fn send_raw(addr: std::net::SocketAddr, bytes: &[u8], within: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut greeting = [0u8; 4];
    s.read_exact(&mut greeting).await.unwrap();
    let len = usize::from(greeting[0]) | usize::from(greeting[1]) << 8;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    sluice::clock::timeout(within, s.read_to_end(&mut out))
        .await
        .expect("sluice closed the connection in time")
        .ok();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_others_are_unaffected() {
    let db = TestDb::start(40).await;
    let config = config_for(&db, "", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 1\nmax_packet_size = 65536",
    );
    let proxy = Proxy::start(&config).await;
    let mut bystander = proxy.conn().await;
    let limit = Duration::from_secs(3);

    // Garbage instead of a handshake response: ERR 1043 (Bad handshake), then closed.
    let out = send_raw(proxy.addr, b"\x0a\x00\x00\x01GET / HTTP/1.1", limit).await;
    assert_eq!(&out[4..7], b"\xff\x13\x04", "{out:?}");
    // A truncated packet: the header promises more than ever comes; the handshake
    // timeout closes it.
    let out = send_raw(proxy.addr, b"\xff\x00\x00\x01\x00\x00", limit).await;
    assert!(out.is_empty());
    // A packet larger than the handshake cap: refused before it is read.
    let out = send_raw(proxy.addr, b"\xff\xff\xff\x01", limit).await;
    assert!(out.is_empty());
    // Nothing at all after connecting.
    let out = send_raw(proxy.addr, b"", limit).await;
    assert!(out.is_empty());

    // After login: an over-limit command gets ERR 1153 and the connection closes.
    let mut big = proxy.conn().await;
    let sql = format!("SELECT '{}'", "x".repeat(70_000));
    let e = big.query_drop(sql).await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1153),
        "{e:?}"
    );

    let n: Option<i64> = bystander
        .query_first("SELECT COUNT(*) FROM menus")
        .await
        .unwrap();
    assert_eq!(n, Some(9));
    bystander.disconnect().await.unwrap();
    let failed = proxy.metrics().await;
    assert!(
        failed.contains("sluice_client_connections_setup_failed_total{reason=\"protocol\"} 1"),
        "{failed}"
    );
    assert!(
        failed.contains("sluice_client_connections_setup_failed_total{reason=\"timeout\"}"),
        "{failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_lost_with_its_backend_ends_the_client_session() {
    let mut db = TestDb::start(40).await;
    let proxy = Proxy::start(&config_for(&db, "connect_timeout = 2", "")).await;
    let mut in_tx = proxy.conn().await;
    let mut idle = proxy.conn().await;
    in_tx.query_drop("BEGIN").await.unwrap();
    in_tx
        .query_drop("INSERT INTO items (owner, note) VALUES (4, 'lost')")
        .await
        .unwrap();
    db.kill();
    assert!(in_tx
        .query_drop("INSERT INTO items (owner, note) VALUES (4, 'x')")
        .await
        .is_err());
    db.restart().await;
    // The half-done transaction must not continue in autocommit mode on a new backend:
    // its client connection is gone, as with a direct connection.
    assert!(in_tx
        .query_drop("INSERT INTO items (owner, note) VALUES (4, 'orphan')")
        .await
        .is_err());
    // A session that held nothing carries on.
    let n: Option<i64> = idle
        .query_first("SELECT COUNT(*) FROM items WHERE owner = 4")
        .await
        .unwrap();
    assert_eq!(n, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_keep_the_backend() {
    let db = TestDb::start(10).await;
    // One backend connection; a client that stops reading is dropped after 1 s.
    let config = config_for(&db, "max_connections_percent = 10", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 5\nclient_write_timeout = 1",
    );
    let proxy = Proxy::start(&config).await;
    let mut other = proxy.conn().await;
    let mut frozen = std::process::Command::new(common::clients::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/stalled_reader.py"
        ))
        .arg(proxy.port().to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(frozen.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "sent");
    let start = Instant::now();
    let n: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM menus")
        .await
        .unwrap();
    assert_eq!(n, Some(9));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "waited {:?}",
        start.elapsed()
    );
    let _ = frozen.kill();
    let _ = frozen.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_database_is_frozen_or_dead() {
    let mut db = TestDb::start(20).await;
    let config = config_for(
        &db,
        "health_check_interval = 0.2\nhealth_check_timeout = 0.5\nconnect_timeout = 2",
        "",
    );
    let proxy = Proxy::start(&config).await;
    let mut c = proxy.conn().await;
    c.query_drop("SELECT 1").await.unwrap();
    proxy.readyz_becomes(200, Duration::from_secs(5)).await;
    assert_eq!(proxy.metric("sluice_database_up").await, 1.0);
    // Stopped: connections stay open, nothing answers.
    db.signal("STOP");
    let frozen = Instant::now();
    let why = proxy.readyz_becomes(503, Duration::from_secs(5)).await;
    assert_eq!(why, "database not answering\n");
    // Within about one interval plus the timeout (generous for a shared machine).
    assert!(
        frozen.elapsed() < Duration::from_secs(3),
        "{:?}",
        frozen.elapsed()
    );
    assert_eq!(proxy.metric("sluice_database_up").await, 0.0);
    db.signal("CONT");
    proxy.readyz_becomes(200, Duration::from_secs(10)).await;
    // The client's connection to Sluice survived; its next statement runs.
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM menus").await.unwrap();
    assert_eq!(n, Some(9));
    c.disconnect().await.unwrap();
    // Dead: nothing accepts connections at its address.
    db.kill();
    let why = proxy.readyz_becomes(503, Duration::from_secs(5)).await;
    assert_eq!(why, "database unreachable\n");
    db.restart().await;
    proxy.readyz_becomes(200, Duration::from_secs(15)).await;
    let mut c = proxy.conn().await;
    c.query_drop("SELECT 1").await.unwrap();
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_without_an_answer_within_query_timeout_gets_3024_and_the_session_goes_on() {
    let db = TestDb::start(20).await;
    let proxy = Proxy::start(&config_for(&db, "query_timeout = 1", "")).await;
    let steady = Steady::start(&proxy).await;
    let mut c = proxy.conn().await;
    // Under the limit: runs as usual.
    let slept: Option<i64> = c.query_first("SELECT SLEEP(0.2)").await.unwrap();
    assert_eq!(slept, Some(0));
    let started = Instant::now();
    let e = c.query_drop("SELECT SLEEP(5)").await.unwrap_err();
    let took = started.elapsed();
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 3024, "{}", s.message);
            assert!(s.message.contains("query_timeout"), "{}", s.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The session goes on, on another backend connection.
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM menus").await.unwrap();
    assert_eq!(n, Some(9));
    // Inside a transaction the connection ends after the error, as the transaction did.
    c.query_drop("BEGIN").await.unwrap();
    assert!(c.query_drop("SELECT SLEEP(5)").await.is_err());
    assert!(c.query_drop("SELECT 1").await.is_err());
    let mut fresh = proxy.conn().await;
    fresh.query_drop("SELECT 1").await.unwrap();
    fresh.disconnect().await.unwrap();
    // Nothing of it reached the client beside: no error, no stall.
    steady.check().await;
}
