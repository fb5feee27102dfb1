//! AWS integration against real components: backend credentials from Secrets Manager
//! (`moto_server`), IAM auth tokens made by boto3 and checked in `local` mode over TLS by
//! real clients (pymysql, mysql-connector-python, the mariadb CLI, mysql_async), a
//! rotation while a storm runs, and Secrets Manager outages.

mod common;

use std::process::Command;
use std::time::Duration;

use common::clients::{python, python_script};
use common::db::free_port;
use common::fake_sts::FakeSts;
use common::moto::{Moto, REGION};
use common::{certs, storm, Proxy, TestDb, APP_PASSWORD, APP_USER};
use mysql_async::prelude::*;
use mysql_async::SslOpts;

/// The IAM signing key the test environment uses (common::moto::aws_env), known to Sluice
/// as a static `[[iam.keys]]` entry.
const KEY_ID: &str = "AKIDSLUICETEST";
const KEY_SECRET: &str = "sluice-test-secret";

/// Sluice on `port` with TLS, user app's backend login in secret `sluice/app`, and
/// `iam_user` ("required" or "disabled").
fn config(db: &TestDb, moto: &Moto, c: &certs::Certs, port: u16, iam: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nhandshake_timeout = 10\n\
         [server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [backend]\naddress = \"{addr}\"\nmax_connections_percent = 70\nconnection_borrow_timeout = 60\n\
         [aws]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\nsecret_refetch_min_interval = 1\n\
         [iam]\nhostnames = [\"127.0.0.1:{port}\"]\nregions = [\"{REGION}\"]\n\
         [[iam.keys]]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{KEY_SECRET}\"\nusers = [\"{APP_USER}\"]\n\
         [[users]]\nname = \"{APP_USER}\"\nsecret = \"sluice/app\"\niam = \"{iam}\"\n{extra}\n",
        cert = c.cert.display(),
        key = c.key.display(),
        addr = db.address(),
        endpoint = moto.endpoint,
    )
}

/// An IAM auth token for user app on 127.0.0.1:`port`, made by boto3.
fn token(port: u16) -> String {
    token_for("127.0.0.1", port, APP_USER)
}

