//! Operations: graceful drain, idle client timeout, idle or vanished clients inside a
//! transaction, client limit, the CLI.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::clients::python_script;
use common::proxy::config_for;
use common::{Proxy, TestDb};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_lets_open_transactions_finish() {
    let db = TestDb::start(20).await;
    let config = config_for(&db, "", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 5\ndrain_timeout = 10",
    );
    let proxy = Proxy::start(&config).await;
    let addr = proxy.addr;
    let mut idle = proxy.conn().await;
    let mut busy = proxy.conn().await;
    busy.query_drop("BEGIN").await.unwrap();
    busy.query_drop("INSERT INTO items (owner, note) VALUES (3, 'drained')")
        .await
        .unwrap();
    let stopping = tokio::spawn(proxy.stop());
    sluice::clock::sleep(Duration::from_millis(300)).await;
    // No new clients.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    // The idle session is closed; the one inside a transaction may finish it.
    assert!(idle.query_drop("SELECT 1").await.is_err());
    busy.query_drop("INSERT INTO items (owner, note) VALUES (3, 'drained too')")
        .await
        .unwrap();
    busy.query_drop("COMMIT").await.unwrap();
    // After its transaction, the session is closed too, and the drain completes.
    assert!(busy.query_drop("SELECT 1").await.is_err());
    sluice::clock::timeout(Duration::from_secs(5), stopping)
        .await
        .unwrap()
        .unwrap();
    let n: Option<i64> = db
        .admin()
        .await
        .query_first("SELECT COUNT(*) FROM shop.items WHERE owner = 3")
        .await
        .unwrap();
    assert_eq!(n, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_disconnected() {
    let db = TestDb::start(20).await;
    let config = config_for(&db, "", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 5\nidle_client_timeout = 1",
    );
    let proxy = Proxy::start(&config).await;
    let mut c = proxy.conn().await;
    c.query_drop("SELECT 1").await.unwrap();
    sluice::clock::sleep(Duration::from_millis(1600)).await;
    assert!(
        c.query_drop("SELECT 1").await.is_err(),
        "idle client still connected"
    );
    assert_eq!(
        proxy
            .metric("sluice_client_connections{tls=\"false\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_limit_gives_1040() {
    let db = TestDb::start(20).await;
    let config = config_for(&db, "", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 5\nmax_client_connections = 2",
    );
    let proxy = Proxy::start(&config).await;
    let a = proxy.conn().await;
    let b = proxy.conn().await;
    let e = mysql_async::Conn::new(proxy.opts()).await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1040),
        "{e:?}"
    );
    drop((a, b));
    // Slots come back when clients leave.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match mysql_async::Conn::new(proxy.opts()).await {
            Ok(c) => {
                c.disconnect().await.unwrap();
                break;
            }
            Err(_) if Instant::now() < deadline => {
                sluice::clock::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("client slots not returned: {e:?}"),
        }
    }
}

#[test]
fn check_config_accepts_good_files_and_rejects_bad_ones() {
    let bin = env!("CARGO_BIN_EXE_sluice");
    let root = env!("CARGO_MANIFEST_DIR");
    for good in ["config/local.toml", "config/docker/sluice.toml"] {
        let out = Command::new(bin)
            .args(["--check-config", &format!("{root}/{good}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{good}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:1\"\nlisten_backlg = 5\n[backend]\naddress = \"db:3306\"\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("--check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_backlg"));
    // The documented example names TLS files that do not exist here: a clear error.
    let out = Command::new(bin)
        .args(["--check-config", &format!("{root}/config/sluice.toml")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.crt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_in_transaction_is_rolled_back_and_the_backend_returned() {
    // One backend connection, so the frozen client's must come back to the pool.
    let db = TestDb::start(10).await;
    let config = config_for(&db, "max_connections_percent = 10", "").replace(
        "handshake_timeout = 5",
        "handshake_timeout = 5\nidle_transaction_timeout = 1",
    );
    let proxy = Proxy::start(&config).await;
    let mut frozen = proxy.conn().await;
    let mut other = proxy.conn().await;
    frozen.query_drop("BEGIN").await.unwrap();
    frozen
        .query_drop("INSERT INTO items (owner, note) VALUES (6, 'frozen')")
        .await
        .unwrap();
    // Idle outside a transaction is fine; idle inside one is not.
    sluice::clock::sleep(Duration::from_millis(1600)).await;
    let e = frozen.query_drop("COMMIT").await.unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains("4031") || matches!(e, mysql_async::Error::Io(_)),
        "{text}"
    );
    let n: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM items WHERE owner = 6")
        .await
        .unwrap();
    assert_eq!(n, Some(0), "the frozen transaction was not rolled back");
    assert_eq!(db.open_transactions().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_in_a_transaction_leaves_nothing_behind() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let out = python_script("vanish.py", &[proxy.port().to_string()]);
    assert_eq!(out.trim(), "locked");
    // Its row lock is gone (a wait would time out in 2 s) and its insert rolled back.
    let mut other = proxy.conn().await;
    other
        .query_drop("SET SESSION innodb_lock_wait_timeout = 2")
        .await
        .unwrap();
    other
        .query_drop("UPDATE menus SET price = price WHERE id = 1")
        .await
        .unwrap();
    let n: Option<i64> = other
        .query_first("SELECT COUNT(*) FROM items WHERE owner = 7")
        .await
        .unwrap();
    assert_eq!(n, Some(0), "the vanished client's insert survived");
    other.disconnect().await.unwrap();
    assert_eq!(
        db.open_transactions().await,
        0,
        "a transaction is still open on the server"
    );
    // The backend came back to the pool (cap 1), reset, not leaked.
    assert_eq!(proxy.metric("sluice_database_connections").await, 1.0);
}
