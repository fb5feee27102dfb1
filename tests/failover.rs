//! Failover through Sluice, on a replicated set started by the harness and failed over
//! the way RDS does it: idle clients move to the new writer with their sessions, a
//! transaction on the old writer fails cleanly, a demoted writer is left, and a backend
//! name whose address changes is followed.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::SluiceProcess;
use common::proxy::{config_for_instances, config_with_backend};
use common::replication::{set_read_only, OldWriter, Replicated};
use common::{db::free_port, Proxy, TestDb};
use mysql_async::prelude::*;

const CLIENTS: usize = 10;

/// The server's error code for `sql`, 0 when it succeeded, 1 for any other failure (a
/// lost connection).
async fn code(conn: &mut mysql_async::Conn, sql: &str) -> u16 {
    match conn.query_drop(sql).await {
        Ok(()) => 0,
        Err(mysql_async::Error::Server(e)) => e.code,
        Err(_) => 1,
    }
}

fn write(client: usize, note: &str) -> String {
    format!("INSERT INTO items (owner, note) VALUES ({client}, '{note}')")
}

async fn server_id(c: &mut mysql_async::Conn) -> Option<u32> {
    c.query_first("SELECT @@server_id").await.ok().flatten()
}

async fn count(db: &TestDb, note: &str) -> i64 {
    let mut c = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let n: Option<i64> = c
        .query_first(format!("SELECT COUNT(*) FROM items WHERE note = '{note}'"))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    n.unwrap()
}

/// Clients through Sluice, each with a session variable of its own, a prepared
/// statement and a write done.
async fn clients_with_sessions(proxy: &Proxy) -> Vec<mysql_async::Conn> {
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut c = proxy.conn().await;
        c.query_drop(format!("SET SESSION group_concat_max_len = {}", 5000 + i))
            .await
            .unwrap();
        let one_more: Option<i64> = c.exec_first("SELECT ? + 1", (i as i64,)).await.unwrap();
        assert_eq!(one_more, Some(i as i64 + 1));
        assert_eq!(code(&mut c, &write(i, "before")).await, 0);
        clients.push(c);
    }
    clients
}

/// Each client's session is what it set, on the server `server_id`.
async fn check_sessions(clients: &mut [mysql_async::Conn], server_id: u32) {
    for (i, c) in clients.iter_mut().enumerate() {
        let (id, len): (u32, i64) = c
            .query_first("SELECT @@server_id, @@group_concat_max_len")
            .await
            .unwrap_or_else(|e| panic!("client {i} after the failover: {e}"))
            .unwrap();
        assert_eq!((id, len), (server_id, 5000 + i as i64), "client {i}");
        let one_more: Option<i64> = c.exec_first("SELECT ? + 1", (i as i64,)).await.unwrap();
        assert_eq!(
            one_more,
            Some(i as i64 + 1),
            "client {i}'s prepared statement"
        );
    }
}

async fn finish(clients: Vec<mysql_async::Conn>, proxy: Proxy) {
    for c in clients {
        c.disconnect().await.unwrap();
    }
    proxy.stop().await;
}

