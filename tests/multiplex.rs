//! Multiplexing: many clients share a few backend connections without seeing each
//! other's transactions or session state; pins are counted by reason.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::clients::python_script;
use common::proxy::config_for;
use common::{Proxy, TestDb};
use mysql_async::prelude::*;
use mysql_async::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_open_transactions_share_the_capped_pool() {
    // max_connections 20 × 50% = a cap of 10 backend connections.
    let db = TestDb::start(20).await;
    db.reset_max_used_connections().await;
    let proxy = Arc::new(Proxy::start(&config_for(&db, "max_connections_percent = 50", "")).await);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = proxy.conn().await;
            c.query_drop("BEGIN").await.unwrap();
            c.exec_drop(
                "INSERT INTO items (owner, note) VALUES (?, 'pending')",
                (i,),
            )
            .await
            .unwrap();
            sluice::clock::sleep(Duration::from_millis(20)).await;
            // Only this transaction's own uncommitted row is visible to it.
            let seen: Vec<i32> = c
                .query("SELECT owner FROM items WHERE note = 'pending'")
                .await
                .unwrap();
            c.query_drop("ROLLBACK").await.unwrap();
            c.disconnect().await.unwrap();
            assert_eq!(seen, [i], "client {i} saw another client's uncommitted row");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let used = db.global_status("Max_used_connections").await;
    // The cap, plus the connection that reads this status.
    assert!(used <= 10 + 1, "backend saw {used} connections");
    assert_eq!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await,
        10.0
    );
    assert_eq!(
        proxy
            .metric("sluice_database_connection_borrow_timeouts_total")
            .await,
        0.0
    );
    let pending: Option<i64> = db
        .admin()
        .await
        .query_first("SELECT COUNT(*) FROM shop.items")
        .await
        .unwrap();
    assert_eq!(pending, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_state_never_reaches_other_clients() {
    let db = TestDb::start(20).await;
    let proxy = Arc::new(Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await);
    // A cap of 4: the pinned client holds one, the others share three.
    let mut pinned = proxy.conn().await;
    pinned.query_drop("SET @x := 42").await.unwrap();
    // A session variable does not pin: it is replayed wherever this client runs next.
    let mut ansi = proxy.conn().await;
    ansi.query_drop("SET SESSION sql_mode = 'ANSI'")
        .await
        .unwrap();
    let mut others = Vec::new();
    for _ in 0..20 {
        let proxy = proxy.clone();
        others.push(tokio::spawn(async move {
            let mut c = proxy.conn().await;
            for _ in 0..10 {
                let (x, mode): (Option<i64>, String) = c
                    .query_first("SELECT @x, @@SESSION.sql_mode")
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(x, None, "a user variable leaked");
                assert!(!mode.contains("ANSI"), "sql_mode leaked: {mode}");
            }
            c.disconnect().await.unwrap();
        }));
    }
    for t in others {
        t.await.unwrap();
    }
    // Both sessions still see their own state on every statement.
    for _ in 0..5 {
        let x: Option<i64> = pinned.query_first("SELECT @x").await.unwrap();
        assert_eq!(x, Some(42));
        let mode: Option<String> = ansi.query_first("SELECT @@SESSION.sql_mode").await.unwrap();
        assert!(mode.unwrap().contains("ANSI"));
    }
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"user_variable\"}")
            .await,
        1.0
    );
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"system_variable\"}")
            .await,
        0.0
    );
    assert_eq!(
        proxy.metric("sluice_database_connections_pinned").await,
        1.0
    );
    pinned.disconnect().await.unwrap();
    ansi.disconnect().await.unwrap();
    // Pinned backends are reset before reuse: no client sees @x afterwards.
    let mut c = proxy.conn().await;
    for _ in 0..8 {
        let x: Option<Option<i64>> = c.query_first("SELECT @x").await.unwrap();
        assert_eq!(x, Some(None));
    }
    c.disconnect().await.unwrap();
    sluice::clock::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        proxy.metric("sluice_database_connections_pinned").await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_pin_reason_is_counted() {
    let db = TestDb::start(40).await;
    let proxy = Proxy::for_db(&db).await;
    let cases = [
        ("SELECT GET_LOCK('sluice', 1)", "named_lock"),
        ("LOCK TABLES menus READ", "table_lock"),
        ("CREATE TEMPORARY TABLE tmp (a INT)", "temporary_table"),
        ("PREPARE s FROM 'SELECT 1'", "sql_prepare"),
        (
            "SELECT SQL_CALC_FOUND_ROWS * FROM menus LIMIT 1",
            "found_rows",
        ),
        ("SET TRANSACTION READ ONLY", "next_transaction"),
        // One-shot variables cannot be replayed later.
        ("SET insert_id = 5", "system_variable"),
        ("HANDLER menus OPEN", "handler"),
        ("XA START 'sluice'", "xa"),
        // The lexer sees a CALL; the tracker reports state it cannot name (the
        // procedure set a user variable).
        ("CALL set_user_variable()", "unexplained_state"),
    ];
    db.cli_socket("CREATE PROCEDURE shop.set_user_variable() SET @from_procedure = 1");
    for (sql, reason) in cases {
        let mut c = proxy.conn().await;
        c.query_drop(sql).await.unwrap();
        c.disconnect().await.unwrap();
        let label = format!("sluice_pins_total{{reason=\"{reason}\"}}");
        // Counted once the response is relayed: the client may be gone first.
        assert_eq!(proxy.metric_reaches(&label, 1.0).await, 1.0, "{sql}");
    }
    // Binary-protocol prepared statements do not pin (tests/prepared.rs).
    let mut c = proxy.conn().await;
    let name: Option<String> = c
        .exec_first("SELECT name FROM menus WHERE id = ?", (3,))
        .await
        .unwrap();
    assert_eq!(name.as_deref(), Some("カツ丼"));
    c.disconnect().await.unwrap();
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"prepared_statement\"}")
            .await,
        0.0
    );
    // Plain statements and transactions do not pin.
    let mut c = proxy.conn().await;
    c.query_drop("BEGIN").await.unwrap();
    c.query_drop("SELECT * FROM menus").await.unwrap();
    c.query_drop("COMMIT").await.unwrap();
    c.query_drop("USE other").await.unwrap();
    let db_name: Option<String> = c.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(db_name.as_deref(), Some("other"));
    c.disconnect().await.unwrap();
    let (pins, text) = proxy.pins_total().await;
    assert_eq!(pins, 10.0, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_schema_never_sees_another_clients_schema() {
    let db = TestDb::start(10).await;
    // A cap of one: the only backend connection has been on `shop` before B comes.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut a = proxy.conn().await;
    a.query_drop("SELECT * FROM menus").await.unwrap();
    let mut b = mysql_async::Conn::new(proxy.opts().db_name(None::<String>))
        .await
        .unwrap();
    let schema: Option<Option<String>> = b.query_first("SELECT DATABASE()").await.unwrap();
    assert_eq!(schema, Some(None));
    let e = b.query_drop("SELECT * FROM menus").await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 1046),
        "{e:?}"
    );
    // And A still finds its own.
    let n: Option<i64> = a.query_first("SELECT COUNT(*) FROM menus").await.unwrap();
    assert_eq!(n, Some(9));
}

