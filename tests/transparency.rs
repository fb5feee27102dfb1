//! Session state is replayed, not pinned: a scripted session (text and binary protocol)
//! gives identical answers directly and through Sluice, while 50 other clients with other
//! settings hammer a pool of four backends. The drivers' connect-time preambles do not pin.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::clients::python_script;
use common::proxy::{config_for, Proxy};
use common::{Flavor, TestDb};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

/// The statements of the scripted session. Every one changes or reads session state.
const SCRIPT: &[&str] = &[
    "SET NAMES latin1",
    "SELECT 'café', @@character_set_client, @@character_set_results, @@collation_connection",
    "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
    "SELECT 'a' = 'A', @@collation_connection",
    "SET character_set_results = NULL",
    "SELECT 'ラーメン', @@character_set_results",
    "SET character_set_results = utf8mb4",
    "SET sql_mode = 'STRICT_ALL_TABLES'",
    "INSERT INTO shop.short_notes (note) VALUES ('far too long for five')",
    "SET sql_mode = ''",
    "INSERT INTO shop.short_notes (note) VALUES ('far too long for five')",
    "SHOW WARNINGS",
    "SELECT LAST_INSERT_ID(), @@sql_mode",
    "SET sql_mode = 'ANSI'",
    "SELECT 'a' || 'b', \"name\" FROM shop.menus WHERE id = 1",
    "SET sql_mode = DEFAULT",
    "SET time_zone = '+09:00'",
    "SELECT @@time_zone, FROM_UNIXTIME(0)",
    "USE other",
    "SELECT DATABASE()",
    "USE shop",
    "SET autocommit = 0",
    "INSERT INTO shop.short_notes (note) VALUES ('tx')",
    "SELECT COUNT(*) FROM shop.short_notes",
    "ROLLBACK",
    "SELECT COUNT(*), @@autocommit FROM shop.short_notes",
    "INSERT INTO shop.short_notes (note) VALUES ('kept')",
    "COMMIT",
    "SET autocommit = 1",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SELECT @@tx_isolation",
    "SET SESSION TRANSACTION READ ONLY",
    "INSERT INTO shop.short_notes (note) VALUES ('ro')",
    "SET SESSION TRANSACTION READ WRITE",
    "SET group_concat_max_len = 7",
    "SELECT GROUP_CONCAT(image_prefix ORDER BY id) FROM shop.menus",
    "SELECT id FROM shop.menus WHERE price > 500 ORDER BY id",
    "SELECT FOUND_ROWS()",
    "SET sql_select_limit = 2",
    "SELECT id FROM shop.menus ORDER BY id",
    "SET sql_select_limit = DEFAULT",
    "SET foreign_key_checks = 0, unique_checks = 0, wait_timeout = 1234",
    "SELECT @@autocommit, @@sql_mode, @@time_zone, @@character_set_client, \
     @@character_set_results, @@collation_connection, @@tx_isolation, @@tx_read_only, \
     @@group_concat_max_len, @@foreign_key_checks, @@unique_checks, @@wait_timeout",
    "SELECT COUNT(*) FROM shop.short_notes",
];

fn fresh_tables(db: &TestDb) {
    db.cli_socket(
        "DROP TABLE IF EXISTS shop.short_notes; \
         CREATE TABLE shop.short_notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(5)) \
         ENGINE=InnoDB",
    );
}

/// Runs the script and records everything the client can observe: rows (as raw bytes),
/// errors, affected rows, insert ids, warning counts, status-derived autocommit.
async fn run_script(mut c: Conn) -> Vec<String> {
    let mut seen = Vec::new();
    for sql in SCRIPT {
        let sql = &Flavor::current().dialect(sql);
        let line = match c.query::<Row, _>(sql).await {
            Ok(rows) => {
                // Exact bytes (Value's Debug shortens long ones).
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|r| r.unwrap().into_iter().map(exact).collect())
                    .collect();
                format!(
                    "{sql} -> {rows:?} affected={} id={:?} warnings={}",
                    c.affected_rows(),
                    c.last_insert_id(),
                    c.get_warnings()
                )
            }
            Err(mysql_async::Error::Server(e)) => format!("{sql} -> ERR {} {}", e.code, e.message),
            Err(e) => panic!("{sql}: {e}"),
        };
        seen.push(line);
    }
    c.disconnect().await.unwrap();
    seen
}

fn exact(v: Value) -> String {
    match v {
        Value::Bytes(b) => b.escape_ascii().to_string(),
        other => format!("{other:?}"),
    }
}

