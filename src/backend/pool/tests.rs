//! The pool against fake connections: no server, no sockets. Delays are a few
//! milliseconds of real time (tokio's paused clock, its test-util feature, would also be
//! compiled into the binary the load harness measures).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::backend::partition::PartitionKey;
use crate::backend::{BackendError, ConnectionError, PoolError};
use crate::metrics::Metrics;
use crate::multiplex::Variables;

/// Counts connections from the moment a connect starts until the connection is gone,
/// as the server would: its peak is what the server saw at most.
#[derive(Default)]
struct Census {
    live: AtomicUsize,
    peak: AtomicUsize,
    opened: AtomicUsize,
}

struct Alive(Arc<Census>);

impl Alive {
    fn new(census: &Arc<Census>) -> Self {
        let now = census.live.fetch_add(1, Ordering::SeqCst) + 1;
        census.peak.fetch_max(now, Ordering::SeqCst);
        Self(census.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct FakeConn {
    key: PartitionKey,
    schema: Option<Vec<u8>>,
    created: Instant,
    last_used: Instant,
    generation: u64,
    _alive: Alive,
}

impl FakeConn {
    fn new(key: &PartitionKey, schema: Option<&[u8]>, alive: Alive, generation: u64) -> Self {
        Self {
            key: key.clone(),
            schema: schema.map(<[u8]>::to_vec),
            created: Instant::now(),
            last_used: Instant::now(),
            generation,
            _alive: alive,
        }
    }
}

impl Pooled for FakeConn {
    fn key(&self) -> &PartitionKey {
        &self.key
    }
    fn has_schema(&self, schema: Option<&[u8]>) -> bool {
        self.schema.as_deref() == schema
    }
    fn has_vars(&self, _: &Variables) -> bool {
        true
    }
    fn created(&self) -> Instant {
        self.created
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
    fn set_last_used(&mut self, at: Instant) {
        self.last_used = at;
    }
    fn server_gone(&self) -> bool {
        false
    }
    fn generation(&self) -> u64 {
        self.generation
    }
}

/// Connects, resets and quits after random delays (from a seeded generator); a share
/// of connects fail.
struct Fake {
    census: Arc<Census>,
    rng: Mutex<StdRng>,
    max_connections: usize,
    min_delay_ms: u64,
    max_delay_ms: u64,
    failures_percent: u32,
    /// Connections the database accepts from this pool at once (other applications
    /// hold the rest of its `max_connections`): beyond, connects get 1040.
    room: Arc<AtomicUsize>,
    /// The writer generation (a failover bumps it).
    generation: Arc<AtomicU64>,
    /// No instance takes writes: connects are refused as the connector does then.
    no_writer: Arc<AtomicBool>,
}

impl Fake {
    fn new(seed: u64, max_connections: usize) -> Self {
        Self {
            census: Arc::default(),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            max_connections,
            min_delay_ms: 0,
            max_delay_ms: 0,
            failures_percent: 0,
            room: Arc::new(AtomicUsize::new(usize::MAX)),
            generation: Arc::default(),
            no_writer: Arc::default(),
        }
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(
            self.rng
                .lock()
                .gen_range(self.min_delay_ms..=self.max_delay_ms),
        )
    }
}

impl Connector for Fake {
    type Conn = FakeConn;

    async fn connect(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> Result<FakeConn, BackendError> {
        if self.no_writer.load(Ordering::SeqCst) {
            return Err(ConnectionError::NoWriter.into());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let alive = Alive::new(&self.census);
        crate::clock::sleep(self.delay()).await;
        if self.rng.lock().gen_range(0..100) < self.failures_percent {
            return Err(ConnectionError::ConnectTimeout.into());
        }
        if self.census.live.load(Ordering::SeqCst) > self.room.load(Ordering::SeqCst) {
            return Err(ConnectionError::Server {
                code: 1040,
                sql_state: crate::protocol::errors::SqlState::from_bytes(b"08004").unwrap(),
                message: "Too many connections".into(),
            }
            .into());
        }
        self.census.opened.fetch_add(1, Ordering::SeqCst);
        Ok(FakeConn::new(key, schema, alive, generation))
    }

    /// Fails only with no writer, and is not counted in `opened`: the tests count
    /// clients'.
    async fn connect_probe(&self) -> Result<FakeConn, BackendError> {
        if self.no_writer.load(Ordering::SeqCst) {
            return Err(ConnectionError::NoWriter.into());
        }
        let generation = self.generation.load(Ordering::SeqCst);
        Ok(FakeConn::new(
            &key("probe"),
            None,
            Alive::new(&self.census),
            generation,
        ))
    }

    async fn probe(&self, _: &mut FakeConn) -> Result<ServerLimits, BackendError> {
        Ok(ServerLimits {
            max_connections: self.max_connections,
            max_prepared_statements: None,
        })
    }

    async fn reset(&self, _: &mut FakeConn) -> Result<(), BackendError> {
        crate::clock::sleep(self.delay()).await;
        Ok(())
    }

    async fn quit(conn: FakeConn) {
        crate::clock::sleep(Duration::from_millis(3)).await;
        drop(conn);
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

fn key(user: &str) -> PartitionKey {
    PartitionKey {
        user: Arc::from(user),
        flags: 0,
    }
}

/// A pool whose cap is half of the fake's `max_connections`.
fn pool(fake: Fake, borrow_timeout: Duration) -> Arc<Pool<Fake>> {
    let settings = PoolSettings {
        max_connections_percent: 50,
        max_idle_connections_percent: 50,
        borrow_timeout,
        max_lifetime: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(600),
        max_prepared_statements: 100,
    };
    Pool::new(fake, settings, Arc::new(Metrics::new()))
}

/// Every slot is accounted for: nothing borrowed, every open slot an idle connection,
/// and the fake server holds exactly those.
fn assert_settled(pool: &Pool<Fake>) {
    let st = pool.lock();
    assert!(st.waiters.is_empty(), "waiters left in the queue");
    assert_eq!(pool.metrics.database_connections_borrowed.get(), 0);
    assert_eq!(st.open, st.idle_count, "slots held by no connection");
    assert_eq!(
        pool.connector.census.live.load(Ordering::SeqCst),
        st.open,
        "connections the pool does not know"
    );
}

#[tokio::test]
async fn borrowers_cancelled_at_any_point_leave_no_slot_or_connection_behind() {
    for seed in 0..10 {
        let mut fake = Fake::new(seed, 10);
        fake.max_delay_ms = 6;
        fake.failures_percent = 10;
        let pool = pool(fake, Duration::from_millis(25));
        let cap = pool.ensure_capacity().await.unwrap();
        assert_eq!(cap, 5);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let pool = pool.clone();
            let start = Duration::from_millis(rng.gen_range(0..60));
            let cancel_after = Duration::from_millis(rng.gen_range(0..20));
            let hold = Duration::from_millis(rng.gen_range(0..5));
            let user = ["app", "other"][i % 2];
            let schema: Option<&[u8]> = [None, Some(&b"shop"[..])][rng.gen_range(0..2)];
            let ending = rng.gen_range(0..3);
            tasks.push(tokio::spawn(async move {
                crate::clock::sleep(start).await;
                let work = async {
                    let Ok(lease) = pool.borrow(&key(user), schema, &Variables::default()).await
                    else {
                        return;
                    };
                    crate::clock::sleep(hold).await;
                    match ending {
                        0 => lease.release(),
                        1 => drop(lease),
                        _ => lease.reset_and_release().await,
                    }
                };
                let _ = crate::clock::timeout(cancel_after, work).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // Closing connections finish their quit.
        crate::clock::sleep(Duration::from_millis(100)).await;
        assert_settled(&pool);
        let census = &pool.connector.census;
        assert!(
            census.peak.load(Ordering::SeqCst) <= cap,
            "seed {seed}: the server saw {} connections, over the cap of {cap}",
            census.peak.load(Ordering::SeqCst)
        );
        assert!(census.opened.load(Ordering::SeqCst) > 0);
    }
}

#[tokio::test]
async fn a_borrow_cancelled_while_connecting_frees_its_slot() {
    let mut fake = Fake::new(1, 2);
    (fake.min_delay_ms, fake.max_delay_ms) = (50, 100);
    let pool = pool(fake, Duration::from_millis(500));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 1);
    // The probe's connection is gone, so the borrower gets the free slot at once.
    crate::clock::sleep(Duration::from_millis(10)).await;
    assert_eq!(pool.lock().open, 0);
    // Connecting takes up to 100 ms; the borrower gives up after 1 ms.
    let cancelled = crate::clock::timeout(
        Duration::from_millis(1),
        pool.borrow(&key("app"), None, &Variables::default()),
    )
    .await;
    assert!(cancelled.is_err());
    crate::clock::sleep(Duration::from_millis(200)).await;
    assert_settled(&pool);
    // The one slot is free again: the next borrow gets it.
    let lease = pool.borrow(&key("app"), None, &Variables::default()).await;
    assert!(lease.is_ok());
}

#[tokio::test]
async fn waiters_are_served_in_arrival_order_and_a_cancelled_one_is_skipped() {
    let pool = pool(Fake::new(2, 4), Duration::from_secs(10));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 2);
    let vars = Variables::default();
    let held = [
        pool.borrow(&key("app"), None, &vars).await.unwrap(),
        pool.borrow(&key("app"), None, &vars).await.unwrap(),
    ];
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..6 {
        let (waiter_pool, served) = (pool.clone(), served.clone());
        waiters.push(tokio::spawn(async move {
            let lease = waiter_pool
                .borrow(&key("app"), None, &Variables::default())
                .await
                .unwrap();
            served.lock().push(i);
            crate::clock::sleep(Duration::from_millis(5)).await;
            lease.release();
        }));
        // Queued before the next one arrives.
        while pool.lock().waiters.len() < i + 1 {
            tokio::task::yield_now().await;
        }
    }
    waiters[2].abort();
    for lease in held {
        lease.release();
    }
    for (i, w) in waiters.into_iter().enumerate() {
        let joined = w.await;
        assert_eq!(joined.is_err(), i == 2);
    }
    assert_eq!(*served.lock(), vec![0, 1, 3, 4, 5]);
    assert_eq!(pool.connector.census.opened.load(Ordering::SeqCst), 2);
    assert_settled(&pool);
}

#[tokio::test]
async fn a_grant_sent_to_a_borrower_that_then_left_goes_to_the_next_one() {
    let pool = pool(Fake::new(3, 2), Duration::from_secs(10));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 1);
    let vars = Variables::default();
    let held = pool.borrow(&key("app"), None, &vars).await.unwrap();
    let spawn_borrower = || {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.borrow(&key("app"), None, &Variables::default())
                .await
                .map(Lease::release)
        })
    };
    let first = spawn_borrower();
    while pool.lock().waiters.is_empty() {
        tokio::task::yield_now().await;
    }
    let second = spawn_borrower();
    while pool.lock().waiters.len() < 2 {
        tokio::task::yield_now().await;
    }
    // The connection is sent to the first borrower, which is cancelled before it runs.
    held.release();
    first.abort();
    assert!(first.await.is_err());
    assert!(second.await.unwrap().is_ok());
    // The same connection served both: none was lost, none opened.
    assert_eq!(pool.connector.census.opened.load(Ordering::SeqCst), 1);
    assert_settled(&pool);
}

#[tokio::test]
async fn another_partition_takes_the_slot_of_an_idle_connection() {
    let pool = pool(Fake::new(4, 2), Duration::from_secs(10));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 1);
    let vars = Variables::default();
    pool.borrow(&key("app"), None, &vars)
        .await
        .unwrap()
        .release();
    // "other" finds the cap full with an idle "app" connection: it is replaced.
    let lease = pool.borrow(&key("other"), None, &vars).await.unwrap();
    let census = &pool.connector.census;
    assert_eq!(census.opened.load(Ordering::SeqCst), 2);
    assert_eq!(census.peak.load(Ordering::SeqCst), 1);
    lease.release();
    assert_settled(&pool);
}

#[tokio::test]
async fn a_client_without_a_schema_never_gets_a_connection_with_one() {
    let pool = pool(Fake::new(5, 8), Duration::from_secs(10));
    pool.ensure_capacity().await.unwrap();
    let vars = Variables::default();
    pool.borrow(&key("app"), Some(b"shop"), &vars)
        .await
        .unwrap()
        .release();
    let mut lease = pool.borrow(&key("app"), None, &vars).await.unwrap();
    assert!(lease.conn().has_schema(None));
    assert_eq!(pool.connector.census.opened.load(Ordering::SeqCst), 2);
    // A client with a schema may take either (COM_INIT_DB switches it).
    lease.release();
    let lease = pool.borrow(&key("app"), Some(b"other"), &vars).await;
    assert!(lease.is_ok());
    assert_eq!(pool.connector.census.opened.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn idle_connections_expire_and_the_reaper_keeps_the_idle_bound() {
    let pool = pool(Fake::new(6, 8), Duration::from_secs(10));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 4);
    let vars = Variables::default();
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(pool.borrow(&key("app"), None, &vars).await.unwrap());
    }
    for lease in leases {
        lease.release();
    }
    pool.reap();
    crate::clock::sleep(Duration::from_millis(100)).await;
    // max_idle is 50 % of max_connections, so all four may stay.
    assert_eq!(pool.lock().idle_count, 4);
    // Unused for longer than idle_timeout (the pool's clock is the system's).
    let long_ago = Instant::now() - Duration::from_secs(601);
    for conn in pool.lock().idle.values_mut().flatten() {
        conn.set_last_used(long_ago);
    }
    pool.reap();
    crate::clock::sleep(Duration::from_millis(100)).await;
    assert_eq!(pool.lock().open, 0);
    assert_settled(&pool);
}

#[tokio::test]
async fn the_pools_own_checks_neither_refresh_idle_connections_nor_reorder_them() {
    let pool = pool(Fake::new(6, 8), Duration::from_secs(10));
    pool.ensure_capacity().await.unwrap();
    let vars = Variables::default();
    let mut leases = Vec::new();
    for _ in 0..3 {
        leases.push(pool.borrow(&key("app"), None, &vars).await.unwrap());
    }
    for lease in leases {
        lease.release();
    }
    // Two unused for long, the third (the one a borrower takes next) just now.
    let long_ago = Instant::now() - Duration::from_secs(601);
    let mut used = Vec::new();
    for (i, conn) in pool.lock().idle.values_mut().flatten().enumerate() {
        if i < 2 {
            conn.set_last_used(long_ago);
        }
        used.push(conn.last_used());
    }
    // A check (the health check, the capacity probe, the DDL watch) lends the newest
    // and gives it back unused, many times.
    for _ in 0..5 {
        let mut lease = pool.lend_idle().unwrap();
        assert_eq!(lease.conn().last_used(), used[2]);
        lease.release_unused();
    }
    let after: Vec<Instant> = pool
        .lock()
        .idle
        .values()
        .flatten()
        .map(|c| c.last_used())
        .collect();
    assert_eq!(
        after, used,
        "a check counted as a use, or moved connections"
    );
    // The two left alone still expire.
    pool.reap();
    crate::clock::sleep(Duration::from_millis(100)).await;
    assert_eq!(pool.lock().open, 1);
    assert_settled(&pool);
}

#[tokio::test]
async fn a_full_pool_times_borrowers_out_and_forgets_them() {
    let pool = pool(Fake::new(7, 2), Duration::from_millis(50));
    pool.ensure_capacity().await.unwrap();
    let vars = Variables::default();
    let held = pool.borrow(&key("app"), None, &vars).await.unwrap();
    let timed_out = pool.borrow(&key("app"), None, &vars).await;
    assert!(matches!(
        timed_out,
        Err(BackendError::Pool(PoolError::BorrowTimeout))
    ));
    assert!(pool.lock().waiters.is_empty());
    held.release();
    assert_settled(&pool);
}

/// `clients` tasks each borrow, hold for a few milliseconds and release, `rounds`
/// times; the errors they got.
async fn churn(pool: &Arc<Pool<Fake>>, clients: usize, rounds: usize) -> Vec<BackendError> {
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for _ in 0..rounds {
                match pool.borrow(&key("app"), None, &Variables::default()).await {
                    Ok(lease) => {
                        crate::clock::sleep(Duration::from_millis(3)).await;
                        lease.release();
                    }
                    Err(e) => errors.push(e),
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    errors
}

#[tokio::test]
async fn borrowers_wait_for_the_connections_a_refusing_database_accepts() {
    let fake = Fake::new(8, 20);
    // Other applications leave room for two of the cap's ten.
    let room = fake.room.clone();
    room.store(2, Ordering::SeqCst);
    let pool = pool(fake, Duration::from_secs(5));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 10);
    crate::clock::sleep(Duration::from_millis(10)).await;
    let started = Instant::now();
    let errors = churn(&pool, 20, 10).await;
    let took = started.elapsed();
    assert!(errors.is_empty(), "{errors:?}");
    let refused = pool.metrics.database_connections_refused.get();
    // The first burst of connects is refused together (all ten slots were free); after
    // it, at most one attempt per pause (100 ms, doubling).
    let bursts = 10 + took.as_millis() as u64 / 50;
    assert!(
        refused >= 1 && refused <= bursts,
        "{refused} refused in {took:?}"
    );
    assert_eq!(pool.lock().opening.effective_cap(10), 2);
    assert_eq!(pool.metrics.database_connections_effective_max.get(), 2);
    // Room again: the pool grows back, one connection at a time.
    room.store(6, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.lock().opening.effective_cap(10) < 6 {
        assert!(Instant::now() < deadline, "the pool never grew back");
        assert!(churn(&pool, 10, 5).await.is_empty());
    }
    assert!(pool.lock().open <= 7);
    crate::clock::sleep(Duration::from_millis(50)).await;
    assert_settled(&pool);
}

#[tokio::test]
async fn a_database_refusing_every_connection_is_retried_slowly_then_borrowers_time_out() {
    let fake = Fake::new(9, 20);
    fake.room.store(0, Ordering::SeqCst);
    let pool = pool(fake, Duration::from_millis(1500));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 10);
    crate::clock::sleep(Duration::from_millis(10)).await;
    let errors = churn(&pool, 10, 1).await;
    assert_eq!(errors.len(), 10);
    for e in &errors {
        assert!(
            matches!(e, BackendError::Pool(PoolError::BorrowTimeout)),
            "the server's refusal reached a borrower: {e}"
        );
    }
    // Ten at first (every slot free), then pauses of 50-100, 100-200, 200-400,
    // 400-800 ms: a handful more in 1.5 s, not one per borrower per moment.
    let refused = pool.metrics.database_connections_refused.get();
    assert!((11..=18).contains(&refused), "{refused}");
    assert_eq!(pool.lock().open, 0);
    assert!(pool.lock().waiters.is_empty());
}

#[tokio::test]
async fn started_without_a_writer_borrowers_wait_for_the_cap_then_time_out() {
    let fake = Fake::new(11, 20);
    let no_writer = fake.no_writer.clone();
    no_writer.store(true, Ordering::SeqCst);
    let pool = pool(fake, Duration::from_millis(600));
    let vars = Variables::default();
    // Nothing to read the cap from: the borrower waits its whole timeout, then 9501.
    let started = Instant::now();
    let e = pool.borrow(&key("app"), None, &vars).await.err().unwrap();
    assert!(
        matches!(e, BackendError::Pool(PoolError::BorrowTimeout)),
        "{e}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pool.metrics.borrow_timeouts.get(), 1);
    // A writer appears while one waits, and the monitor reads its capacity (as on any
    // change of writer): the waiter is served.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let lease = pool
                .borrow(&key("app"), None, &Variables::default())
                .await?;
            lease.release();
            Ok::<_, BackendError>(())
        })
    };
    crate::clock::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished());
    no_writer.store(false, Ordering::SeqCst);
    assert_eq!(pool.refresh_capacity().await.unwrap(), 10);
    waiter.await.unwrap().unwrap();
    assert_settled(&pool);
}

#[tokio::test]
async fn a_failover_closes_the_old_writers_connections_and_waiters_get_the_new_ones() {
    let fake = Fake::new(10, 20);
    let (generation, no_writer) = (fake.generation.clone(), fake.no_writer.clone());
    let pool = pool(fake, Duration::from_secs(5));
    assert_eq!(pool.ensure_capacity().await.unwrap(), 10);
    crate::clock::sleep(Duration::from_millis(10)).await;
    let vars = Variables::default();
    // Three idle connections and one borrowed, all of generation 0.
    let mut leases = Vec::new();
    for _ in 0..4 {
        leases.push(pool.borrow(&key("app"), None, &vars).await.unwrap());
    }
    let held = leases.pop().unwrap();
    for lease in leases {
        lease.release();
    }
    assert_eq!(pool.lock().idle_count, 3);
    // The writer is lost: no writer for now.
    no_writer.store(true, Ordering::SeqCst);
    generation.store(1, Ordering::SeqCst);
    pool.retarget();
    assert_eq!(
        pool.lock().idle_count,
        0,
        "idle connections of the old writer"
    );
    // A borrower now waits instead of failing.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let vars = Variables::default();
            let mut lease = pool.borrow(&key("app"), None, &vars).await?;
            let g = lease_generation(&mut lease);
            lease.release();
            Ok::<_, BackendError>(g)
        })
    };
    crate::clock::sleep(Duration::from_millis(150)).await;
    assert!(
        !waiter.is_finished(),
        "a borrower failed or was served without a writer"
    );
    // The borrowed connection of the old writer is closed when it comes back.
    assert!(!held.is_current());
    held.release();
    crate::clock::sleep(Duration::from_millis(20)).await;
    assert_eq!(pool.lock().idle_count, 0);
    assert!(!waiter.is_finished());
    // The new writer: the waiter is served at once, with a connection of its generation.
    let promoted = Instant::now();
    no_writer.store(false, Ordering::SeqCst);
    generation.store(2, Ordering::SeqCst);
    pool.retarget();
    assert_eq!(waiter.await.unwrap().unwrap(), 2);
    assert!(promoted.elapsed() < Duration::from_millis(100));
    let closed = pool
        .metrics
        .database_connections_closed
        .with_label_values(&["failover"])
        .get();
    assert_eq!(closed, 4);
    crate::clock::sleep(Duration::from_millis(50)).await;
    assert_settled(&pool);
    assert!(pool
        .lock()
        .idle
        .values()
        .flatten()
        .all(|c| c.generation == 2));
}

#[tokio::test]
async fn an_idle_connection_of_an_older_generation_is_never_lent() {
    let fake = Fake::new(11, 20);
    let generation = fake.generation.clone();
    let pool = pool(fake, Duration::from_secs(1));
    pool.ensure_capacity().await.unwrap();
    let vars = Variables::default();
    pool.borrow(&key("app"), None, &vars)
        .await
        .unwrap()
        .release();
    // The writer changed, and the pool has not been told yet.
    generation.store(1, Ordering::SeqCst);
    let mut lease = pool.borrow(&key("app"), None, &vars).await.unwrap();
    assert_eq!(lease_generation(&mut lease), 1);
    lease.release();
    crate::clock::sleep(Duration::from_millis(20)).await;
    assert_settled(&pool);
}

fn lease_generation(lease: &mut Lease<Fake>) -> u64 {
    assert!(lease.is_current());
    lease.conn().generation
}
