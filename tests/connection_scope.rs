//! Values that belong to the connection (LAST_INSERT_ID(), ROW_COUNT(), FOUND_ROWS(),
//! warnings) are a client's own even when other clients used its backend in between.

mod common;

use common::proxy::config_for;
use common::{Proxy, TestDb};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_clients_read_their_own_connection_values() {
    // max_connections 10 × 10%: one backend connection shared by everyone.
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut a = proxy.conn().await;
    let mut b = proxy.conn().await;

    a.query_drop("INSERT INTO items (owner, note) VALUES (1, 'a')")
        .await
        .unwrap();
    let a_id = a.last_insert_id().unwrap();
    // B uses the same (only) backend after A's affinity window, and inserts too.
    b.query_drop("INSERT INTO items (owner, note) VALUES (2, 'b')")
        .await
        .unwrap();
    let b_id = b.last_insert_id().unwrap();
    assert_ne!(a_id, b_id);
    let got: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(got, Some(a_id), "A read B's insert id");
    let got: Option<u64> = b.query_first("SELECT @@identity").await.unwrap();
    assert_eq!(got, Some(b_id));

    // A client that never inserted reads 0, whatever the backend's last user did.
    let mut c = proxy.conn().await;
    let got: Option<u64> = c.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(got, Some(0));

    // Warnings and ROW_COUNT() of a client's own previous statement.
    a.query_drop("SELECT CAST('x' AS SIGNED)").await.unwrap();
    let warnings: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].1, 1292);
    // B did nothing that warned: it must not see A's warning.
    let warnings: Vec<(String, u32, String)> = b.query("SHOW WARNINGS").await.unwrap();
    assert!(warnings.is_empty(), "B saw A's warnings: {warnings:?}");
    a.query_drop("UPDATE items SET note = 'a2' WHERE owner = 1")
        .await
        .unwrap();
    let rc: Option<i64> = a.query_first("SELECT ROW_COUNT()").await.unwrap();
    assert_eq!(rc, Some(1));
    // And the real pool was shared, not pinned.
    assert_eq!(
        proxy.metric("sluice_database_connections_pinned").await,
        0.0
    );
    assert_eq!(
        proxy
            .metric("sluice_database_connections_max_allowed")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_backends_never_show_the_previous_users_values() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut b = proxy.conn().await;
    let mut a = proxy.conn().await;
    b.query_drop("INSERT INTO items (owner, note) VALUES (2, 'b')")
        .await
        .unwrap();
    b.query_drop("SELECT CAST('y' AS SIGNED)").await.unwrap();
    sluice::clock::sleep(std::time::Duration::from_millis(300)).await;
    // A update (affinity window opens on B's old backend) then reads its insert id.
    a.query_drop("UPDATE items SET note = 'seen' WHERE owner = 2")
        .await
        .unwrap();
    let id: Option<u64> = a.query_first("SELECT LAST_INSERT_ID()").await.unwrap();
    assert_eq!(id, Some(0), "A saw B's insert id");
    // Inside a transaction, on a backend whose previous user left warnings.
    sluice::clock::sleep(std::time::Duration::from_millis(300)).await;
    b.query_drop("SELECT CAST('z' AS SIGNED)").await.unwrap();
    sluice::clock::sleep(std::time::Duration::from_millis(300)).await;
    a.query_drop("BEGIN").await.unwrap();
    let w: Vec<(String, u32, String)> = a.query("SHOW WARNINGS").await.unwrap();
    assert!(w.is_empty(), "A saw B's warnings: {w:?}");
    let id: Option<u64> = a.query_first("SELECT @@identity").await.unwrap();
    assert_eq!(id, Some(0));
    a.query_drop("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_rows_row_count_and_warnings_are_the_clients_own_later() {
    // One backend connection for both clients.
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let mut a = proxy.conn().await;
    let mut b = proxy.conn().await;
    let mut seen = Vec::new();
    for c in [&mut direct, &mut a] {
        let rows: Vec<i32> = c.query("SELECT id FROM menus WHERE id <= 3").await.unwrap();
        assert_eq!(rows.len(), 3);
        // B's nine-row SELECT runs on the same backend in between.
        let all: Vec<i32> = b.query("SELECT id FROM menus").await.unwrap();
        assert_eq!(all.len(), 9);
        sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
        let n: Option<u64> = c.query_first("SELECT FOUND_ROWS()").await.unwrap();
        // The last statement returned one row, so FOUND_ROWS() is now 1.
        let total: Vec<(u64,)> = c.query("SELECT FOUND_ROWS() AS total").await.unwrap();
        let empty: Vec<i32> = c
            .query("SELECT id FROM menus WHERE id > 100")
            .await
            .unwrap();
        let zero: Option<u64> = c.query_first("SELECT FOUND_ROWS()").await.unwrap();
        // ROW_COUNT() likewise: this client's UPDATE, though B's SELECT ran since.
        c.query_drop("UPDATE menus SET price = price + 1 WHERE id <= 2")
            .await
            .unwrap();
        let _: Vec<i32> = b.query("SELECT id FROM menus").await.unwrap();
        sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
        let updated: Option<i64> = c.query_first("SELECT ROW_COUNT()").await.unwrap();
        let after_select: Option<i64> = c.query_first("SELECT ROW_COUNT() AS n").await.unwrap();
        // Warnings too, listed twice (listing does not clear them).
        c.query_drop("SELECT CAST('x1' AS SIGNED), CAST('x2' AS SIGNED)")
            .await
            .unwrap();
        let _: Vec<i32> = b.query("SELECT id FROM menus WHERE id = 1").await.unwrap();
        sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
        let warnings: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        let again: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
        assert_eq!(warnings, again);
        let mut diagnostics = Vec::new();
        for sql in ["SELECT @@warning_count", "SELECT @@error_count"] {
            let n: Option<u64> = c.query_first(sql).await.unwrap();
            diagnostics.push(format!("{sql}: {n:?}"));
        }
        let errors: Vec<(String, u32, String)> = c.query("SHOW ERRORS").await.unwrap();
        diagnostics.push(format!("errors: {errors:?}"));
        // And an error.
        assert!(c.query_drop("SELECT nope FROM menus").await.is_err());
        let _: Vec<i32> = b.query("SELECT id FROM menus WHERE id = 1").await.unwrap();
        sluice::clock::sleep(std::time::Duration::from_millis(150)).await;
        let errors: Vec<(String, u32, String)> = c.query("SHOW ERRORS").await.unwrap();
        diagnostics.push(format!("errors: {errors:?}"));
        for sql in ["SELECT @@error_count", "SELECT @@warning_count"] {
            let n: Option<u64> = c.query_first(sql).await.unwrap();
            diagnostics.push(format!("{sql}: {n:?}"));
        }
        let warnings_after_error: Vec<(String, u32, String)> =
            c.query("SHOW WARNINGS").await.unwrap();
        diagnostics.push(format!("warnings: {warnings_after_error:?}"));
        seen.push((
            n,
            total,
            empty.len(),
            zero,
            updated,
            after_select,
            warnings,
            diagnostics,
        ));
    }
    let direct_warnings = seen[0].6.clone();
    assert_eq!(
        direct_warnings.len(),
        2,
        "direct warnings: {direct_warnings:?}"
    );
    assert_eq!(
        seen[0],
        (
            Some(3),
            vec![(1,)],
            0,
            Some(0),
            Some(2),
            Some(-1),
            direct_warnings,
            seen[0].7.clone()
        ),
        "direct"
    );
    assert!(seen[0].7[3].contains("1054"), "direct: {:?}", seen[0].7);
    assert_eq!(seen[1], seen[0], "through Sluice");
}

/// A statement after the one that warned decides what `SHOW WARNINGS` lists: on MariaDB
/// one that reads a table clears the list and one that reads none keeps it; on MySQL
/// every statement but SHOW WARNINGS / ERRORS clears it. Sluice answers from what it kept
/// only while that is still the session's list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_statements_clear_kept_warnings_as_the_server_would() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 20", "")).await;
    let mut direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let mut via = proxy.conn().await;
    let mut other = proxy.conn().await;
    let mut seen = Vec::new();
    for c in [&mut direct, &mut via] {
        let mut lists = Vec::new();
        for between in [
            "SELECT COUNT(*) FROM menus",
            "SELECT 1",
            "UPDATE menus SET price = price WHERE id = 1",
            "DO 1",
        ] {
            c.query_drop("SELECT CAST('w' AS SIGNED)").await.unwrap();
            // Past the affinity window: the backend goes back, the warning is kept.
            sluice::clock::sleep(std::time::Duration::from_millis(250)).await;
            let _: Vec<i32> = other.query("SELECT id FROM menus").await.unwrap();
            c.query_drop(between).await.unwrap();
            let _: Vec<i32> = other.query("SELECT id FROM menus").await.unwrap();
            sluice::clock::sleep(std::time::Duration::from_millis(250)).await;
            let w: Vec<(String, u32, String)> = c.query("SHOW WARNINGS").await.unwrap();
            let n: Option<u64> = c.query_first("SELECT @@warning_count").await.unwrap();
            lists.push(format!("{between}: {w:?} {n:?}"));
        }
        seen.push(lists);
    }
    assert!(seen[0][0].contains("[] Some(0)"), "direct: {:?}", seen[0]);
    if db.is_mysql() {
        // MySQL clears the list for every statement but the diagnostics statements.
        assert!(
            seen[0].iter().all(|l| l.ends_with("[] Some(0)")),
            "direct: {:?}",
            seen[0]
        );
    } else {
        // MariaDB keeps it for a statement that reads no table.
        assert!(seen[0][1].contains("1292"), "direct: {:?}", seen[0]);
    }
    assert_eq!(seen[1], seen[0], "through Sluice");
}