/// A client with its own settings that checks, statement after statement, that it keeps
/// seeing them.
async fn hammer(proxy: Arc<Proxy>, i: usize, stop: Arc<AtomicBool>) -> usize {
    let mut c = proxy.conn().await;
    let (set, check, expected): (&str, &str, &str) = match i % 5 {
        0 => (
            "SET NAMES latin1",
            "SELECT @@character_set_results",
            "latin1",
        ),
        1 => (
            "SET sql_mode = 'ANSI_QUOTES'",
            "SELECT @@sql_mode",
            "ANSI_QUOTES",
        ),
        2 => ("SET time_zone = '-05:00'", "SELECT @@time_zone", "-05:00"),
        3 => ("SET autocommit = 0", "SELECT @@autocommit", "0"),
        _ => (
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SELECT @@tx_isolation",
            "SERIALIZABLE",
        ),
    };
    c.query_drop(set).await.unwrap();
    let check = &Flavor::current().dialect(check);
    let mut rounds = 0;
    while !stop.load(Ordering::Relaxed) {
        let got: Option<String> = c.query_first(check).await.unwrap();
        assert_eq!(got.as_deref(), Some(expected), "client {i} lost its state");
        if i % 5 == 3 {
            // autocommit=0: every statement opens a transaction; end it.
            c.query_drop("COMMIT").await.unwrap();
        }
        let mode: Option<String> = c.query_first("SELECT @@sql_mode").await.unwrap();
        if i % 5 != 1 {
            assert!(
                !mode.unwrap_or_default().contains("ANSI"),
                "client {i} saw ANSI"
            );
        }
        rounds += 1;
    }
    c.disconnect().await.unwrap();
    rounds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_session_is_identical_through_a_shared_pool() {
    let db = TestDb::start(20).await;
    fresh_tables(&db);
    let direct = run_script(Conn::new(db.direct_opts()).await.unwrap()).await;
    // Binary protocol: every type, NULLs, long data and a cursor (Connector/Python and a
    // packet-level client), also compared with the direct run.
    let binary = |port: u16, table: &'static str| {
        tokio::task::spawn_blocking(move || {
            let types = python_script("prepared_types.py", &[port.to_string(), table.into()]);
            let cursor = python_script("cursor.py", &[port.to_string()]);
            types + &cursor
        })
    };
    let direct_binary = binary(db.port, "typed_direct").await.unwrap();

    fresh_tables(&db);
    // A cap of 4 (20% of 20): the scripted client and 50 others share four backends.
    let proxy = Arc::new(
        Proxy::start(&config_for(
            &db,
            "max_connections_percent = 20\nconnection_borrow_timeout = 60",
            "",
        ))
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..50)
        .map(|i| tokio::spawn(hammer(proxy.clone(), i, stop.clone())))
        .collect();
    sluice::clock::sleep(std::time::Duration::from_millis(200)).await;
    let proxied_binary = binary(proxy.port(), "typed_proxied");
    let proxied = run_script(proxy.conn().await).await;
    let proxied_binary = proxied_binary.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut rounds = 0;
    for h in hammers {
        rounds += h.await.unwrap();
    }

    for (d, p) in direct.iter().zip(&proxied) {
        assert_eq!(d, p, "through Sluice the session saw something else");
    }
    assert_eq!(direct.len(), proxied.len());
    assert_eq!(
        direct_binary, proxied_binary,
        "binary protocol through Sluice"
    );
    assert!(
        rounds > 50,
        "the other clients barely ran ({rounds} rounds)"
    );
    let (pins, text) = proxy.pins_total().await;
    assert_eq!(pins, 0.0, "session variables pinned:\n{text}");
    let replays = proxy.metric("sluice_session_state_replays_total").await;
    eprintln!(
        "{rounds} hammer rounds, {replays} replays; direct run:\n{}",
        direct.join("\n")
    );
    assert!(replays > 0.0);
    assert!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await
            <= 4.0
    );
}