fn proxy_config(set: &Replicated) -> String {
    let mut instances = vec![&set.writer];
    instances.extend(set.replicas.iter());
    config_for_instances(&instances, "monitor_interval = 0.5", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_keep_their_sessions_when_the_writer_dies() {
    let mut set = Replicated::start(40, 1).await;
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let (old_address, new_address) = (set.writer.address(), set.replicas[0].address());
    let mut clients = clients_with_sessions(&proxy).await;
    check_sessions(&mut clients, 1).await;
    let max_allowed = "sluice_database_connections_max_allowed";
    assert_eq!(
        proxy.metric(max_allowed).await,
        28.0,
        "70 % of the writer's 40"
    );
    // The replica allows fewer connections: after the failover the cap is its own.
    set.replicas[0].cli_socket("SET GLOBAL max_connections = 20");
    // A client inside a transaction on the old writer, and one connected straight to it.
    let mut in_tx = proxy.conn().await;
    in_tx.query_drop("BEGIN").await.unwrap();
    assert_eq!(code(&mut in_tx, &write(99, "in-flight")).await, 0);
    let mut direct = mysql_async::Conn::new(set.writer.direct_opts())
        .await
        .unwrap();
    set.replicas_caught_up().await;

    let killed = Instant::now();
    set.fail_over(OldWriter::Killed).await;
    let promoted = killed.elapsed();
    // Idle clients: their next statements run on the new writer, sessions intact.
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(code(c, &write(i, "after")).await, 0, "client {i}'s write");
    }
    let recovered = killed.elapsed();
    check_sessions(&mut clients, 2).await;
    assert_eq!(count(&set.writer, "after").await, CLIENTS as i64);
    // Read by the monitor once the new writer is in place (70 % of its 20).
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric(max_allowed).await != 14.0 {
        assert!(Instant::now() < deadline, "the cap is not the new writer's");
        sluice::clock::sleep(Duration::from_millis(100)).await;
    }
    // The transaction died with the old writer: a clean error, then the connection is
    // closed, and nothing of it is on the new writer.
    let in_tx_code = code(&mut in_tx, &write(99, "in-flight")).await;
    assert_eq!(in_tx_code, 2013);
    assert_ne!(
        code(&mut in_tx, "SELECT 1").await,
        0,
        "its connection is closed"
    );
    assert_eq!(count(&set.writer, "in-flight").await, 0);
    let direct_code = code(&mut direct, &write(0, "direct")).await;
    println!(
        "promotion took {promoted:?}; idle clients through Sluice wrote again {recovered:?} \
         after the kill, with their sessions; a direct client to {old_address} got \
         {direct_code} (1: connection lost), and a new one cannot connect"
    );
    assert_ne!(direct_code, 0);
    let (ip, port) = old_address.rsplit_once(':').unwrap();
    let old_opts = mysql_async::OptsBuilder::from_opts(set.writer.direct_opts())
        .ip_or_hostname(ip)
        .tcp_port(port.parse().unwrap());
    assert!(mysql_async::Conn::new(old_opts).await.is_err());
    assert!(proxy.metric("sluice_failovers_total").await >= 1.0);
    let writer = |address: &str| format!("sluice_instance_is_writer{{instance=\"{address}\"}}");
    assert_eq!(proxy.metric(&writer(&new_address)).await, 1.0);
    assert_eq!(proxy.metric(&writer(&old_address)).await, 0.0);
    proxy.readyz_becomes(200, Duration::from_secs(5)).await;
    finish(clients, proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demoted_writer_is_left_and_its_read_only_errors_stop() {
    let mut set = Replicated::start(40, 1).await;
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let mut clients = clients_with_sessions(&proxy).await;
    set.fail_over(OldWriter::ReadOnly).await;
    // Each client writes until a write lands: only writes that reached the old writer
    // before Sluice saw it demoted may get its 1290, and the first one makes it look.
    let demoted = Instant::now();
    let mut refused = 0;
    for (i, c) in clients.iter_mut().enumerate() {
        loop {
            match code(c, &write(i, "after")).await {
                0 => break,
                1290 => refused += 1,
                other => panic!("client {i}: {other}"),
            }
            assert!(demoted.elapsed() < Duration::from_secs(30), "never left");
            sluice::clock::sleep(Duration::from_millis(50)).await;
        }
    }
    println!(
        "{refused} writes got 1290 from the demoted writer; every client wrote again \
         within {:?}",
        demoted.elapsed()
    );
    // From then on, none: every write lands on the new writer.
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(code(c, &write(i, "later")).await, 0, "client {i}");
    }
    check_sessions(&mut clients, 2).await;
    assert_eq!(count(&set.writer, "later").await, CLIENTS as i64);
    let old = set.old_writer.as_ref().unwrap();
    assert_eq!(count(old, "later").await, 0);
    let closed = proxy
        .metric("sluice_database_connections_closed_total{reason=\"failover\"}")
        .await;
    assert!(closed >= 1.0, "the old writer's connections were let go");
    finish(clients, proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_writer_statements_wait_for_one_and_readyz_says_why() {
    let mut set = Replicated::start(40, 1).await;
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let mut client = proxy.conn().await;
    assert_eq!(code(&mut client, &write(1, "before")).await, 0);
    // The writer dies and nothing is promoted yet.
    set.writer.kill();
    let body = proxy.readyz_becomes(503, Duration::from_secs(10)).await;
    assert!(body.contains("no writable instance"), "{body}");
    // A statement now waits; the replica is promoted meanwhile, and it runs there.
    let waiting = tokio::spawn(async move {
        let outcome = code(&mut client, &write(1, "waited")).await;
        (outcome, client)
    });
    sluice::clock::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a statement failed without a writer"
    );
    let replica = &set.replicas[0];
    replica.cli_socket(if replica.is_mysql() {
        "STOP REPLICA; RESET REPLICA ALL; SET GLOBAL super_read_only = OFF; \
         SET GLOBAL read_only = OFF;"
    } else {
        "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF;"
    });
    let (outcome, client) = waiting.await.unwrap();
    assert_eq!(outcome, 0);
    assert_eq!(count(replica, "waited").await, 1);
    proxy.readyz_becomes(200, Duration::from_secs(5)).await;
    assert!(proxy.metric("sluice_without_writer_seconds_total").await > 0.0);
    let availability = proxy.metric("sluice_availability_percent").await;
    assert!(availability > 0.0 && availability < 100.0, "{availability}");
    client.disconnect().await.unwrap();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_while_no_instance_takes_writes_the_first_clients_wait_for_a_writer() {
    let set = Replicated::start(40, 1).await;
    set_read_only(&set.writer, true);
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let body = proxy.readyz_becomes(503, Duration::from_secs(10)).await;
    assert!(body.contains("no writable instance"), "{body}");
    // Sluice knows no cap yet; the first client's login and statement wait.
    let opts = proxy.opts();
    let first = tokio::spawn(async move {
        let mut c = mysql_async::Conn::new(opts).await.unwrap();
        let outcome = code(&mut c, &write(1, "first")).await;
        (outcome, c)
    });
    sluice::clock::sleep(Duration::from_millis(700)).await;
    assert!(!first.is_finished(), "a client failed without a writer");
    set_read_only(&set.writer, false);
    let (outcome, c) = first.await.unwrap();
    assert_eq!(outcome, 0);
    assert_eq!(count(&set.writer, "first").await, 1);
    c.disconnect().await.unwrap();
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_lag_is_shown_and_with_two_writable_instances_writes_stay_on_the_writer() {
    let set = Replicated::start(40, 1).await;
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let mut client = proxy.conn().await;
    assert_eq!(server_id(&mut client).await, Some(1));
    // The replica's lag, as it reports it: none, then not replicating once stopped.
    let replica = &set.replicas[0];
    let lag = format!(
        "sluice_instance_replica_lag_seconds{{instance=\"{}\"}} ",
        replica.address()
    );
    let lag_becomes = |want: &'static str| {
        let (proxy, lag) = (&proxy, &lag);
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let text = proxy.metrics().await;
                if text.lines().any(|l| l == format!("{lag}{want}")) {
                    return;
                }
                assert!(Instant::now() < deadline, "{lag}not {want}: {text}");
                sluice::clock::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    lag_becomes("0").await;
    replica.cli_socket(if replica.is_mysql() {
        "STOP REPLICA;"
    } else {
        "STOP SLAVE;"
    });
    lag_becomes("-1").await;
    // The replica turns writable while the writer still is (a split brain).
    replica.cli_socket(if replica.is_mysql() {
        "STOP REPLICA; SET GLOBAL super_read_only = OFF; SET GLOBAL read_only = OFF;"
    } else {
        "STOP SLAVE; SET GLOBAL read_only = OFF;"
    });
    let conflicts = "sluice_writer_conflicts_total";
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric(conflicts).await < 1.0 {
        assert!(Instant::now() < deadline, "the conflict was not seen");
        sluice::clock::sleep(Duration::from_millis(100)).await;
    }
    // Every write still goes to the writer Sluice had; none to the other.
    for i in 0..20 {
        assert_eq!(code(&mut client, &write(i, "split")).await, 0);
        sluice::clock::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&set.writer, "split").await, 20);
    assert_eq!(count(replica, "split").await, 0);
    assert_eq!(proxy.metric("sluice_failovers_total").await, 0.0);
    client.disconnect().await.unwrap();
    proxy.stop().await;
}

/// `backend.address` is a name, resolved again on every connect: when its address
/// changes (as an RDS Multi-AZ failover moves the instance's DNS name to the standby),
/// new connections follow it without a restart. The name is in a hosts file the test
/// writes, bind-mounted over /etc/hosts for Sluice's process alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_name_whose_address_changes_is_followed() {
    let port = free_port();
    let args = |id: u32| vec![format!("--server-id={id}")];
    let mut first = TestDb::start_on("127.0.0.2", port, 30, args(11)).await;
    let second = TestDb::start_on("127.0.0.3", port, 30, args(22)).await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    let point_at = |ip: &str| {
        // Written in place: the bind mount follows the file, not its name.
        std::fs::write(
            &hosts,
            format!("127.0.0.1 localhost\n{ip} db.sluice.test\n"),
        )
        .unwrap()
    };
    point_at("127.0.0.2");
    let listen = free_port();
    let config = config_with_backend(&format!("address = \"db.sluice.test:{port}\""), "", "")
        .replace(
            "listen = \"127.0.0.1:0\"\nhandshake",
            &format!("listen = \"127.0.0.1:{listen}\"\nhandshake"),
        );
    let mount = format!(
        "mount --bind {} /etc/hosts && exec \"$0\" \"$@\"",
        hosts.display()
    );
    let wrapper: Vec<String> = ["unshare", "--mount", "sh", "-c", &mount]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sluice = SluiceProcess::start_under(&wrapper, &config, listen, Stdio::inherit()).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(sluice.port)
        .user(Some(common::APP_USER))
        .pass(Some(common::APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false);
    let mut client = mysql_async::Conn::new(opts).await.unwrap();
    assert_eq!(server_id(&mut client).await, Some(11));
    // The name moves to the other server, and the first one goes away.
    point_at("127.0.0.3");
    first.kill();
    let moved = Instant::now();
    let mut failed = 0;
    loop {
        match server_id(&mut client).await {
            Some(22) => break,
            other => {
                failed += 1;
                assert!(
                    moved.elapsed() < Duration::from_secs(20),
                    "still {other:?} after the name moved"
                );
                sluice::clock::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(
        failed <= 1,
        "{failed} statements failed while the name moved"
    );
    drop(second);
    drop(sluice);
}

/// Rows with `note`, on `db`.
async fn notes(db: &TestDb) -> std::collections::HashMap<String, i64> {
    let mut c = mysql_async::Conn::new(db.direct_opts()).await.unwrap();
    let rows: Vec<(String, i64)> = c
        .query("SELECT note, COUNT(*) FROM items GROUP BY note")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_steady_load_the_writer_dies_and_only_transactions_in_flight_fail() {
    use common::failover_load::Load;
    const THROUGH_SLUICE: usize = 50;
    const DIRECT: usize = 10;
    let mut set = Replicated::start(100, 1).await;
    let proxy = Proxy::start(&proxy_config(&set)).await;
    let sluice = Load::start(proxy.opts(), THROUGH_SLUICE, 0);
    let direct = Load::start(set.writer.direct_opts(), DIRECT, 1000);
    sluice::clock::sleep(Duration::from_secs(2)).await;
    let killed = Instant::now();
    set.fail_over(OldWriter::Killed).await;
    let promoted = killed.elapsed();
    sluice::clock::sleep(Duration::from_secs(3)).await;
    let (sluice, direct) = (sluice.stop().await, direct.stop().await);
    let rows = notes(&set.writer).await;
    let sum = |seen: &[common::failover_load::Seen],
               f: fn(&common::failover_load::Seen) -> usize| {
        seen.iter().map(f).sum::<usize>()
    };
    let longest = sluice.iter().map(|s| s.longest).max().unwrap();
    println!(
        "through Sluice: {} statements, {} errors ({:?}), {} transactions failed, {} \
         sessions lost outside a transaction, longest wait {longest:?} (promotion took \
         {promoted:?}); direct to the old writer: {} statements, {} errors, {} sessions \
         lost outside a transaction",
        sum(&sluice, |s| s.statements),
        sum(&sluice, |s| s.errors.len()),
        sluice
            .iter()
            .flat_map(|s| s.errors.iter())
            .collect::<std::collections::BTreeSet<_>>(),
        sum(&sluice, |s| s.failed_transactions.len()),
        sum(&sluice, |s| s.lost_idle),
        sum(&direct, |s| s.statements),
        sum(&direct, |s| s.errors.len()),
        sum(&direct, |s| s.lost_idle),
    );
    for (i, s) in sluice.iter().enumerate() {
        assert_eq!(
            s.lost_idle, 0,
            "client {i} lost its session outside a transaction"
        );
        assert_eq!(s.wrong_session, 0, "client {i}'s session variable changed");
        assert!(
            s.errors.iter().all(|&e| e == 2013),
            "client {i}: {:?} {:?}",
            s.errors,
            s.connect_errors
        );
        assert!(
            s.errors.len() <= 1,
            "client {i} failed more than its statement in flight"
        );
        // Nothing twice; a transaction committed whole or not at all.
        for note in &s.acknowledged {
            let n = |suffix: &str| rows.get(&format!("{note}{suffix}")).copied().unwrap_or(0);
            assert!(n("") <= 1 && n("a") <= 1 && n("a") == n("b"), "{note}");
        }
        for note in &s.failed_transactions {
            let n = |suffix: &str| rows.get(&format!("{note}{suffix}")).copied().unwrap_or(0);
            assert!(
                n("a") == n("b") && n("a") <= 1,
                "transaction {note} committed half"
            );
        }
        // Writes acknowledged after the failover are all on the new writer (the last
        // ones before the kill may not have been replicated: the harness's replication
        // is asynchronous, unlike RDS Multi-AZ storage).
        let last = s.acknowledged.last().expect("the client wrote");
        let present = rows.contains_key(last) || rows.contains_key(&format!("{last}a"));
        assert!(
            present,
            "client {i}'s last write {last} is not on the new writer"
        );
    }
    // Direct clients lost their sessions and could not reconnect.
    assert!(sum(&direct, |s| s.lost_idle) + sum(&direct, |s| s.failed_transactions.len()) > 0);
    assert!(direct.iter().all(|s| s.errors.contains(&2)));
    // Statements waited for the promotion, not for a borrow timeout.
    assert!(longest < Duration::from_secs(30), "{longest:?}");
    proxy.stop().await;
}
