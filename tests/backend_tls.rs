//! TLS from Sluice to the backend (CA file, hostname verification) and the
//! caching_sha2_password login of backend connections.

mod common;

use common::proxy::config_for;
use common::{certs, Proxy, TestDb, APP_PASSWORD, APP_USER};
use mysql_async::prelude::*;

async fn tls_backend(c: &certs::Certs) -> TestDb {
    let args = vec![
        format!("--ssl-cert={}", c.cert.display()),
        format!("--ssl-key={}", c.key.display()),
        format!("--ssl-ca={}", c.ca.display()),
    ];
    TestDb::start_with(30, args).await
}

/// The `[backend.tls]` table that trusts the test CA and checks the name `server_name`.
fn backend_tls_table(c: &certs::Certs, server_name: &str) -> String {
    format!(
        "[backend.tls]\nca = \"{}\"\nserver_name = \"{server_name}\"\n",
        c.ca.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_connections_use_verified_tls() {
    let c = certs::generate();
    let db = tls_backend(&c).await;
    db.cli_socket("ALTER USER 'app'@'%' REQUIRE SSL");
    let tables = backend_tls_table(&c, "localhost");
    let config = config_for(&db, "", "").replacen("[[users]]", &format!("{tables}[[users]]"), 1);
    let proxy = Proxy::start(&config).await;
    let mut conn = proxy.conn().await;
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    assert!(
        !cipher.unwrap().1.is_empty(),
        "backend session is not encrypted"
    );
    conn.disconnect().await.unwrap();

    // A certificate for another name is refused: a clean error, not a plaintext fallback.
    let wrong = backend_tls_table(&c, "db.example.com");
    let config = config_for(&db, "", "").replacen("[[users]]", &format!("{wrong}[[users]]"), 1);
    let proxy = Proxy::start(&config).await;
    // (mysql_async runs a query while connecting, so the error comes at connect.)
    let e = mysql_async::Conn::new(proxy.opts()).await.unwrap_err();
    match e {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 2003);
            assert!(
                s.message.contains("certificate not valid for name"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        proxy
            .metric("sluice_database_connections_setup_failed_total")
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_login_with_caching_sha2_password() {
    // MariaDB has no caching_sha2_password, so the backend here is a second Sluice that
    // offers it (full authentication over TLS on first login, fast path after).
    let c = certs::generate();
    let db = TestDb::start(30).await;
    let inner_config = config_for(&db, "", "").replacen(
        "[admin]",
        &format!(
            "auth_plugin = \"caching_sha2_password\"\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n[admin]",
            c.cert.display(),
            c.key.display()
        ),
        1,
    );
    let inner = Proxy::start(&inner_config).await;
    for tls in [false, true] {
        let tls_table = if tls {
            backend_tls_table(&c, "localhost")
        } else {
            String::new()
        };
        let outer_config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
             [backend]\naddress = \"{}\"\n{tls_table}[[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n",
            inner.addr
        );
        let outer = Proxy::start(&outer_config).await;
        for _ in 0..3 {
            let mut conn = outer.conn().await;
            let n: Option<i64> = conn
                .query_first("SELECT COUNT(*) FROM menus")
                .await
                .unwrap();
            assert_eq!(n, Some(9));
            conn.disconnect().await.unwrap();
        }
        outer.stop().await;
    }
}

/// Against the real server: on MySQL the app user has `caching_sha2_password`, and after
/// `FLUSH PRIVILEGES` (which empties the server's cache of verified passwords) a backend
/// login must take full authentication: with the server's RSA key over plaintext, the
/// password itself over TLS. Each round starts a new Sluice, so its connections are new
/// logins. (MariaDB's app user has mysql_native_password: the same logins, natively.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_logins_take_full_authentication_after_the_cache_is_flushed() {
    let c = certs::generate();
    let db = tls_backend(&c).await;
    let plugin = db.cli_socket("SELECT plugin FROM mysql.user WHERE user = 'app'");
    let expected = if db.is_mysql() {
        "caching_sha2_password"
    } else {
        "mysql_native_password"
    };
    assert_eq!(plugin.trim(), expected);
    for tls in [false, true, false] {
        db.cli_socket("FLUSH PRIVILEGES");
        let tables = if tls {
            backend_tls_table(&c, "localhost")
        } else {
            String::new()
        };
        let config =
            config_for(&db, "", "").replacen("[[users]]", &format!("{tables}[[users]]"), 1);
        let proxy = Proxy::start(&config).await;
        let mut conn = proxy.conn().await;
        let cipher: Option<(String, String)> = conn
            .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            .await
            .unwrap();
        assert_eq!(!cipher.unwrap().1.is_empty(), tls);
        conn.disconnect().await.unwrap();
        assert_eq!(
            proxy
                .metric("sluice_database_connections_setup_failed_total")
                .await,
            0.0
        );
        proxy.stop().await;
    }
}
