//! Binary-protocol prepared statements without pinning: many clients over a few backends,
//! every type and long data identical to a direct connection, a per-backend bound that
//! keeps the server under max_prepared_stmt_count, and sysbench with prepared statements.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::clients::python_script;
use common::proxy::{config_for, Proxy};
use common::{TestDb, APP_PASSWORD, APP_USER};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_share_a_few_backends_without_pinning() {
    let db = TestDb::start(20).await;
    // A cap of 4.
    let proxy = Arc::new(Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await);
    let mut tasks = Vec::new();
    for i in 0..30u32 {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = proxy.conn().await;
            let by_id = c
                .prep("SELECT name, price FROM menus WHERE id = ?")
                .await
                .unwrap();
            let own = c.prep(format!("SELECT ? + {i}, ? AS echo")).await.unwrap();
            for round in 0..20u32 {
                let id = (i + round) % 9 + 1;
                let row: Option<(String, i64)> = c.exec_first(&by_id, (id,)).await.unwrap();
                let (_, price) = row.unwrap();
                assert!(price > 0);
                let (sum, echo): (i64, String) = c
                    .exec_first(&own, (round, format!("client {i}")))
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(sum, i64::from(round + i));
                assert_eq!(echo, format!("client {i}"));
            }
            c.disconnect().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // One client prepares, others use the pool, then it executes again: its statement is
    // prepared on whichever backend it gets.
    let mut early = proxy.conn().await;
    let stmt = early
        .prep("SELECT image_prefix FROM menus WHERE id = ?")
        .await
        .unwrap();
    let mut others = Vec::new();
    for _ in 0..8 {
        let proxy = proxy.clone();
        others.push(tokio::spawn(async move {
            let mut c = proxy.conn().await;
            for _ in 0..10 {
                c.query_drop("SELECT SLEEP(0.01)").await.unwrap();
            }
            c.disconnect().await.unwrap();
        }));
    }
    for id in 1..=9 {
        let prefix: Option<String> = early.exec_first(&stmt, (id,)).await.unwrap();
        assert!(prefix.unwrap().starts_with("menu_"));
    }
    for t in others {
        t.await.unwrap();
    }
    early.disconnect().await.unwrap();

    let (pins, text) = proxy.pins_total().await;
    assert_eq!(pins, 0.0, "prepared statements pinned:\n{text}");
    assert!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await
            <= 4.0
    );
    // The shared statement was prepared once per backend, not once per client.
    let prepared = proxy
        .metric("sluice_backend_statements_prepared_total")
        .await;
    assert!(
        prepared <= 4.0 * 32.0,
        "{prepared} server prepares for 32 distinct statements on 4 backends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_long_data_read_back_as_directly() {
    let db = TestDb::start(20).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    let direct = python_script(
        "prepared_types.py",
        &[db.port.to_string(), "typed_direct".into()],
    );
    let long_data = || db.global_status("Com_stmt_send_long_data");
    let before = long_data().await;
    let proxied = python_script(
        "prepared_types.py",
        &[proxy.port().to_string(), "typed_proxied".into()],
    );
    assert!(
        long_data().await > before,
        "no COM_STMT_SEND_LONG_DATA went through Sluice"
    );
    assert_eq!(direct.lines().count(), 6, "{direct}");
    assert!(direct.contains("6000000 bytes"), "{direct}");
    assert!(direct.contains("error 1054 42S22"), "{direct}");
    assert_eq!(direct, proxied);
    assert!(
        proxy
            .metric("sluice_backend_statements_prepared_total")
            .await
            >= 2.0
    );
    let (pins, text) = proxy.pins_total().await;
    assert_eq!(pins, 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_types_follow_the_statement_to_another_backend() {
    let db = TestDb::start(10).await;
    // A cap of 2: the second execute must run on the other backend.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    let direct = python_script("types_once.py", &[db.port.to_string()]);
    assert_eq!(direct.trim(), "42 100");
    let proxied = python_script("types_once.py", &[proxy.port().to_string()]);
    assert_eq!(proxied, direct);
    assert_eq!(
        proxy
            .metric("sluice_backend_statements_prepared_total")
            .await,
        2.0,
        "the statement did not move to a second backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_keeps_its_backend_until_the_last_row() {
    let db = TestDb::start(10).await;
    // A cap of 2: the cursor holds one backend, three other clients share the other.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    let direct = python_script("cursor.py", &[db.port.to_string()]);
    assert!(
        direct.starts_with("opened [[1, 2, 3, 4], [5, 6, 7, 8], [9]] error 1421"),
        "{direct}"
    );
    let proxied = python_script("cursor.py", &[proxy.port().to_string()]);
    assert_eq!(proxied, direct);
    let (pins, text) = proxy.pins_total().await;
    assert_eq!(pins, 0.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_clients_cursor_leaves_nothing_in_the_statement_another_client_shares() {
    let db = TestDb::start(10).await;
    // A cap of 1: the second client gets the first one's backend and its statement.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let direct = python_script("cursor_shared.py", &[db.port.to_string()]);
    assert_eq!(
        direct,
        "prepare eof 0002\nexecute 1 [1, 2] 0002\nexecute 2 [1, 2] 0002\n"
    );
    let proxied = python_script("cursor_shared.py", &[proxy.port().to_string()]);
    assert_eq!(proxied, direct);
    // The cursor's own client executing its statement again gets its rows too.
    let args = [proxy.port().to_string(), "again".to_string()];
    let again = python_script("cursor_shared.py", &args);
    assert_eq!(again, format!("{direct}again [1, 2] 0002\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_statements_stay_under_max_prepared_stmt_count() {
    let limit = 100;
    let db = TestDb::start_with(20, vec![format!("--max-prepared-stmt-count={limit}")]).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    // The client keeps every statement open (its own cache holds them all): directly it
    // would fail at the server's limit.
    let opts = proxy.opts().stmt_cache_size(Some(25_000));
    let mut c = mysql_async::Conn::new(opts).await.unwrap();
    let mut peak = 0u64;
    for i in 0..20_000u32 {
        let sql = format!("SELECT ? + {i}");
        let sum: Option<i64> = c.exec_first(sql, (1,)).await.unwrap();
        assert_eq!(sum, Some(i64::from(i) + 1));
        if i % 1000 == 0 {
            peak = peak.max(db.global_status("Prepared_stmt_count").await);
        }
    }
    // The first statements were evicted from the backend long ago: executing them
    // prepares them again, transparently.
    for i in 0..50u32 {
        let sum: Option<i64> = c.exec_first(format!("SELECT ? + {i}"), (2,)).await.unwrap();
        assert_eq!(sum, Some(i64::from(i) + 2));
    }
    peak = peak.max(db.global_status("Prepared_stmt_count").await);
    assert!(
        peak < limit,
        "the server held {peak} statements (limit {limit})"
    );
    assert!(
        proxy
            .metric("sluice_backend_statements_evicted_total")
            .await
            >= 19_000.0
    );
    c.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_with_server_side_prepared_statements_does_not_pin() {
    let db = TestDb::start(40).await;
    db.cli_socket("CREATE DATABASE sbtest");
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let sysbench = |port: u16, cmd: &str| {
        let out = std::process::Command::new("sysbench")
            .args([
                "oltp_read_only",
                "--db-driver=mysql",
                "--mysql-host=127.0.0.1",
                "--mysql-db=sbtest",
                "--tables=2",
                "--table-size=1000",
                "--threads=8",
                "--time=3",
                "--db-ps-mode=auto",
                "--mysql-ssl=off",
            ])
            .arg(format!("--mysql-port={port}"))
            .arg(format!("--mysql-user={APP_USER}"))
            .arg(format!("--mysql-password={APP_PASSWORD}"))
            .arg(cmd)
            .output()
            .expect("sysbench runs (scripts/test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sysbench {cmd}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    sysbench(db.port, "prepare");
    let executes = db.global_status("Com_stmt_execute").await;
    let text = sysbench(proxy.port(), "run");
    // Server-side statements really ran; libmysqlclient sends parameter types only with
    // a statement's first execute, so later executes on other backends needed them
    // re-sent by Sluice.
    assert!(db.global_status("Com_stmt_execute").await > executes + 1000);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("ignored errors:").contains(" 0 "), "{text}");
    assert!(!line("transactions:").contains(" 0 "), "{text}");
    let (pins, metrics) = proxy.pins_total().await;
    assert_eq!(pins, 0.0, "{metrics}");
    assert!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await
            <= 4.0
    );
}

/// What a prepared statement's text does to the session counts at every execute, as it
/// does for the same text sent as a query: GET_LOCK through the binary protocol pins, so
/// the lock never stays on a backend another client gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_get_lock_pins_its_session() {
    let db = TestDb::start(10).await;
    // A cap of 2.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    let mut holder = proxy.conn().await;
    let got: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", ("sluice-test",))
        .await
        .unwrap();
    assert_eq!(got, Some(1));
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"named_lock\"}")
            .await,
        1.0
    );
    // Every other client, on whichever backend, finds the lock taken.
    for _ in 0..5 {
        let mut other = proxy.conn().await;
        let got: Option<i64> = other
            .query_first("SELECT GET_LOCK('sluice-test', 0)")
            .await
            .unwrap();
        assert_eq!(got, Some(0), "another client got the holder's lock");
        other.disconnect().await.unwrap();
    }
}

/// A statement's text means what the sql_mode it was prepared under says: clients with
/// another sql_mode never share its server statement, and one prepared under ANSI_QUOTES
/// keeps that meaning after the session changes sql_mode and its backend changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_text_keeps_the_sql_mode_it_was_prepared_under() {
    let db = TestDb::start(20).await;
    // One backend keeping one statement: each client's execute prepares its statement
    // there again, evicting the other's.
    let backend = "max_connections_percent = 5\nmax_prepared_statements = 1";
    let proxy = Proxy::start(&config_for(&db, backend, "")).await;
    let direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let mut answers = Vec::new();
    for mut c in [direct, proxy.conn().await] {
        let mut plain = if answers.is_empty() {
            mysql_async::Conn::new(db.direct_opts()).await.unwrap()
        } else {
            proxy.conn().await
        };
        c.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
            .await
            .unwrap();
        let sql = "SELECT \"name\" FROM menus WHERE id = ?";
        let stmt = c.prep(sql).await.unwrap();
        let quoted: Option<String> = c.exec_first(&stmt, (1,)).await.unwrap();
        // Same text, default sql_mode: a string literal.
        let literal: Option<String> = plain.exec_first(sql, (1,)).await.unwrap();
        c.query_drop("SET SESSION sql_mode = DEFAULT")
            .await
            .unwrap();
        // Other clients use the (only) backend, then the statement runs again.
        let mut rounds = Vec::new();
        for _ in 0..3 {
            let other: Option<String> = plain.exec_first(sql, (1,)).await.unwrap();
            assert_eq!(other.as_deref(), Some("name"));
            sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
            let again: Option<String> = c.exec_first(&stmt, (1,)).await.unwrap();
            rounds.push(again);
        }
        let mode: Option<String> = c.query_first("SELECT @@sql_mode").await.unwrap();
        answers.push((quoted, literal, rounds, mode));
    }
    assert_eq!(answers[0].0, answers[0].2[0]);
    assert_eq!(answers[0].1.as_deref(), Some("name"));
    assert_ne!(answers[0].0.as_deref(), Some("name"));
    assert_eq!(answers[1], answers[0], "through Sluice");
}

/// Long data that cannot be delivered (no backend within connection_borrow_timeout) is
/// reported at the execute, which has a response, never in place of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_long_data_fails_the_execute_and_the_connection_stays_in_step() {
    let db = TestDb::start(10).await;
    let backend = "max_connections_percent = 10\nconnection_borrow_timeout = 1";
    let proxy = Proxy::start(&config_for(&db, backend, "")).await;
    let out = python_script("long_data_error.py", &[proxy.port().to_string()]);
    assert_eq!(
        out.trim(),
        "error 9501 Timed-out waiting to acquire database connection | 42"
    );
}

/// A transaction never silently outlives its backend: when re-preparing a statement on
/// the transaction's backend fails in a way that closes it (the statement's schema was
/// dropped), the client gets the error and loses its connection, as with a direct one,
/// instead of its later statements and COMMIT running in autocommit elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_is_not_lost_silently_when_a_re_prepare_fails() {
    let db = TestDb::start(10).await;
    let mut admin = db.admin().await;
    admin
        .query_drop("CREATE DATABASE gone; CREATE TABLE gone.t (id INT)")
        .await
        .unwrap();
    // One backend keeping one statement.
    let backend = "max_connections_percent = 10\nmax_prepared_statements = 1";
    let proxy = Proxy::start(&config_for(&db, backend, "")).await;
    let mut a = proxy.conn().await;
    a.query_drop("USE gone").await.unwrap();
    let stmt = a.prep("SELECT COUNT(*) FROM t").await.unwrap();
    a.query_drop("USE shop").await.unwrap();
    // Another client's statement pushes A's out of the backend.
    let mut b = proxy.conn().await;
    let one: Option<i64> = b.exec_first("SELECT ?", (1,)).await.unwrap();
    assert_eq!(one, Some(1));
    b.disconnect().await.unwrap();
    admin.query_drop("DROP DATABASE gone").await.unwrap();

    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("INSERT INTO items (owner, note) VALUES (7, 'in a transaction')")
        .await
        .unwrap();
    let failed: Result<Option<i64>, _> = a.exec_first(&stmt, ()).await;
    assert!(
        matches!(failed, Err(mysql_async::Error::Server(ref s)) if s.code == 1049),
        "{failed:?}"
    );
    // The transaction died with its backend, and so did the connection.
    assert!(a.query_drop("COMMIT").await.is_err());
    let kept: Option<i64> = admin
        .query_first("SELECT COUNT(*) FROM shop.items WHERE owner = 7")
        .await
        .unwrap();
    assert_eq!(kept, Some(0));
}

/// The column types the DDL tests go through, in go-sql-driver's order of trouble.
const RETYPED: [&str; 5] = ["INT", "VARCHAR(255)", "BIGINT", "TEXT", "INT"];

/// Inserts a value fitting `column` into shop.retyped and reads it back, both prepared
/// by a client without a statement cache; what each step gave, as text.
async fn insert_and_read(c: &mut mysql_async::Conn, column: &str) -> String {
    let value = if column.contains("INT") {
        "42"
    } else {
        "κόσμε üöäßñóùéàâÿœ'îë Árvíztűrő いろはにほへとちりぬるを"
    };
    let insert = c
        .exec_drop("INSERT INTO shop.retyped VALUES (?)", (value,))
        .await;
    let read: Result<Vec<String>, _> = c
        .exec("SELECT CAST(value AS CHAR) FROM shop.retyped", ())
        .await;
    format!(
        "{column}: {:?} {:?}",
        insert.map_err(|e| e.to_string()),
        read.map_err(|e| e.to_string())
    )
}

/// A statement prepared after DDL changed its table answers as a fresh prepare would,
/// not as the server statement prepared before the DDL (shared from another session):
/// go-sql-driver's TestString after TestInt. Each client prepares anew (no client-side
/// statement cache), as that suite does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_prepared_after_ddl_see_the_new_table() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut seen = Vec::new();
    for opts in [db.direct_opts(), proxy.opts()] {
        let opts = opts.stmt_cache_size(0);
        let mut out = Vec::new();
        for column in RETYPED {
            let mut c = mysql_async::Conn::new(opts.clone()).await.unwrap();
            c.query_drop("DROP TABLE IF EXISTS shop.retyped")
                .await
                .unwrap();
            c.query_drop(format!(
                "CREATE TABLE shop.retyped (value {column}) CHARACTER SET utf8mb3"
            ))
            .await
            .unwrap();
            out.push(insert_and_read(&mut c, column).await);
            c.disconnect().await.unwrap();
        }
        seen.push(out);
    }
    assert!(
        seen[0].iter().all(|l| l.contains("Ok(())")),
        "direct: {:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "through Sluice");
}

/// The same after DDL run straight on the server, not through Sluice: the pool's watch
/// of the server's DDL counters (once a second) starts a new statement generation, so a
/// prepare after the change gets a fresh server statement (on MySQL the shared old one
/// fails with 3988 at TEXT after BIGINT). One backend, kept idle between clients, so
/// the old statement is there to be shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_prepared_after_ddl_outside_sluice_see_the_new_table() {
    let db = TestDb::start(10).await;
    let backend = "max_connections_percent = 10\nmax_idle_connections_percent = 10";
    let proxy = Proxy::start(&config_for(&db, backend, "")).await;
    let watch = Duration::from_millis(2500);
    let mut admin = db.admin().await;
    // A statement prepared through Sluice first, so the watch has started.
    let mut c = mysql_async::Conn::new(proxy.opts()).await.unwrap();
    let _: Vec<i64> = c.exec("SELECT ? + 1", (1,)).await.unwrap();
    c.disconnect().await.unwrap();
    sluice::clock::sleep(watch).await;
    let mut seen = Vec::new();
    for (through, opts) in [(false, db.direct_opts()), (true, proxy.opts())] {
        let opts = opts.stmt_cache_size(0);
        let mut out = Vec::new();
        for column in RETYPED {
            admin
                .query_drop(format!(
                    "DROP TABLE IF EXISTS shop.retyped; \
                     CREATE TABLE shop.retyped (value {column}) CHARACTER SET utf8mb3"
                ))
                .await
                .unwrap();
            if through {
                sluice::clock::sleep(watch).await;
            }
            let mut c = mysql_async::Conn::new(opts.clone()).await.unwrap();
            out.push(insert_and_read(&mut c, column).await);
            c.disconnect().await.unwrap();
        }
        seen.push(out);
    }
    assert!(
        seen[0].iter().all(|l| l.contains("Ok(())")),
        "direct: {:?}",
        seen[0]
    );
    assert_eq!(seen[1], seen[0], "through Sluice");
}
