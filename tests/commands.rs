//! Protocol commands and edge cases behave as on a direct connection: large results,
//! 16 MiB continuation packets, COM_INIT_DB, COM_STATISTICS, COM_FIELD_LIST,
//! COM_CHANGE_USER, OK packets for clients without session tracking, LOAD DATA LOCAL.

mod common;

use std::process::Command;

use common::clients::{mariadb_cli, mariadb_ok, python_script};
use common::proxy::config_for;
use common::{Proxy, TestDb, APP_PASSWORD};
use mysql_async::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_results_and_continuation_packets() {
    let db = TestDb::start(20).await;
    let proxy = Proxy::for_db(&db).await;
    let mut c = proxy.conn().await;
    // About 50 MB in 50,000 rows.
    let rows: Vec<(u64, String)> = c
        .query(format!(
            "SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM {}",
            common::numbers(50_000)
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 50_000);
    assert!(rows
        .iter()
        .all(|(i, s)| s.len() == 1000 && s.as_bytes()[0] == 65 + (*i % 26) as u8));

    // A row larger than 16 MiB comes in continuation packets.
    let big: Option<String> = c
        .query_first("SELECT REPEAT('z', 17 * 1024 * 1024 + 3)")
        .await
        .unwrap();
    assert_eq!(big.map(|s| s.len()), Some(17 * 1024 * 1024 + 3));
    // A statement larger than 16 MiB goes out in continuation packets (and pins).
    let payload = "y".repeat(17 * 1024 * 1024);
    let len: Option<u64> = c
        .query_first(format!("SELECT LENGTH('{payload}')"))
        .await
        .unwrap();
    assert_eq!(len, Some(17 * 1024 * 1024));
    let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM menus").await.unwrap();
    assert_eq!(n, Some(9));
    c.disconnect().await.unwrap();
    assert_eq!(
        proxy
            .metric("sluice_pins_total{reason=\"large_statement\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_behave_as_direct() {
    let db = TestDb::start(30).await;
    let proxy = Proxy::for_db(&db).await;
    // COM_INIT_DB from the CLI's `use`, and the schema follows the client.
    let out = mariadb_ok(
        proxy.port(),
        &["shop"],
        "use other; SELECT DATABASE(); use shop; SELECT COUNT(*) FROM menus",
    );
    assert_eq!(out, "other\n9\n");
    // COM_STATISTICS and COM_PING from mariadb-admin.
    let admin = |cmd: &str| {
        Command::new("mariadb-admin")
            .args([
                "-h127.0.0.1",
                &format!("-P{}", proxy.port()),
                "-uapp",
                &format!("-p{APP_PASSWORD}"),
                cmd,
            ])
            .output()
            .unwrap()
    };
    let status = admin("status");
    assert!(status.status.success(), "{status:?}");
    assert!(
        String::from_utf8_lossy(&status.stdout).starts_with("Uptime: "),
        "{status:?}"
    );
    let ping = admin("ping");
    assert!(
        String::from_utf8_lossy(&ping.stdout).contains("mysqld is alive"),
        "{ping:?}"
    );

    // pymysql lacks CLIENT_SESSION_TRACK and DEPRECATE_EOF: OK packets are rewritten for
    // it, and every answer must equal the direct one.
    let out = python_script(
        "commands.py",
        &[proxy.port().to_string(), db.port.to_string()],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], lines[1], "through Sluice vs direct");
    // (Servers send the info length-encoded even to such clients; pymysql shows the
    // length byte. Sluice keeps it byte-identical.)
    assert!(
        lines[0].contains("Rows matched: 3  Changed: 0  Warnings: 0\""),
        "{}",
        lines[0]
    );
    assert!(lines[0]
        .contains("\"field_list\": [\"id\", \"name\", \"price\", \"image_prefix\", \"takeout\"]"));

    // LOAD DATA LOCAL INFILE: Sluice never enables it, so the server refuses it clearly.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "5\tfrom file\n").unwrap();
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE items (owner, note)",
        file.path().display()
    );
    let out = mariadb_cli(
        proxy.port(),
        APP_PASSWORD,
        &["--local-infile=1", "shop"],
        &sql,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The servers refuse it with their own codes: MySQL 3948 ("Loading local data is
    // disabled"), MariaDB 4166 or 1148.
    let refused: &[&str] = if db.is_mysql() {
        &["ERROR 3948"]
    } else {
        &["ERROR 4166", "ERROR 1148"]
    };
    assert!(refused.iter().any(|code| err.contains(code)), "{err}");
    // And the session, and the proxy, carry on.
    assert_eq!(
        mariadb_ok(proxy.port(), &["shop"], "SELECT COUNT(*) FROM items"),
        "0\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_user_and_reset_connection_start_clean_sessions() {
    let db = TestDb::start(30).await;
    let proxy = Proxy::for_db(&db).await;
    let mut c = proxy.conn().await;
    c.query_drop("SET @x := 5").await.unwrap();
    c.query_drop("CREATE TEMPORARY TABLE t (a INT)")
        .await
        .unwrap();
    assert_eq!(
        proxy.metric("sluice_database_connections_pinned").await,
        1.0
    );
    // COM_RESET_CONNECTION: state gone, pin released.
    c.reset().await.unwrap();
    let x: Option<Option<i64>> = c.query_first("SELECT @x").await.unwrap();
    assert_eq!(x, Some(None));
    assert_eq!(
        proxy.metric("sluice_database_connections_pinned").await,
        0.0
    );
    // COM_CHANGE_USER: re-authenticates and starts over in the named schema.
    c.query_drop("SET @y := 1").await.unwrap();
    let opts = mysql_async::ChangeUserOpts::default()
        .with_user(Some("app".into()))
        .with_pass(Some(APP_PASSWORD.into()))
        .with_db_name(Some("other".into()));
    c.change_user(opts).await.unwrap();
    let (y, schema): (Option<i64>, Option<String>) = c
        .query_first("SELECT @y, DATABASE()")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((y, schema.as_deref()), (None, Some("other")));
    let e = c
        .change_user(mysql_async::ChangeUserOpts::default().with_pass(Some("wrong".into())))
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("1045"), "{e:?}");
}

/// Capability flags that change how the server parses or answers reach the backend:
/// IGNORE_SPACE (`COUNT (*)` parses, sql_mode shows it) and INTERACTIVE (wait_timeout is
/// interactive_timeout), for clients with and without them on one Sluice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_flags_that_change_the_session_reach_the_backend() {
    let db = TestDb::start(30).await;
    db.cli_socket("SET GLOBAL interactive_timeout = 1234");
    let proxy = Proxy::for_db(&db).await;
    const IGNORE_SPACE: u32 = 0x100;
    const INTERACTIVE: u32 = 0x400;
    for flags in [0, IGNORE_SPACE, INTERACTIVE, IGNORE_SPACE | INTERACTIVE, 0] {
        let run =
            |port: u16| python_script("client_flags.py", &[port.to_string(), flags.to_string()]);
        let direct = run(db.port);
        assert_eq!(
            direct.contains("IGNORE_SPACE"),
            flags & IGNORE_SPACE != 0,
            "{direct}"
        );
        assert_eq!(
            direct.contains("error"),
            flags & IGNORE_SPACE == 0,
            "{direct}"
        );
        assert_eq!(
            direct.contains("1234"),
            flags & INTERACTIVE != 0,
            "{direct}"
        );
        assert_eq!(run(proxy.port()), direct, "flags {flags:#x}");
    }
    // Replayed as session state, not a pool partition of their own.
    assert_eq!(
        proxy
            .metric("sluice_database_connections_closed_total{reason=\"repartition\"}")
            .await,
        0.0
    );
}

/// With `server.local_infile`, LOAD DATA LOCAL INFILE is relayed: the server's file
/// request goes to the client and the file to the server (MySQL must allow it too:
/// `local_infile` is OFF there by default, ON in MariaDB). A client that does not
/// enable it gets the server's own refusal, as directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_local_is_relayed_when_enabled() {
    let db = TestDb::start(30).await;
    db.cli_socket("SET GLOBAL local_infile = 1");
    let config =
        config_for(&db, "", "").replacen("[server]\n", "[server]\nlocal_infile = true\n", 1);
    let proxy = Proxy::start(&config).await;
    let file = tempfile::NamedTempFile::new().unwrap();
    // About 3 MB: several packets.
    let lines: String = (0..60_000)
        .map(|i| format!("{i}\tline {i} of the file\n"))
        .collect();
    std::fs::write(file.path(), &lines).unwrap();
    let sql = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE items (owner, note); \
         SELECT COUNT(*), SUM(owner) FROM items",
        file.path().display()
    );
    for port in [db.port, proxy.port()] {
        let out = mariadb_cli(port, APP_PASSWORD, &["--local-infile=1", "shop"], &sql);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        mariadb_ok(port, &["shop"], "DELETE FROM items");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "60000\t1799970000\n");
    }
    // A classic client (PyMySQL) whose file request follows a result set of the same
    // multi-statement: the file's packets are numbered as the server expects.
    let path = file.path().display().to_string();
    let classic = |port: u16| {
        common::clients::python_script("load_after_rows.py", &[port.to_string(), path.clone()])
    };
    let direct = classic(db.port);
    let expected = "[(1, (('before',),)), (60000, []), (1, ((60000, Decimal('1799970000')),))]";
    assert_eq!(direct.trim(), expected);
    assert_eq!(classic(proxy.port()), direct);
    // Without the client's consent the server refuses, directly and through Sluice.
    for port in [db.port, proxy.port()] {
        let out = mariadb_cli(port, APP_PASSWORD, &["--local-infile=0", "shop"], &sql);
        assert!(!out.status.success());
    }
    // The session and the pool carry on.
    assert_eq!(
        mariadb_ok(proxy.port(), &["shop"], "SELECT COUNT(*) FROM items"),
        "0\n"
    );
}