/// A pinned session's backend is reset before the next client gets it; the next client
/// still has the character set and collation its handshake asked for (MySQL's reset
/// puts the server's default back, MariaDB's keeps the handshake's). mysql_async sets
/// them in the handshake only, with no `SET NAMES` after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_backend_keeps_the_handshake_character_set() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    const CHARSET: &str = "SELECT @@character_set_client, @@collation_connection";
    let mut direct = Conn::new(db.direct_opts()).await.unwrap();
    let expected: Option<(String, String)> = direct.query_first(CHARSET).await.unwrap();
    let mut pinned = proxy.conn().await;
    pinned.query_drop("SET @pinned := 1").await.unwrap();
    let got: Option<(String, String)> = pinned.query_first(CHARSET).await.unwrap();
    assert_eq!(got, expected);
    pinned.disconnect().await.unwrap();
    // The only backend was pinned, then reset for this client.
    let mut next = proxy.conn().await;
    let got: Option<(String, String)> = next.query_first(CHARSET).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"user_variable\"}")
            .await,
        1.0
    );
}

/// Clients whose handshakes name different character sets and collations share the
/// backends (no pool partition per character set, no connections closed to switch):
/// each gets, statement after statement, what its handshake gives on a direct
/// connection, including an id the server does not know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_other_handshake_character_sets_share_backends() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    // utf8mb4_general_ci, latin1_swedish_ci, utf8mb4_0900_ai_ci (not in MariaDB 10.11),
    // utf8mb4_unicode_ci, utf8mb3_general_ci, cp1251_general_ci.
    let ids = [45u8, 8, 255, 224, 33, 51];
    let run = |port: u16, id: u8| {
        tokio::task::spawn_blocking(move || {
            python_script("handshake_charset.py", &[port.to_string(), id.to_string()])
        })
    };
    let mut direct = Vec::new();
    for id in ids {
        direct.push(run(db.port, id).await.unwrap());
    }
    assert!(direct[1].contains("latin1_swedish_ci"), "{}", direct[1]);
    for _ in 0..2 {
        let tasks: Vec<_> = ids.iter().map(|&id| run(proxy.port(), id)).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), direct[i], "collation id {}", ids[i]);
        }
    }
    let m = proxy.metrics().await;
    assert_eq!(
        common::metrics::sample(
            &m,
            "sluice_database_connections_closed_total{reason=\"repartition\"}"
        ),
        0.0,
        "{m}"
    );
    assert!(common::metrics::sample(&m, "sluice_session_state_replays_total") >= 1.0);
}

