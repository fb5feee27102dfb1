//! The user story: 100 concurrent workers, 10,000 invocations, each a new connection
//! running `SELECT * FROM menus`, against MariaDB with max_connections=65. Direct, many
//! fail with 1040; through Sluice (cap 70% = 45), none fail.

mod common;

use common::{storm, MariaDb, Proxy, APP_PASSWORD, APP_USER};

const WORKERS: usize = 100;
const INVOCATIONS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_storm_direct_then_through_sluice() {
    let db = MariaDb::start(65).await;
    let direct = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(db.port)
        .user(Some(APP_USER))
        .pass(Some(APP_PASSWORD))
        .db_name(Some("shop"))
        .prefer_socket(false);
    let r = storm::run(direct, WORKERS, INVOCATIONS).await;
    println!(
        "direct: {} ok, {} failed {:?}, {:.0} invocations/s, p50 {:?}, p99 {:?}",
        r.ok,
        r.errors,
        r.error_codes,
        INVOCATIONS as f64 / r.elapsed.as_secs_f64(),
        r.percentile(0.5),
        r.percentile(0.99)
    );
    assert_eq!(r.wrong_results, 0);

    // Let the direct run's connections finish closing before the counter is reset.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    db.cli_socket("FLUSH STATUS");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let proxy = Proxy::for_db(&db).await;
    let r = storm::run(proxy.opts(), WORKERS, INVOCATIONS).await;
    let used = db.global_status("Max_used_connections").await;
    println!(
        "sluice: {} ok, {} failed {:?}, {:.0} invocations/s, p50 {:?}, p99 {:?}, backend peak {used}",
        r.ok,
        r.errors,
        r.error_codes,
        INVOCATIONS as f64 / r.elapsed.as_secs_f64(),
        r.percentile(0.5),
        r.percentile(0.99)
    );
    assert_eq!(
        (r.ok, r.errors, r.wrong_results),
        (INVOCATIONS, 0, 0),
        "{:?}",
        r.error_codes
    );
    // The cap (70% of 65) plus the harness's own connection that reads the status.
    assert!(used <= 45 + 1, "backend saw {used} connections");
    assert_eq!(
        proxy
            .metric("sluice_client_connections_received_total")
            .await,
        INVOCATIONS as f64
    );
    proxy.stop().await;
}
