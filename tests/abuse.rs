//! Sluice under abuse: floods of connections that never log in, and password guessing.
//! Each experiment runs beside a steady client (`SELECT 1` every 10 ms) whose errors and
//! worst latency are checked: what one client does must not reach the others.

mod common;

use std::time::{Duration, Instant};

use common::clients::python_script;
use common::proxy::config_for;
use common::steady::Steady;
use common::{Proxy, TestDb, APP_PASSWORD, APP_USER};
use mysql_async::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to Sluice from `source` (any 127.0.0.0/8 address is local here).
async fn connect_from(source: [u8; 4], to: std::net::SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    socket.connect(to).await.unwrap()
}

/// The first byte of the first packet's payload and, for an ERR packet, its code.
async fn first_packet(tcp: &mut TcpStream) -> (u8, u16) {
    let mut buf = [0u8; 7];
    sluice::clock::timeout(Duration::from_secs(5), tcp.read_exact(&mut buf))
        .await
        .expect("Sluice answers at once")
        .expect("a packet");
    (buf[4], u16::from_le_bytes([buf[5], buf[6]]))
}

fn with_server_keys(config: String, keys: &str) -> String {
    config.replacen(
        "handshake_timeout = 5\n",
        &format!("handshake_timeout = 5\n{keys}\n"),
        1,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_from_one_address_neither_lock_out_others_nor_push_anyone_out() {
    let db = TestDb::start(50).await;
    // Fewer client slots than silent connections: before handshakes had their own
    // budget, the silent ones took every slot and every login got 1040.
    let config = with_server_keys(
        config_for(&db, "", ""),
        "max_client_connections = 40\nmax_handshakes = 400\nmax_handshakes_per_address = 50",
    );
    let proxy = Proxy::start(&config).await;
    let steady = Steady::start(&proxy).await;

    let mut silent = Vec::new();
    let (mut greeted, mut refused) = (0, 0);
    for _ in 0..300 {
        let mut tcp = connect_from([127, 0, 0, 2], proxy.addr).await;
        match first_packet(&mut tcp).await {
            (0x0a, _) => greeted += 1,
            (0xff, 1040) => refused += 1,
            other => panic!("unexpected first packet {other:?}"),
        }
        // Kept open and silent: each greeted one holds its slot for the handshake
        // timeout.
        silent.push(tcp);
    }
    assert_eq!((greeted, refused), (50, 250));
    assert_eq!(
        proxy.metric("sluice_client_connections_handshaking").await,
        50.0
    );
    assert_eq!(
        proxy
            .metric(
                "sluice_client_connections_setup_failed_total{reason=\"too_many_handshakes_from_address\"}"
            )
            .await,
        250.0
    );

    // Everyone else logs in meanwhile, at once.
    let logins: Vec<_> = (0..20)
        .map(|_| {
            let opts = proxy.opts();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut conn = mysql_async::Conn::new(opts).await.expect("a login");
                let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
                assert_eq!(one, Some(1));
                (start.elapsed(), conn)
            })
        })
        .collect();
    let mut conns = Vec::new();
    for login in logins {
        let (took, conn) = login.await.unwrap();
        assert!(took < Duration::from_secs(3), "a login took {took:?}");
        conns.push(conn);
    }
    assert_eq!(
        proxy
            .metric("sluice_client_connections{tls=\"false\"}")
            .await,
        21.0
    );
    steady.check().await;
    drop(silent);
    for conn in conns {
        conn.disconnect().await.unwrap();
    }
}

/// `n` logins of user app with `password` from `from`, one after the other (pymysql,
/// which can bind its source address): each one's error code (or "ok") and seconds.
async fn guess(port: u16, from: &str, n: usize, password: &str) -> Vec<(String, f64)> {
    let args = [
        port.to_string(),
        from.into(),
        APP_USER.into(),
        n.to_string(),
        password.into(),
    ];
    let out = tokio::task::spawn_blocking(move || python_script("guess_passwords.py", &args))
        .await
        .unwrap();
    attempts(&out)
}