/// What drivers and ORMs send when they connect, as they send it.
const PREAMBLES: &[&str] = &[
    // Connector/J
    "SET character_set_results = NULL",
    "SET autocommit=1",
    "SET sql_mode='STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'",
    "SELECT @@session.auto_increment_increment AS auto_increment_increment, \
     @@character_set_client AS character_set_client, @@character_set_connection AS \
     character_set_connection, @@character_set_results AS character_set_results, \
     @@collation_server AS collation_server, @@init_connect AS init_connect, \
     @@interactive_timeout AS interactive_timeout, @@license AS license, \
     @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS \
     max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@sql_mode AS sql_mode, \
     @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@tx_isolation AS \
     transaction_isolation, @@wait_timeout AS wait_timeout",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    // Go driver with params, Sequelize / mysql2, Prisma, Rails
    "SET NAMES utf8mb4",
    "SET time_zone = '+00:00'",
    "SET @@SESSION.sql_mode = CONCAT(REPLACE(REPLACE(REPLACE(@@sql_mode, \
     'STRICT_TRANS_TABLES', ''), 'STRICT_ALL_TABLES', ''), 'TRADITIONAL', ''), \
     ',NO_AUTO_VALUE_ON_ZERO')",
    "SET @@SESSION.sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), \
     @@SESSION.sql_auto_is_null = 0, @@SESSION.wait_timeout = 2147483",
    "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
    "SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_TRANS_TABLES'",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_preambles_do_not_pin() {
    let db = TestDb::start(20).await;
    let proxy = Proxy::for_db(&db).await;
    for sql in PREAMBLES {
        let mut c = proxy.conn().await;
        c.query_drop(db.flavor.dialect(sql)).await.unwrap();
        c.query_drop("SELECT * FROM menus").await.unwrap();
        c.disconnect().await.unwrap();
    }
    // The real Python drivers, as they connect by default (PyMySQL sends
    // `SET AUTOCOMMIT = 0`, Connector/Python `SET NAMES ... COLLATE ...` and autocommit).
    for driver in ["pymysql", "mysql.connector"] {
        let out = python_script(
            "default_connect.py",
            &[driver.to_string(), proxy.port().to_string()],
        );
        assert_eq!(out.trim(), "ラーメン", "{driver}");
    }
    let text = proxy.metrics().await;
    let pins: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sluice_pins_total{") && !l.ends_with(" 0"))
        .collect();
    assert!(pins.is_empty(), "preambles pinned: {pins:?}");
}

/// Variables of many kinds, set to non-default values, survive moves between backends
/// on a pool of one shared with another client: every replay succeeds (MySQL's
/// `statement_id`, reported after every statement, or any other report, is never sent
/// back), and no variable pins. Names differ per server where they must.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_variables_replay_without_errors_on_a_shared_backend() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut common = vec![
        ("autocommit", "0"),
        ("sql_mode", "'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'"),
        ("time_zone", "'+05:30'"),
        ("character_set_results", "NULL"),
        ("wait_timeout", "1234"),
        ("interactive_timeout", "2345"),
        ("net_read_timeout", "77"),
        ("group_concat_max_len", "99"),
        ("sql_select_limit", "5"),
        ("sql_safe_updates", "1"),
        ("big_tables", "1"),
        ("div_precision_increment", "9"),
        ("lc_time_names", "'ja_JP'"),
        ("default_storage_engine", "'MyISAM'"),
        ("sort_buffer_size", "1048576"),
        ("max_heap_table_size", "33554432"),
        ("long_query_time", "2.5"),
        ("lock_wait_timeout", "100"),
        ("innodb_lock_wait_timeout", "20"),
        ("unique_checks", "0"),
        ("foreign_key_checks", "0"),
        ("sql_notes", "0"),
        ("optimizer_switch", "'index_merge=off'"),
    ];
    if db.is_mysql() {
        common.extend([
            ("transaction_isolation", "'SERIALIZABLE'"),
            ("transaction_read_only", "1"),
            ("max_execution_time", "5000"),
            ("cte_max_recursion_depth", "5000"),
            ("explicit_defaults_for_timestamp", "0"),
            ("sql_require_primary_key", "1"),
            ("default_collation_for_utf8mb4", "'utf8mb4_general_ci'"),
            // Id 278: beyond the handshake's one byte, only reachable by name.
            ("collation_connection", "'utf8mb4_0900_as_cs'"),
        ]);
    } else {
        common.extend([
            ("tx_isolation", "'SERIALIZABLE'"),
            ("tx_read_only", "1"),
            ("max_statement_time", "5"),
            ("max_recursive_iterations", "5000"),
        ]);
    }
    let mut c = proxy.conn().await;
    let mut other = proxy.conn().await;
    for (name, value) in &common {
        c.query_drop(format!("SET SESSION {name} = {value}"))
            .await
            .unwrap_or_else(|e| panic!("SET {name}: {e}"));
    }
    let read = common
        .iter()
        .map(|(name, _)| format!("@@{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let before: Row = c
        .query_first(format!("SELECT {read}"))
        .await
        .unwrap()
        .unwrap();
    c.query_drop("COMMIT").await.unwrap();
    for _ in 0..3 {
        // The other client takes the only backend and puts it back to the baseline.
        sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
        let _: Vec<i32> = other.query("SELECT id FROM menus").await.unwrap();
        let now: Row = c
            .query_first(format!("SELECT {read}"))
            .await
            .unwrap()
            .unwrap();
        c.query_drop("COMMIT").await.unwrap();
        assert_eq!(
            format!("{:?}", now.unwrap()),
            format!("{:?}", before.clone().unwrap())
        );
    }
    let m = proxy.metrics().await;
    assert!(common::metrics::sample(&m, "sluice_session_state_replays_total") >= 3.0);
    assert_eq!(common::metrics::pins(&m), 0.0, "{m}");
}