/// Clients that negotiate either EOF style, with or without multi-statements (and that
/// switch them with COM_SET_OPTION), share the backends: every backend connection has
/// CLIENT_DEPRECATE_EOF and multi-statements, the relay puts back the EOF packets a
/// classic client expects, and Sluice switches multi-statements per command. Each client
/// gets, packet for packet, the bytes a direct connection gives it (rows, no rows,
/// several results, a syntax error once multi-statements are off, warnings read after
/// its backend went back, a prepare, binary rows, a cursor and its fetches,
/// COM_FIELD_LIST), and no connection is closed to serve another kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_either_eof_style_share_backends_byte_for_byte() {
    let db = TestDb::start(10).await;
    // A cap of 2 for 4 kinds of client.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    // Classic; DEPRECATE_EOF; MULTI_STATEMENTS; both, and IGNORE_SPACE.
    let styles = ["0", "0x1000000", "0x10000", "0x1010100"];
    let run = |port: u16, caps: &'static str| {
        tokio::task::spawn_blocking(move || {
            python_script("response_shapes.py", &[port.to_string(), caps.to_string()])
        })
    };
    let mut direct = Vec::new();
    for caps in styles {
        direct.push(run(db.port, caps).await.unwrap());
    }
    // The two EOF styles do differ on the wire (so the comparison below means something).
    assert_ne!(direct[0], direct[1]);
    assert!(direct[0].contains("cursor 4 fe00004200"), "{}", direct[0]);
    assert!(direct[0].contains("multi-off 1 ff2804"), "{}", direct[0]);
    for _ in 0..2 {
        let tasks: Vec<_> = styles.iter().map(|&caps| run(proxy.port(), caps)).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), direct[i], "client flags {}", styles[i]);
        }
    }
    let m = proxy.metrics().await;
    let sample = |name: &str| common::metrics::sample(&m, name);
    let closed = |reason: &str| {
        sample(&format!(
            "sluice_database_connections_closed_total{{reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(closed("repartition"), 0.0, "{m}");
    // Every connection opened is one of the cap's two, the capacity probe's, or one that
    // replaced a connection closed for exceeding the idle limit.
    let opened = sample("sluice_database_connections_setup_succeeded_total");
    assert!(opened >= 2.0, "{m}");
    assert!(
        opened <= 2.0 + closed("probe") + closed("idle_limit"),
        "{m}"
    );
}

/// Backend connections track system variables by name, every one the server has but its
/// per-statement reports, not `'*'` (under which MySQL reports `statement_id` after every
/// statement): on the connection that read the names, on later ones, and after a pinned
/// connection's reset. Changes are still seen: a `SET` is replayed on another backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_variables_are_tracked_by_name() {
    let db = TestDb::start(40).await;
    let proxy = Proxy::for_db(&db).await;
    let tracked = |list: String| {
        let names: Vec<&str> = list.split(',').collect();
        assert!(names.len() > 100, "{list}");
        for name in ["time_zone", "sql_mode", "autocommit", "insert_id"] {
            assert!(names.contains(&name), "{name} in {list}");
        }
        for report in ["*", "statement_id", "last_gtid"] {
            assert!(!names.contains(&report), "{report} in {list}");
        }
    };
    const LIST: &str = "SELECT @@session.session_track_system_variables";
    // The first connection learns the names; a transaction keeps it while a second
    // client needs another; a user variable pins a third, reset when it leaves.
    let mut first = proxy.conn().await;
    first.query_drop("BEGIN").await.unwrap();
    tracked(first.query_first(LIST).await.unwrap().unwrap());
    let mut second = proxy.conn().await;
    second.query_drop("BEGIN").await.unwrap();
    tracked(second.query_first(LIST).await.unwrap().unwrap());
    let mut pinned = proxy.conn().await;
    pinned.query_drop("SET @x := 1").await.unwrap();
    tracked(pinned.query_first(LIST).await.unwrap().unwrap());
    pinned.disconnect().await.unwrap();
    // The reset connection is the one idle now (or a new one, if the reset is slow).
    let mut c = proxy.conn().await;
    c.query_drop("SET time_zone = '+09:00'").await.unwrap();
    tracked(c.query_first(LIST).await.unwrap().unwrap());
    first.query_drop("COMMIT").await.unwrap();
    second.query_drop("COMMIT").await.unwrap();
    for _ in 0..3 {
        // Whichever backend runs it, the tracker is the named list and the client's
        // time zone follows it there.
        tracked(c.query_first(LIST).await.unwrap().unwrap());
        let tz: Option<String> = c.query_first("SELECT @@time_zone").await.unwrap();
        assert_eq!(tz.as_deref(), Some("+09:00"));
        first.query_drop("BEGIN").await.unwrap();
        second.query_drop("DO 1").await.unwrap();
        first.query_drop("COMMIT").await.unwrap();
    }
    assert_eq!(proxy.pins_total().await.0, 1.0);
}