/// An insert id that no OK packet carries (`SELECT LAST_INSERT_ID(42)`, `DO
/// LAST_INSERT_ID(55)`, MariaDB's `INSERT … RETURNING`) is the client's own afterwards,
/// on the same backend at once and after other clients used it, as directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_ids_set_without_an_ok_packet_are_the_clients_own() {
    let db = TestDb::start(10).await;
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 10", "")).await;
    let mut other = proxy.conn().await;
    let direct = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let mut seen = Vec::new();
    for mut c in [direct, proxy.conn().await] {
        let mut reads = Vec::new();
        c.query_drop("INSERT INTO items (owner, note) VALUES (7, 'ok packet')")
            .await
            .unwrap();
        // Right after, on the same backend with nobody in between.
        let _: Option<u64> = c.query_first("SELECT LAST_INSERT_ID(42)").await.unwrap();
        reads.push(last_insert_id(&mut c).await);
        c.query_drop("DO LAST_INSERT_ID(55)").await.unwrap();
        reads.push(last_insert_id(&mut c).await);
        // After another client ran statements on the only backend.
        c.query_drop("DO LAST_INSERT_ID(66)").await.unwrap();
        sluice::clock::sleep(std::time::Duration::from_millis(250)).await;
        other
            .query_drop("INSERT INTO items (owner) VALUES (8)")
            .await
            .unwrap();
        let _: Option<u64> = other
            .query_first("SELECT LAST_INSERT_ID(99)")
            .await
            .unwrap();
        reads.push(last_insert_id(&mut c).await);
        if !db.is_mysql() {
            // MariaDB only (MySQL has no RETURNING): the generated id is LAST_INSERT_ID(),
            // though the OK packet that would carry it is replaced by a result set.
            let ids: Vec<u64> = c
                .query("INSERT INTO items (owner) VALUES (9) RETURNING id")
                .await
                .unwrap();
            sluice::clock::sleep(std::time::Duration::from_millis(250)).await;
            other.query_drop("DO 1").await.unwrap();
            let id = last_insert_id(&mut c).await;
            reads.push(Some(u64::from(id == ids.first().copied())));
        }
        seen.push(reads);
    }
    let expected: Vec<Option<u64>> = if db.is_mysql() {
        vec![Some(42), Some(55), Some(66)]
    } else {
        vec![Some(42), Some(55), Some(66), Some(1)]
    };
    assert_eq!(seen[0], expected, "direct");
    assert_eq!(seen[1], expected, "through Sluice");
}

async fn last_insert_id(c: &mut mysql_async::Conn) -> Option<u64> {
    c.query_first("SELECT LAST_INSERT_ID()").await.unwrap()
}