/// An IAM auth token made by boto3 with the environment's keys.
fn token_for(host: &str, port: u16, user: &str) -> String {
    let code = format!(
        "import boto3; print(boto3.client('rds', region_name='{REGION}').generate_db_auth_token('{host}', {port}, '{user}'))"
    );
    let out = Command::new(python()).args(["-c", &code]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// moto with user app's secret, certificates, and a port for Sluice.
async fn aws_setup() -> (Moto, certs::Certs, u16) {
    let moto = Moto::start().await;
    moto.put_login("sluice/app", APP_USER, APP_PASSWORD).await;
    (moto, certs::generate(), free_port())
}

/// A rotation as AWS's rotation functions do it: createSecret (the new value as
/// AWSPENDING), setSecret (the database), a pause (testSecret), then finishSecret
/// (AWSCURRENT moves; the old value becomes AWSPREVIOUS).
async fn rotate(db: &TestDb, moto: &Moto, password: &str) {
    let version = moto.put_pending("sluice/app", APP_USER, password).await;
    let mut admin = db.admin().await;
    admin
        .query_drop(format!("ALTER USER 'app'@'%' IDENTIFIED BY '{password}'"))
        .await
        .unwrap();
    sluice::clock::sleep(Duration::from_millis(1500)).await;
    moto.finish_rotation("sluice/app", &version).await;
}

/// The server error code a connection attempt failed with.
fn error_code(r: Result<mysql_async::Conn, mysql_async::Error>) -> u16 {
    match r {
        Err(mysql_async::Error::Server(s)) => s.code,
        other => panic!("expected a server error, got {:?}", other.map(|_| ())),
    }
}

/// `SELECT COUNT(*) FROM menus` (9 rows).
async fn menus(conn: &mut mysql_async::Conn) -> Option<i64> {
    conn.query_first("SELECT COUNT(*) FROM menus")
        .await
        .unwrap()
}

fn tls_opts(proxy: &Proxy, c: &certs::Certs, password: &str) -> mysql_async::OptsBuilder {
    proxy
        .opts()
        .pass(Some(password))
        .enable_cleartext_plugin(true)
        .ssl_opts(SslOpts::default().with_root_certs(vec![c.ca.clone().into()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_handler_logs_in_with_an_iam_token_and_the_backend_login_is_a_secret() {
    let db = TestDb::start(20).await;
    let (moto, c, port) = aws_setup().await;
    let proxy = Proxy::start(&config(&db, &moto, &c, port, "required", "")).await;

    // The user story's handler: token from boto3, ssl={'ca': CA}, SELECT * FROM menus.
    let ca = c.ca.display().to_string();
    let args = [
        port.to_string(),
        APP_USER.into(),
        "-".into(),
        "--ssl-ca".into(),
        ca.clone(),
        "--count".into(),
        "3".into(),
        "--iam-region".into(),
        REGION.into(),
    ];
    let out = python_script("lambda_handler.py", &args);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for l in &lines {
        assert_eq!(l["rows"].as_array().unwrap().len(), 9);
        assert_eq!(l["tls"], true);
    }

    // Connector/Python with the clear-password plugin; plaintext; bad tokens.
    let out = python_script(
        "iam_clients.py",
        &[port.to_string(), APP_USER.into(), REGION.into(), ca.clone()],
    );
    assert_eq!(
        out,
        "connector 9\nplaintext 3159\nclear_plaintext 3159\nexposed_over_tls 1045\nexposed_reencoded 1045\n\
         other_user 1045\ntampered 1045\n"
    );

    // The mariadb CLI with a token.
    let t = token(port);
    let cli = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{APP_USER}"),
            &format!("-p{t}"),
        ])
        .args([&format!("--ssl-ca={ca}"), "-N", "-B", "shop"])
        .args(["-e", "SELECT COUNT(*) FROM menus"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "9");

    // The database password is not a client password: an IAM user cannot use it.
    let denied = mysql_async::Conn::new(tls_opts(&proxy, &c, APP_PASSWORD)).await;
    assert!(matches!(denied, Err(mysql_async::Error::Server(ref s)) if s.code == 1045));
    // mysql_async with the token, twice: the second check is a cache hit.
    for _ in 0..2 {
        let mut conn = mysql_async::Conn::new(tls_opts(&proxy, &c, &t))
            .await
            .unwrap();
        assert_eq!(menus(&mut conn).await, Some(9));
        conn.disconnect().await.unwrap();
    }

    let m = proxy.metrics().await;
    let sample = |name: &str| common::metrics::sample(&m, name);
    assert!(
        sample("sluice_iam_verifications_total{mode=\"local\",result=\"ok\"}") >= 1.0,
        "{m}"
    );
    assert!(sample("sluice_iam_verifications_total{mode=\"local\",result=\"wrong_user\"}") >= 1.0);
    assert!(
        sample("sluice_iam_verifications_total{mode=\"local\",result=\"bad_signature\"}") >= 1.0
    );
    assert!(sample("sluice_iam_cache_hits_total") >= 1.0);
    assert!(sample("sluice_iam_verifications_total{mode=\"local\",result=\"exposed\"}") >= 1.0);
    assert!(sample("sluice_secret_fetches_total{result=\"ok\"}") >= 1.0);
    // Tokens never reach the metrics.
    assert!(!m.contains("X-Amz-Signature"));
    proxy.stop().await;
}

/// The core issue's storm, with IAM tokens over TLS; halfway through, the database
/// password is rotated as AWS rotates it (the database changes while the new value is
/// still AWSPENDING): no invocation fails, and new backend connections use the new
/// password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_storm_over_tls_survives_a_password_rotation() {
    let db = TestDb::start(65).await;
    let (moto, c, port) = aws_setup().await;
    // Backend connections live one second, so new ones are opened after the rotation.
    let proxy = Proxy::start(&config(&db, &moto, &c, port, "required", "").replace(
        "connection_borrow_timeout = 60",
        "connection_borrow_timeout = 60\nmax_lifetime = 1",
    ))
    .await;
    let opts = tls_opts(&proxy, &c, &token(port));
    let storm = tokio::spawn(storm::run(opts, 100, 10_000));
    sluice::clock::sleep(Duration::from_secs(2)).await;
    rotate(&db, &moto, "rotated-password").await;
    let r = storm.await.unwrap();
    println!("iam storm: {}", r.summary());
    assert_eq!(
        (r.ok, r.errors, r.wrong_results),
        (10_000, 0, 0),
        "{:?}",
        r.error_codes
    );
    assert!(proxy.metric("sluice_secret_rotations_total").await >= 1.0);
    // New backend connections after the rotation logged in with the new password.
    let mut conn = mysql_async::Conn::new(tls_opts(&proxy, &c, &token(port)))
        .await
        .unwrap();
    sluice::clock::sleep(Duration::from_millis(1500)).await;
    assert_eq!(menus(&mut conn).await, Some(9));
    proxy.stop().await;
}

/// Password clients of a user whose credentials are a secret: AWSCURRENT and, for
/// previous_password_grace after a rotation, AWSPREVIOUS are accepted; a password newer
/// than Sluice's copy makes it read the secret again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_clients_follow_the_secret_through_a_rotation() {
    let db = TestDb::start(20).await;
    let (moto, c, port) = aws_setup().await;
    // The previous password works for 6 s after the new version was created.
    let cfg = config(&db, &moto, &c, port, "disabled", "").replace(
        "secret_refetch_min_interval = 1",
        "secret_refetch_min_interval = 1\nprevious_password_grace = 6",
    );
    let proxy = Proxy::start(&cfg).await;
    let login = |password: &str| mysql_async::Conn::new(proxy.opts().pass(Some(password)));
    let mut before = login(APP_PASSWORD).await.unwrap();
    assert!(login("wrong").await.is_err());

    rotate(&db, &moto, "rotated-password").await;
    // Sluice has not read the new version yet: the new password makes it (once
    // secret_refetch_min_interval has passed since the wrong password made it read).
    sluice::clock::sleep(Duration::from_millis(1100)).await;
    let mut new = login("rotated-password").await.unwrap();
    // The old one is AWSPREVIOUS now: still accepted for the grace period.
    let mut old = login(APP_PASSWORD).await.unwrap();
    for conn in [&mut before, &mut new, &mut old] {
        assert_eq!(menus(conn).await, Some(9));
    }
    assert!(login("wrong").await.is_err());
    assert!(proxy.metric("sluice_secret_rotations_total").await >= 1.0);
    // Past the grace period (counted from when Sluice saw the rotation) a rotation
    // revokes the old password.
    sluice::clock::sleep(Duration::from_secs(7)).await;
    assert!(login(APP_PASSWORD).await.is_err());
    assert!(login("rotated-password").await.is_ok());
    proxy.stop().await;
}

/// Secrets Manager down: logins that need a secret Sluice has fail with a clear error
/// and recover when it returns; with the secret cached, everything keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secrets_manager_outage_is_survived_and_reported() {
    let db = TestDb::start(20).await;
    let mut moto = Moto::start().await;
    moto.put_login("sluice/app", APP_USER, APP_PASSWORD).await;
    let c = certs::generate();
    let cfg = |port, moto: &Moto| {
        config(&db, moto, &c, port, "disabled", "").replace(
            "secret_refetch_min_interval = 1",
            "secret_refetch_min_interval = 1\nsecret_refresh_interval = 1",
        )
    };
    let warm = Proxy::start(&cfg(free_port(), &moto)).await;
    let mut held = warm.conn().await;
    moto.kill();
    let cold = Proxy::start(&cfg(free_port(), &moto)).await;

    // The warm proxy read the secret before the outage: new and existing clients go on.
    let mut fresh = warm.conn().await;
    for conn in [&mut held, &mut fresh] {
        assert_eq!(menus(conn).await, Some(9));
    }
    // The cold one never could: a clear error, not a hang and not "access denied".
    let err = mysql_async::Conn::new(cold.opts()).await.unwrap_err();
    match err {
        mysql_async::Error::Server(s) => {
            assert_eq!(s.code, 2003, "{}", s.message);
            assert!(s.message.contains("credentials"), "{}", s.message);
        }
        other => panic!("expected a server error, got {other}"),
    }
    // The background refresh fails and says so (the SDK retries first: give it time).
    for proxy in [&warm, &cold] {
        let mut errors = 0.0;
        for _ in 0..60 {
            errors = proxy
                .metric("sluice_secret_fetches_total{result=\"error\"}")
                .await;
            if errors >= 1.0 {
                break;
            }
            sluice::clock::sleep(Duration::from_millis(250)).await;
        }
        assert!(errors >= 1.0, "no failed secret read counted");
    }

    moto.restart().await;
    moto.put_login("sluice/app", APP_USER, APP_PASSWORD).await;
    sluice::clock::sleep(Duration::from_millis(1100)).await;
    let mut conn = cold.conn().await;
    assert_eq!(menus(&mut conn).await, Some(9));
    warm.stop().await;
    cold.stop().await;
}

/// IAM signing keys kept in a Secrets Manager secret: a token signed with a listed key
/// logs in (then from the cache); once the key is removed from the secret, the same
/// token is refused, cached or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_keys_from_a_secret_and_their_revocation() {
    let db = TestDb::start(20).await;
    let (moto, c, port) = aws_setup().await;
    let keys = |id: &str| {
        serde_json::json!([{"access_key_id": id, "secret_access_key": KEY_SECRET, "users": [APP_USER]}])
            .to_string()
    };
    moto.put("sluice/iam-keys", &keys(KEY_ID)).await;
    let static_keys = format!(
        "[[iam.keys]]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{KEY_SECRET}\"\nusers = [\"{APP_USER}\"]\n"
    );
    let cfg = config(&db, &moto, &c, port, "required", "")
        .replace(&static_keys, "keys_secret = \"sluice/iam-keys\"\n")
        .replace(
            "secret_refetch_min_interval = 1",
            "secret_refetch_min_interval = 1\nsecret_refresh_interval = 1",
        );
    assert!(cfg.contains("keys_secret"));
    let proxy = Proxy::start(&cfg).await;
    let t = token(port);
    for _ in 0..2 {
        let mut conn = mysql_async::Conn::new(tls_opts(&proxy, &c, &t))
            .await
            .unwrap();
        assert_eq!(menus(&mut conn).await, Some(9));
    }
    assert!(proxy.metric("sluice_iam_cache_hits_total").await >= 1.0);

    // The key is revoked: only another one is listed now.
    moto.put("sluice/iam-keys", &keys("AKIDSOMEONEELSE")).await;
    sluice::clock::sleep(Duration::from_millis(2500)).await;
    let refused = mysql_async::Conn::new(tls_opts(&proxy, &c, &t)).await;
    assert!(
        matches!(refused, Err(mysql_async::Error::Server(ref s)) if s.code == 1045),
        "{refused:?}"
    );
    proxy.stop().await;
}

/// `sts` mode against a stand-in STS (tests/common/fake_sts.rs) that checks the presigned
/// request's signature with the one key it knows and names an assumed-role session:
/// the role is mapped to the user; the audience header binds the token to this proxy;
/// hosts not on the allow-list are never contacted; STS down is a 2003, not a 1045.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_mode_logs_in_the_role_sts_names() {
    let db = TestDb::start(20).await;
    let (moto, c, port) = aws_setup().await;
    let sts = FakeSts::start((KEY_ID, KEY_SECRET)).await;
    let stranger = FakeSts::start((KEY_ID, KEY_SECRET)).await;
    let sts_config = |endpoint: &str, principal: &str| {
        let cfg = config(&db, &moto, &c, port, "required", "");
        let start = cfg.find("[iam]").unwrap();
        let end = cfg.find("[[users]]").unwrap();
        let iam = format!(
            "[iam]\nmode = \"sts\"\nregions = [\"{REGION}\"]\naudience = \"sluice-test\"\n\
             sts_endpoints = [\"{endpoint}\"]\n[[iam.principals]]\narn = \"{principal}\"\nusers = [\"{APP_USER}\"]\n"
        );
        format!("{}{iam}{}", &cfg[..start], &cfg[end..])
    };
    // Signed with the environment's key, the one the stand-in knows.
    let make = |endpoint: &str, audience: &str, extra: &[&str]| {
        let mut args = vec![endpoint.to_string(), audience.to_string(), "-".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        python_script("sts_token.py", &args).trim().to_string()
    };
    let role = "arn:aws:iam::123456789012:role/LambdaRole";
    let proxy = Proxy::start(&sts_config(&sts.endpoint, role)).await;
    let login = |t: &str| mysql_async::Conn::new(tls_opts(&proxy, &c, t));
    let t = make(&sts.endpoint, "sluice-test", &[]);
    for _ in 0..2 {
        let mut conn = login(&t).await.unwrap();
        assert_eq!(menus(&mut conn).await, Some(9));
    }
    assert_eq!(sts.requests(), 1, "the second login is a cache hit");

    // A token made for another audience: STS sees Sluice's audience, not the signed one.
    let other_audience = make(&sts.endpoint, "another-service", &[]);
    assert_eq!(error_code(login(&other_audience).await), 1045);
    assert_eq!(sts.requests(), 2);
    // The audience header must be signed: refused before any request.
    let unsigned = make(&sts.endpoint, "sluice-test", &["--unsigned-audience"]);
    assert_eq!(error_code(login(&unsigned).await), 1045);
    // A presigned request for a host not on the list is never sent there.
    let elsewhere = make(&stranger.endpoint, "sluice-test", &[]);
    assert_eq!(error_code(login(&elsewhere).await), 1045);
    assert_eq!((sts.requests(), stranger.requests()), (2, 0));

    let m = proxy.metrics().await;
    let sample = |r: &str| {
        common::metrics::sample(
            &m,
            &format!("sluice_iam_verifications_total{{mode=\"sts\",result=\"{r}\"}}"),
        )
    };
    assert_eq!(
        (
            sample("ok"),
            sample("sts_refused"),
            sample("malformed"),
            sample("wrong_host")
        ),
        (1.0, 1.0, 1.0, 1.0),
        "{m}"
    );
    proxy.stop().await;

    // STS names a role not mapped to the user.
    let proxy = Proxy::start(&sts_config(
        &sts.endpoint,
        "arn:aws:iam::123456789012:role/Other",
    ))
    .await;
    let t = make(&sts.endpoint, "sluice-test", &[]);
    let r = mysql_async::Conn::new(tls_opts(&proxy, &c, &t)).await;
    assert_eq!(error_code(r), 1045);
    proxy.stop().await;

    // STS unreachable: not the client's fault, so 2003 (retry), not 1045.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let proxy = Proxy::start(&sts_config(&closed, role)).await;
    let t = make(&closed, "sluice-test", &[]);
    let r = mysql_async::Conn::new(tls_opts(&proxy, &c, &t)).await;
    assert_eq!(error_code(r), 2003);
    proxy.stop().await;
}

/// `rds` mode: a token signed for the database itself is proved by logging in there with
/// it. MariaDB stands in for an IAM-enabled RDS: its user `lambda` has the token as its
/// password, so the login succeeds exactly for that token, as RDS's would for a valid
/// one. Clients get the pool's login (the secret's user), never the token's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_mode_proves_tokens_by_logging_in_to_the_database() {
    let c = certs::generate();
    let args = vec![
        format!("--ssl-cert={}", c.cert.display()),
        format!("--ssl-key={}", c.key.display()),
        format!("--ssl-ca={}", c.ca.display()),
    ];
    let db = TestDb::start_with(30, args).await;
    let moto = Moto::start().await;
    moto.put_login("sluice/lambda-pool", APP_USER, APP_PASSWORD)
        .await;
    let good = token_for("127.0.0.1", db.port, "lambda");
    let mut admin = db.admin().await;
    let create = admin
        .query_drop(format!("CREATE USER 'lambda'@'%' IDENTIFIED BY '{good}'"))
        .await;
    if db.is_mysql() {
        // A token (over 256 bytes) cannot be a MySQL password: caching_sha2_password takes
        // at most 256 bytes, and community MySQL has no server-side clear-password
        // plugin, so only MariaDB can stand in for IAM RDS here. On MySQL `rds` mode is
        // tested against the stand-in IAM RDS of the next test.
        assert!(good.len() > 256, "{}", good.len());
        match create {
            Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1396),
            other => panic!("MySQL took a token as a password: {other:?}"),
        }
        return;
    }
    create.unwrap();
    let port = free_port();
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nhandshake_timeout = 10\n\
         [server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [backend]\naddress = \"{addr}\"\nmax_connections_percent = 50\n\
         [backend.tls]\nca = \"{ca}\"\nserver_name = \"localhost\"\n\
         [aws]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\n\
         [iam]\nmode = \"rds\"\nregions = [\"{REGION}\"]\n\
         [[users]]\nname = \"lambda\"\nsecret = \"sluice/lambda-pool\"\niam = \"required\"\n",
        cert = c.cert.display(),
        key = c.key.display(),
        ca = c.ca.display(),
        addr = db.address(),
        endpoint = moto.endpoint,
    );
    let proxy = Proxy::start(&cfg).await;
    let login =
        |token: &str| mysql_async::Conn::new(tls_opts(&proxy, &c, token).user(Some("lambda")));
    for _ in 0..2 {
        let mut conn = login(&good).await.unwrap();
        assert_eq!(menus(&mut conn).await, Some(9));
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert_eq!(who.as_deref(), Some("app@%"));
    }
    // A token the database refuses: 1045, and a retry is refused without asking it again.
    sluice::clock::sleep(Duration::from_millis(1100)).await;
    let bad = token_for("127.0.0.1", db.port, "lambda");
    assert_ne!(bad, good);
    let denied_before = db.global_status("Access_denied_errors").await;
    assert_eq!(error_code(login(&bad).await), 1045);
    assert_eq!(error_code(login(&bad).await), 1045);
    let denied = db.global_status("Access_denied_errors").await - denied_before;
    assert_eq!(denied, 1, "the database was asked {denied} times");
    // A token for another endpoint is never sent to this database.
    let elsewhere = token_for("other.example.com", db.port, "lambda");
    assert_eq!(error_code(login(&elsewhere).await), 1045);
    assert_eq!(
        db.global_status("Access_denied_errors").await - denied_before,
        1
    );

    let m = proxy.metrics().await;
    let sample = |name: &str| common::metrics::sample(&m, name);
    assert_eq!(
        sample("sluice_iam_verifications_total{mode=\"rds\",result=\"ok\"}"),
        1.0,
        "{m}"
    );
    assert!(sample("sluice_iam_cache_hits_total") >= 1.0);
    assert_eq!(
        sample("sluice_iam_verifications_total{mode=\"rds\",result=\"rds_refused\"}"),
        2.0
    );
    assert_eq!(
        sample("sluice_iam_verifications_total{mode=\"rds\",result=\"wrong_host\"}"),
        1.0
    );
    proxy.stop().await;
}

