//! Real clients through Sluice in front of a real MySQL or MariaDB: the mariadb CLI,
//! MySQL 9's own mysql CLI, pymysql and mysql_async; queries, transactions,
//! multi-statements, wrong passwords; the greeting a client sees.

mod common;

use common::clients::{mariadb_cli, mariadb_ok, mysql_cli, python_script};
use common::{Proxy, TestDb, APP_PASSWORD, MENUS};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_reads_the_menus() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let out = mariadb_ok(
        proxy.port(),
        &["shop"],
        "SELECT id, name, price FROM menus ORDER BY id",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0], "1\t目玉焼き定食\t500");
    assert_eq!(lines[8], "9\tカレーライス\t450");
    // Multi-statements and multiple result sets in one COM_QUERY.
    let out = mariadb_ok(
        proxy.port(),
        &["shop"],
        "SELECT 1; SELECT 2, 3; DO 1; SELECT COUNT(*) FROM menus",
    );
    assert_eq!(out, "1\n2\t3\n9\n");
    proxy.stop().await;
}

/// MySQL 9's own client library has no mysql_native_password: it logs in with
/// caching_sha2_password, over plaintext and over TLS-less defaults (`PREFERRED`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_9_cli_logs_in_and_reads_the_menus() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let read = |port: u16| {
        let sql = "SELECT name, @@character_set_client, @@collation_connection \
                   FROM menus WHERE id = 4";
        let out = mysql_cli(port, &["shop"], sql);
        assert!(
            out.status.success(),
            "mysql CLI: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let direct = read(db.port);
    if db.is_mysql() {
        assert_eq!(direct, "ラーメン\tutf8mb4\tutf8mb4_0900_ai_ci\n");
    } else {
        // MariaDB 10.11 does not know the client's collation (id 255,
        // utf8mb4_0900_ai_ci) and falls back to latin1: directly as through Sluice.
        assert_eq!(direct, "????\tlatin1\tlatin1_swedish_ci\n");
    }
    for _ in 0..2 {
        assert_eq!(read(proxy.port()), direct);
    }
    let out = mysql_cli(proxy.port(), &["-pwrong", "shop"], "SELECT 1");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"));
    proxy.stop().await;
}

/// The greeting a client sees through Sluice names the backend's version (MySQL's own,
/// not MariaDB's `5.5.5-` form) and the backend's default plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_is_the_backends() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let direct = python_script("server_info.py", &[db.port.to_string()]);
    let proxied = python_script("server_info.py", &[proxy.port().to_string()]);
    assert_eq!(proxied, direct);
    let plugin = if db.is_mysql() {
        "caching_sha2_password"
    } else {
        "mysql_native_password"
    };
    assert!(direct.trim().ends_with(plugin), "{direct}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_gets_1045() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let out = mariadb_cli(proxy.port(), "wrong", &[], "SELECT 1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1045") && err.contains("Access denied"),
        "{err}"
    );

    let opts = proxy.opts().pass(Some("nope"));
    let e = mysql_async::Conn::new(opts).await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1045),
        "{e:?}"
    );
    // Counted once the failed login's connection is closed, which may be a moment
    // after the client read its error.
    let failed = "sluice_client_connections_setup_failed_total{reason=\"auth\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while proxy.metric(failed).await < 2.0 {
        assert!(std::time::Instant::now() < deadline, "not counted");
        sluice::clock::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.metric(failed).await, 2.0);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_lambda_handler() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let out = python_script(
        "lambda_handler.py",
        &[
            proxy.port().to_string(),
            "app".into(),
            APP_PASSWORD.into(),
            "--count".into(),
            "3".into(),
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in lines {
        assert!(
            line.contains("[1, \"目玉焼き定食\", 500, \"menu_med\", 0]"),
            "{line}"
        );
        assert!(
            line.contains("[9, \"カレーライス\", 450, \"menu_cur\", 1]"),
            "{line}"
        );
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_async_queries_commit_and_rollback() {
    let db = TestDb::start(65).await;
    let proxy = Proxy::for_db(&db).await;
    let mut c = proxy.conn().await;
    let rows: Vec<(i32, String, i32, String, i32)> =
        c.query("SELECT * FROM menus ORDER BY id").await.unwrap();
    let want: Vec<_> = MENUS
        .iter()
        .map(|(a, b, c, d, e)| (*a, b.to_string(), *c, d.to_string(), *e))
        .collect();
    assert_eq!(rows, want);

    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("INSERT INTO items (owner, note) VALUES (1, 'kept')")
        .await
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("START TRANSACTION").await.unwrap();
    c.query_drop("INSERT INTO items (owner, note) VALUES (1, 'dropped')")
        .await
        .unwrap();
    c.query_drop("ROLLBACK").await.unwrap();
    let notes: Vec<String> = c
        .query("SELECT note FROM items WHERE owner = 1")
        .await
        .unwrap();
    assert_eq!(notes, ["kept"]);

    // Errors come back as the server's own error packets and the session goes on.
    let e = c
        .query_drop("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1146),
        "{e:?}"
    );
    let one: Option<i32> = c.query_first("SELECT 1").await.unwrap();
    assert_eq!(one, Some(1));
    c.ping().await.unwrap();
    c.reset().await.unwrap();
    let db_name: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db_name.as_deref(), Some("shop"));
    c.disconnect().await.unwrap();
    assert!(proxy.metric("sluice_queries_total").await >= 10.0);
    proxy.stop().await;
}