/// Parses the guessing script's lines: (error code or "ok", seconds).
fn attempts(out: &str) -> Vec<(String, f64)> {
    out.lines()
        .map(|l| {
            let (code, secs) = l.split_once(' ').unwrap();
            (code.to_string(), secs.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_slowed_then_refused_and_others_still_log_in() {
    let db = TestDb::start(50).await;
    // The throttle's table goes right after [server]'s keys.
    let config = config_for(&db, "", "").replacen(
        "[admin]",
        "[server.login_throttle]\ndelay_after = 2\nmax_delay = 0.4\nblock_after = 6\n\
         block_seconds = 3\nwindow = 60\n[admin]",
        1,
    );
    let proxy = Proxy::start(&config).await;
    let steady = Steady::start(&proxy).await;
    let port = proxy.port();

    // One address guessing one user's password, one attempt after the other.
    let tried = guess(port, "127.0.0.2", 8, "wrong").await;
    let codes: Vec<&str> = tried.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        ["1045", "1045", "1045", "1045", "1045", "1045", "1129", "1129"],
        "{tried:?}"
    );
    // Past two failures each answer waits longer: 0.1, 0.2, then 0.4 s (the maximum).
    for (i, least) in [(2, 0.1), (3, 0.2), (4, 0.4), (5, 0.4)] {
        assert!(
            tried[i].1 >= least,
            "attempt {} took {} s",
            i + 1,
            tried[i].1
        );
    }
    // Refused outright while blocked: no check, no delay.
    assert!(tried[7].1 < 0.4, "a blocked attempt took {} s", tried[7].1);

    // The right password from the blocked address is refused too, for now...
    let blocked = guess(port, "127.0.0.2", 1, APP_PASSWORD).await;
    assert_eq!(blocked[0].0, "1129");
    // ...but not from another address, and at once: the user's own failures (six, at
    // its threshold) only refuse it from addresses that failed.
    let start = Instant::now();
    let mut conn = proxy.conn().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "a clean login took {:?}",
        start.elapsed()
    );
    conn.query_drop("SELECT 1").await.unwrap();
    conn.disconnect().await.unwrap();

    // The block ends by itself.
    sluice::clock::sleep(Duration::from_millis(3200)).await;
    let after = guess(port, "127.0.0.2", 1, APP_PASSWORD).await;
    assert_eq!(after[0].0, "ok");

    let failed = |reason: &str| {
        format!("sluice_client_connections_setup_failed_total{{reason=\"{reason}\"}}")
    };
    assert_eq!(proxy.metric(&failed("auth")).await, 6.0);
    assert_eq!(proxy.metric(&failed("address_blocked")).await, 3.0);
    steady.check().await;
}

/// What one COM_QUERY of about `size` bytes through `port` (PyMySQL) gets: "ok" or the
/// error code.
async fn big_command(port: u16, size: usize) -> String {
    let args = [
        port.to_string(),
        APP_USER.into(),
        APP_PASSWORD.into(),
        size.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || python_script("big_command.py", &args));
    out.await.unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_over_the_size_limit_gets_1153_in_one_packet_or_many() {
    let db = TestDb::start(50).await;
    // 20 MiB: a 30 MB command comes in two packets, the first of them within the limit.
    let config = with_server_keys(config_for(&db, "", ""), "max_packet_size = 20971520");
    let proxy = Proxy::start(&config).await;
    let steady = Steady::start(&proxy).await;
    // Within the limit, in two packets: relayed.
    assert_eq!(big_command(proxy.port(), 18_000_000).await, "ok");
    // Over it in many packets (the backend got the first and is closed), then in one.
    assert_eq!(big_command(proxy.port(), 30_000_000).await, "1153");
    assert_eq!(big_command(proxy.port(), 70_000_000).await, "1153");
    let small = with_server_keys(config_for(&db, "", ""), "max_packet_size = 65536");
    let small = Proxy::start(&small).await;
    assert_eq!(big_command(small.port(), 1_000_000).await, "1153");
    // No backend connection was left mid-command in the pool: the next statements run.
    pool_serves(&proxy).await;
    steady.check().await;
}

/// A fresh client through `proxy` runs a statement: the pool was left usable.
async fn pool_serves(proxy: &Proxy) {
    let mut conn = proxy.conn().await;
    let n: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM menus")
        .await
        .unwrap();
    assert_eq!(n, Some(9));
    conn.disconnect().await.unwrap();
}

/// The server's answer (sequence id, error code; code 0 for anything but an ERR) to a
/// handshake response for user app with its greeting's own plugin (or `plugin`), sent
/// as packet `seq`, with an auth answer of `auth_len` bytes.
async fn answer_to_handshake(
    addr: std::net::SocketAddr,
    seq: u8,
    plugin: Option<&str>,
    auth_len: usize,
) -> (u8, u16) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let mut header = [0u8; 4];
    tcp.read_exact(&mut header).await.unwrap();
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    let mut greeting = vec![0u8; len];
    tcp.read_exact(&mut greeting).await.unwrap();
    // The plugin name is the greeting's last NUL-terminated string.
    let body = greeting.strip_suffix(&[0]).unwrap_or(&greeting);
    let start = body.iter().rposition(|b| *b == 0).map_or(0, |i| i + 1);
    let offered = String::from_utf8_lossy(&body[start..]).to_string();
    let plugin = plugin.map_or(offered, str::to_string);
    // PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | LONG_PASSWORD | TRANSACTIONS.
    let caps: u32 = 0x0200 | 0x8000 | 0x0008_0000 | 0x0001 | 0x2000;
    let mut payload = Vec::new();
    payload.extend_from_slice(&caps.to_le_bytes());
    payload.extend_from_slice(&(1u32 << 24).to_le_bytes());
    payload.push(45);
    payload.extend_from_slice(&[0; 23]);
    payload.extend_from_slice(b"app\0");
    payload.push(u8::try_from(auth_len).unwrap());
    payload.extend(std::iter::repeat_n(b'x', auth_len));
    payload.extend_from_slice(plugin.as_bytes());
    payload.push(0);
    let mut packet = u32::try_from(payload.len()).unwrap().to_le_bytes()[..3].to_vec();
    packet.push(seq);
    packet.extend(payload);
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &packet)
        .await
        .unwrap();
    let mut reply = [0u8; 7];
    let read = sluice::clock::timeout(Duration::from_secs(5), tcp.read_exact(&mut reply)).await;
    match read {
        Ok(Ok(_)) if reply[4] == 0xff => (reply[3], u16::from_le_bytes([reply[5], reply[6]])),
        Ok(Ok(_)) => (reply[3], 0),
        other => panic!("no answer to the handshake response: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_is_as_strict_as_the_servers() {
    let db = TestDb::start(50).await;
    let proxy = Proxy::start(&config_for(&db, "", "")).await;
    let direct = std::net::SocketAddr::from(([127, 0, 0, 1], db.port));
    // (On MySQL 9, which has no mysql_native_password, the server answers an answer
    // for that plugin with a switch to its own; Sluice checks both plugins, so only the
    // greeting's own is compared.)
    for (what, seq, plugin, auth_len) in [
        ("a handshake response numbered 5", 5, None, 20),
        ("a handshake response numbered 0", 0, None, 20),
        (
            "an answer of 19 bytes for the greeting's plugin",
            1,
            None,
            19,
        ),
    ] {
        let server = answer_to_handshake(direct, seq, plugin, auth_len).await;
        let sluice = answer_to_handshake(proxy.addr, seq, plugin, auth_len).await;
        println!("{what}: server {server:?}, Sluice {sluice:?}");
        assert_eq!(sluice, server, "{what}");
    }
}

/// The error code a login of `opts` gets (0 when it succeeds).
async fn login_code(opts: mysql_async::OptsBuilder) -> u16 {
    match mysql_async::Conn::new(opts).await {
        Ok(conn) => {
            conn.disconnect().await.unwrap();
            0
        }
        Err(mysql_async::Error::Server(e)) => e.code,
        Err(e) => panic!("not a server error: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_schema_is_checked_at_login_as_the_server_does() {
    let db = TestDb::start(50).await;
    let mut admin = db.admin().await;
    admin
        .query_drop(
            "CREATE DATABASE secret; CREATE USER 'narrow'@'%' IDENTIFIED BY 'narrow-pw'; \
             GRANT SELECT ON shop.* TO 'narrow'@'%'",
        )
        .await
        .unwrap();
    let config =
        config_for(&db, "", "") + "[[users]]\nname = \"narrow\"\npassword = \"narrow-pw\"\n";
    let proxy = Proxy::start(&config).await;
    let as_user = |opts: mysql_async::OptsBuilder, user: &str, schema: &str| {
        let opts = opts.db_name(Some(schema.to_string()));
        if user == "narrow" {
            opts.user(Some("narrow")).pass(Some("narrow-pw"))
        } else {
            opts
        }
    };
    // A user without rights on a schema is not told whether it exists: 1044 for both.
    for (user, schema, code) in [
        ("narrow", "shop", 0),
        ("narrow", "secret", 1044),
        ("narrow", "nowhere", 1044),
        (APP_USER, "nowhere", 1049),
    ] {
        let direct = login_code(as_user(db.direct_opts(), user, schema)).await;
        assert_eq!(direct, code, "directly, {user} on {schema}");
        let through = login_code(as_user(proxy.opts(), user, schema)).await;
        assert_eq!(through, code, "through Sluice, {user} on {schema}");
    }
    // Refused at login, counted as such; the pool is unharmed.
    assert_eq!(
        proxy
            .metric_reaches(
                "sluice_client_connections_setup_failed_total{reason=\"schema\"}",
                3.0
            )
            .await,
        3.0
    );
    pool_serves(&proxy).await;
}

/// Direct connections as app to `db` until the server refuses one with 1040: what
/// other applications hold when the database is at its own `max_connections`.
async fn fill_server(db: &TestDb) -> Vec<mysql_async::Conn> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(db.port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false);
    let mut held = Vec::new();
    // Twice: a connection that was closing when the server first refused (the server
    // counts it a moment after its COM_QUIT) leaves a slot free a moment later.
    for round in 0..2 {
        if round > 0 {
            sluice::clock::sleep(std::time::Duration::from_millis(300)).await;
        }
        loop {
            match mysql_async::Conn::new(opts.clone()).await {
                Ok(conn) => held.push(conn),
                Err(mysql_async::Error::Server(e)) if e.code == 1040 => break,
                Err(e) => panic!("{e}"),
            }
            assert!(held.len() < 100, "the server never refused");
        }
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_at_its_own_limit_is_waited_for_not_hammered_and_its_1040_never_passed_on() {
    let db = TestDb::start(12).await;
    // A cap of all 12: more than the server will have room for.
    let proxy = Proxy::start(&config_for(&db, "max_connections_percent = 100", "")).await;
    pool_serves(&proxy).await;
    let steady = Steady::start(&proxy).await;
    // Other applications take everything else, then leave room for two more.
    let mut others = fill_server(&db).await;
    for conn in others.drain(..2) {
        conn.disconnect().await.unwrap();
    }
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let opts = proxy.opts();
        clients.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            let mut conn = mysql_async::Conn::new(opts).await.unwrap();
            for _ in 0..15 {
                let r: Result<Option<i64>, _> =
                    conn.query_first("SELECT COUNT(*) FROM menus").await;
                match r {
                    Ok(n) => assert_eq!(n, Some(9)),
                    Err(mysql_async::Error::Server(e)) => codes.push(e.code),
                    Err(e) => panic!("{e}"),
                }
            }
            conn.disconnect().await.unwrap();
            codes
        }));
    }
    let mut codes = Vec::new();
    for c in clients {
        codes.extend(c.await.unwrap());
    }
    let took = started.elapsed();
    assert!(codes.is_empty(), "clients got errors: {codes:?}");
    let m = proxy.metrics().await;
    let sample = |name: &str| common::metrics::sample(&m, name);
    let refused = sample("sluice_database_connections_refused_total");
    // A burst at first (every free slot tried at once), then one attempt per pause
    // (100 ms doubling to 2 s): a few a second at most, not one per statement.
    assert!(refused >= 1.0, "the server never refused Sluice: {m}");
    assert!(
        refused <= 12.0 + 10.0 * took.as_secs_f64(),
        "{refused} refused connects in {took:?}"
    );
    assert!(
        sample("sluice_database_connections_effective_max") < 12.0,
        "{m}"
    );
    steady.check().await;
    // The others leave: the pool grows back to the cap as it needs to.
    for conn in others {
        conn.disconnect().await.unwrap();
    }
    let mut conns = Vec::new();
    for _ in 0..6 {
        let mut c = proxy.conn().await;
        c.query_drop("BEGIN").await.unwrap();
        c.query_drop("SELECT 1").await.unwrap();
        conns.push(c);
    }
    assert!(proxy.metric("sluice_database_connections").await >= 6.0);
    for mut c in conns {
        c.query_drop("COMMIT").await.unwrap();
        c.disconnect().await.unwrap();
    }
    pool_serves(&proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_database_refuses_every_connection() {
    let db = TestDb::start(12).await;
    let config = config_for(
        &db,
        "health_check_interval = 0.2\nhealth_check_timeout = 1\nidle_timeout = 0.5",
        "",
    );
    let proxy = Proxy::start(&config).await;
    pool_serves(&proxy).await;
    proxy.readyz_becomes(200, Duration::from_secs(5)).await;
    // Sluice's client left and its backend connection expired: a new one is all Sluice
    // could check with. Other applications take every connection the server has.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric("sluice_database_connections").await > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the idle connection never expired"
        );
        sluice::clock::sleep(Duration::from_millis(50)).await;
    }
    let mut others = fill_server(&db).await;
    let why = proxy.readyz_becomes(503, Duration::from_secs(5)).await;
    assert_eq!(why, "database refusing connections\n");
    assert_eq!(proxy.metric("sluice_database_up").await, 0.0);
    // One slot comes free: ready again, and a client is served.
    others.pop().unwrap().disconnect().await.unwrap();
    proxy.readyz_becomes(200, Duration::from_secs(10)).await;
    pool_serves(&proxy).await;
    for conn in others {
        conn.disconnect().await.unwrap();
    }
}