/// `rds` mode against a stand-in for IAM-enabled RDS (tests/common/fake_rds.rs) that asks
/// for `mysql_clear_password` over TLS and checks the token's signature, as RDS does. It
/// counts logins: a reused token is checked once (cache), a refused one once (negative
/// cache), a token for another endpoint never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_mode_sends_clear_password_tokens_to_the_database_once() {
    use common::fake_rds::{FakeRds, IAM_USER};
    let c = certs::generate();
    let rds = FakeRds::start(&c, (KEY_ID, KEY_SECRET)).await;
    let moto = Moto::start().await;
    moto.put_login("sluice/lambda-pool", APP_USER, APP_PASSWORD)
        .await;
    let port = free_port();
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\nhandshake_timeout = 10\n\
         [server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [backend]\naddress = \"127.0.0.1:{rds_port}\"\n\
         [backend.tls]\nca = \"{ca}\"\nserver_name = \"localhost\"\n\
         [aws]\nregion = \"{REGION}\"\nendpoint_url = \"{endpoint}\"\n\
         [iam]\nmode = \"rds\"\nregions = [\"{REGION}\"]\n\
         [[users]]\nname = \"{IAM_USER}\"\nsecret = \"sluice/lambda-pool\"\niam = \"required\"\n",
        cert = c.cert.display(),
        key = c.key.display(),
        ca = c.ca.display(),
        rds_port = rds.port,
        endpoint = moto.endpoint,
    );
    let proxy = Proxy::start(&cfg).await;
    let ca = c.ca.display().to_string();
    let login = |token: &str| {
        let args = [port.to_string(), IAM_USER.into(), token.into(), ca.clone()];
        python_script("ping_login.py", &args).trim().to_string()
    };
    let good = token_for("127.0.0.1", rds.port, IAM_USER);
    assert_eq!(login(&good), "ok");
    assert_eq!(login(&good), "ok");
    assert_eq!(
        (rds.accepted(), rds.refused()),
        (1, 0),
        "one check for a reused token"
    );

    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    assert_eq!(login(&bad), "1045");
    assert_eq!(login(&bad), "1045");
    assert_eq!(
        rds.refused(),
        1,
        "a refused token is refused again without asking"
    );

    let elsewhere = token_for("db.other.example.com", rds.port, IAM_USER);
    assert_eq!(login(&elsewhere), "1045");
    assert_eq!((rds.accepted(), rds.refused()), (1, 1));
    let m = proxy.metrics().await;
    let sample = |r: &str| {
        common::metrics::sample(
            &m,
            &format!("sluice_iam_verifications_total{{mode=\"rds\",result=\"{r}\"}}"),
        )
    };
    assert_eq!(
        (sample("ok"), sample("rds_refused"), sample("wrong_host")),
        (1.0, 2.0, 1.0),
        "{m}"
    );
    proxy.stop().await;
}
