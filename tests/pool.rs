//! The pool: the cap follows @@max_connections, idle connections are recycled,
//! init_query runs on every backend connection, an idle connection the server closed is
//! never handed out, SIGTERM drains the real binary.

mod common;

use std::process::{Command, Stdio};

use common::process::SluiceProcess;
use std::time::{Duration, Instant};

use common::proxy::config_for;
use common::{Proxy, TestDb};
use mysql_async::prelude::*;

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        sluice::clock::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_follows_max_connections_and_idle_connections_expire() {
    let db = TestDb::start(40).await;
    let extra = "max_connections_percent = 50\ncapacity_refresh_interval = 0.5\nidle_timeout = 1";
    let proxy = Proxy::start(&config_for(&db, extra, "")).await;
    assert_eq!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await,
        20.0
    );
    db.cli_socket("SET GLOBAL max_connections = 60");
    eventually("cap 30", async || {
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await
            == 30.0
    })
    .await;

    // Open a few backend connections at once, then let them go idle and expire.
    let mut conns = Vec::new();
    for _ in 0..4 {
        let mut c = proxy.conn().await;
        c.query_drop("BEGIN").await.unwrap();
        conns.push(c);
    }
    assert!(proxy.metric("sluice_database_connections").await >= 4.0);
    for mut c in conns {
        c.query_drop("COMMIT").await.unwrap();
        c.disconnect().await.unwrap();
    }
    eventually("idle connections closed", async || {
        proxy
            .metric("sluice_database_connections_closed_total{reason=\"idle_timeout\"}")
            .await
            >= 4.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_the_server_closed_is_not_handed_out() {
    // A cap of 1, so the second client can only get the first one's backend, which may
    // stay idle (by default only half the cap may: zero here, and the reaper would close
    // it before the server does).
    let db = TestDb::start(5).await;
    // The health check and the topology monitor are kept away: their looks would keep
    // the idle connection alive past its wait_timeout, or find it closed first.
    let backend = "max_connections_percent = 20\nmax_idle_connections_percent = 20\n\
                   health_check_interval = 600\nmonitor_interval = 600";
    let proxy = Proxy::start(&config_for(&db, backend, "")).await;
    let mut a = proxy.conn().await;
    // Replayed on the backend, which keeps it when it goes back to the pool.
    a.query_drop("SET SESSION wait_timeout = 1").await.unwrap();
    a.query_drop("SELECT 1").await.unwrap();
    a.disconnect().await.unwrap();
    sluice::clock::sleep(Duration::from_millis(2500)).await;
    let mut b = proxy.conn().await;
    let timeout: Option<u64> = b.query_first("SELECT @@wait_timeout").await.unwrap();
    assert_ne!(timeout, Some(1), "b must not inherit a's wait_timeout");
    b.disconnect().await.unwrap();
    assert_eq!(
        proxy
            .metric("sluice_database_connections_closed_total{reason=\"server_closed\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_query_runs_on_every_backend_connection() {
    let db = TestDb::start(40).await;
    let extra = "init_query = \"SET SESSION sql_select_limit = 3\"";
    let proxy = Proxy::start(&config_for(&db, extra, "")).await;
    let mut c = proxy.conn().await;
    for _ in 0..3 {
        let rows: Vec<i32> = c.query("SELECT id FROM menus").await.unwrap();
        assert_eq!(rows.len(), 3);
    }
    // Also after a reset (a pinned session returns its backend reset).
    c.query_drop("SET @pin := 1").await.unwrap();
    c.disconnect().await.unwrap();
    let mut c = proxy.conn().await;
    let rows: Vec<i32> = c.query("SELECT id FROM menus").await.unwrap();
    assert_eq!(rows.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_real_binary() {
    let db = TestDb::start(40).await;
    let port = common::db::free_port();
    let config = config_for(&db, "", "").replace(
        "127.0.0.1:0\"\nhandshake",
        &format!("127.0.0.1:{port}\"\nhandshake"),
    );
    let mut sluice = SluiceProcess::start(&config, port, Stdio::piped()).await;
    let child = sluice.child.take().unwrap();
    let mut c = mysql_async::Conn::new(db.direct_opts().tcp_port(port))
        .await
        .unwrap();
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO items (owner, note) VALUES (9, 'sigterm')")
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    sluice::clock::sleep(Duration::from_millis(300)).await;
    c.query_drop("COMMIT").await.unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stderr).contains("draining client sessions"));
    let n: Option<i64> = db
        .admin()
        .await
        .query_first("SELECT COUNT(*) FROM shop.items WHERE owner = 9")
        .await
        .unwrap();
    assert_eq!(n, Some(1));
}
