//! The user story: 100 concurrent workers, 10,000 invocations, each a new connection
//! running `SELECT * FROM menus`, against MariaDB with max_connections=65. Direct, many
//! fail with 1040; through Sluice (cap 70% = 45), none fail.

mod common;

use common::{storm, Proxy, TestDb};

const WORKERS: usize = 100;
const INVOCATIONS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_storm_direct_then_through_sluice() {
    let db = TestDb::start(65).await;
    let r = storm::run(db.direct_opts(), WORKERS, INVOCATIONS).await;
    println!("direct: {}", r.summary());
    assert_eq!(r.wrong_results, 0);

    db.reset_max_used_connections().await;
    let proxy = Proxy::for_db(&db).await;
    let r = storm::run(proxy.opts(), WORKERS, INVOCATIONS).await;
    let used = db.global_status("Max_used_connections").await;
    println!("sluice: {}, backend peak {used}", r.summary());
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
