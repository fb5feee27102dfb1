//! TLS from clients to Sluice: the mariadb CLI, pymysql, mysql-connector-python and
//! mysql_async over TLS; require_tls; caching_sha2_password fast and full paths.

mod common;

use common::clients::{mariadb_cli, mariadb_ok, python_script};
use common::proxy::config_for;
use common::{certs, Proxy, TestDb, APP_PASSWORD};
use mysql_async::prelude::*;
use mysql_async::SslOpts;

fn tls_table(c: &certs::Certs, require: bool) -> String {
    format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire = {require}\n",
        c.cert.display(),
        c.key.display()
    )
}

fn verify_with(c: &certs::Certs) -> SslOpts {
    SslOpts::default().with_root_certs(vec![c.ca.clone().into()])
}

/// mysql_async over TLS through Sluice, verifying its certificate with the test CA.
async fn tls_conn(proxy: &Proxy, c: &certs::Certs) -> mysql_async::Conn {
    mysql_async::Conn::new(proxy.opts().ssl_opts(verify_with(c)))
        .await
        .expect("TLS connection through sluice")
}

/// `[server.tls]` must follow `[server]`; the harness's template puts extra tables last,
/// so TLS settings are spliced in after the server table.
fn config_with_tls(db: &TestDb, c: &certs::Certs, require: bool, server_extra: &str) -> String {
    config_for(db, "", "").replacen(
        "[admin]",
        &format!("{server_extra}\n{}\n[admin]", tls_table(c, require)),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_tls() {
    let db = TestDb::start(65).await;
    let c = certs::generate();
    let proxy = Proxy::start(&config_with_tls(&db, &c, false, "")).await;
    let ca = format!("--ssl-ca={}", c.ca.display());
    let out = mariadb_ok(
        proxy.port(),
        &["--ssl", &ca, "--ssl-verify-server-cert", "shop"],
        "SHOW STATUS LIKE 'Ssl_version'; SELECT COUNT(*) FROM menus",
    );
    // Ssl_version is the backend session's (plaintext); the count proves the query ran.
    assert!(out.ends_with("9\n"), "{out}");

    let out = python_script(
        "tls_clients.py",
        &[
            proxy.port().to_string(),
            "app".into(),
            APP_PASSWORD.into(),
            c.ca.display().to_string(),
        ],
    );
    assert!(out.contains("pymysql TLSv1.3 9"), "{out}");
    assert!(out.contains("mysql-connector TLSv1."), "{out}");

    let mut conn = tls_conn(&proxy, &c).await;
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM menus")
        .await
        .unwrap();
    assert_eq!(n, Some(9));
    // A large result over TLS reaches its end (encrypted bytes are flushed, not left
    // queued in the TLS layer while the client waits).
    let rows: Vec<String> = conn
        .query(format!(
            "SELECT REPEAT('t', 100000) FROM {}",
            common::numbers(200)
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    conn.disconnect().await.unwrap();

    assert_eq!(
        proxy
            .metric("sluice_client_connections_setup_succeeded_total{tls=\"true\"}")
            .await,
        4.0
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_is_refused_with_3159_when_tls_is_required() {
    let db = TestDb::start(65).await;
    let c = certs::generate();
    let proxy = Proxy::start(&config_with_tls(&db, &c, true, "")).await;
    let out = mariadb_cli(proxy.port(), APP_PASSWORD, &["--skip-ssl"], "SELECT 1");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3159"), "{err}");

    let e = mysql_async::Conn::new(proxy.opts()).await.unwrap_err();
    assert!(
        matches!(e, mysql_async::Error::Server(ref s) if s.code == 3159),
        "{e:?}"
    );

    // TLS clients are still served.
    let mut conn = tls_conn(&proxy, &c).await;
    conn.query_drop("DO 1").await.unwrap();
    conn.disconnect().await.unwrap();
    assert_eq!(
        proxy
            .metric("sluice_client_connections_setup_failed_total{reason=\"tls_required\"}")
            .await,
        2.0
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_password_fast_and_full_paths() {
    let db = TestDb::start(65).await;
    let c = certs::generate();
    let config = config_with_tls(&db, &c, false, "auth_plugin = \"caching_sha2_password\"");
    let proxy = Proxy::start(&config).await;
    // Plaintext: the fast path (Sluice knows the password, so the scramble is checkable).
    let mut conn = proxy.conn().await;
    conn.query_drop("DO 1").await.unwrap();
    conn.disconnect().await.unwrap();
    // TLS: the first login does full authentication, later ones take the fast path.
    let ssl = verify_with(&c);
    for _ in 0..2 {
        let mut conn = tls_conn(&proxy, &c).await;
        let n: Option<i64> = conn
            .query_first("SELECT COUNT(*) FROM menus")
            .await
            .unwrap();
        assert_eq!(n, Some(9));
        conn.disconnect().await.unwrap();
    }
    let ca = format!("--ssl-ca={}", c.ca.display());
    let out = mariadb_ok(
        proxy.port(),
        &["--ssl", &ca, "shop"],
        "SELECT COUNT(*) FROM menus",
    );
    assert_eq!(out, "9\n");
    let bad = mysql_async::Conn::new(proxy.opts().pass(Some("wrong")).ssl_opts(ssl)).await;
    assert!(matches!(bad, Err(mysql_async::Error::Server(ref s)) if s.code == 1045));
    proxy.stop().await;
}
