//! The pool itself: its books behind one lock, and the paths by which connections and
//! slots come back (returned, closed, freed) and go to the next waiter in line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::grant::Grant;
use super::health::Health;
use super::state::State;
use super::traits::{Connector, Pooled};
use crate::metrics::{Metrics, PoolGauges};

/// Pool limits taken from the configuration.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections_percent: u32,
    pub max_idle_connections_percent: u32,
    pub borrow_timeout: Duration,
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
    pub max_prepared_statements: usize,
}

pub struct Pool<K: Connector> {
    pub(super) connector: K,
    pub(super) settings: PoolSettings,
    pub(super) metrics: Arc<Metrics>,
    /// Where this pool's books show (the writer's, or one replica's).
    pub(super) gauges: PoolGauges,
    pub(super) state: Mutex<State<K>>,
    /// Serialises reads of the server's limits.
    pub(super) capacity_lock: tokio::sync::Mutex<()>,
}

impl<K: Connector> Pool<K> {
    /// The writer's pool.
    pub fn new(connector: K, settings: PoolSettings, metrics: Arc<Metrics>) -> Arc<Self> {
        // Not checked yet: taken for answering, as /readyz does.
        metrics.database_up.set(1);
        let gauges = metrics.writer_pool();
        Self::with_gauges(connector, settings, metrics, gauges)
    }

    /// A pool that shows its books in `gauges`.
    pub fn with_gauges(
        connector: K,
        settings: PoolSettings,
        metrics: Arc<Metrics>,
        gauges: PoolGauges,
    ) -> Arc<Self> {
        Arc::new(Self {
            connector,
            settings,
            metrics,
            gauges,
            state: Mutex::new(State::default()),
            capacity_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// What opens this pool's connections (and knows the server).
    pub fn connector(&self) -> &K {
        &self.connector
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock()
    }

    pub fn cap(&self) -> Option<usize> {
        self.lock().cap
    }

    /// What the last health check found.
    pub fn health(&self) -> Health {
        self.lock().health
    }

    pub fn set_health(&self, health: Health) {
        self.lock().health = health;
        self.metrics
            .database_up
            .set(i64::from(health.not_ready().is_none()));
    }

    /// A connection came back from a client within `within`: the database answered.
    pub fn returned_within(&self, within: Duration) -> bool {
        self.lock()
            .last_returned
            .is_some_and(|t| t.elapsed() <= within)
    }

    /// How many prepared statements one backend connection may keep open.
    pub fn statement_bound(&self) -> usize {
        self.lock()
            .statement_bound
            .unwrap_or(self.settings.max_prepared_statements)
    }

    /// Returns a clean borrowed connection (no transaction, nothing pinned) for reuse.
    pub(super) fn put_back(self: &Arc<Self>, mut conn: K::Conn) {
        let now = Instant::now();
        conn.set_last_used(now);
        self.gauges.borrowed.dec();
        self.take_back(conn, now, true);
    }

    /// Takes back a connection nobody holds: one just returned, or one granted to a
    /// borrower that was gone before it took it. The first waiter in line gets it (or its
    /// slot); otherwise it goes idle.
    pub(super) fn return_unused(self: &Arc<Self>, conn: K::Conn) {
        self.take_back(conn, Instant::now(), false);
    }

    /// [`Pool::return_unused`] at `now` (read once per release: the clock is read on
    /// every statement's release, so not twice). `used`: it comes back from a client's
    /// command, which the health check takes as proof that the database answers.
    fn take_back(self: &Arc<Self>, mut conn: K::Conn, now: Instant, used: bool) {
        let mut st = self.lock();
        if used {
            st.last_returned = Some(now);
        }
        let expired = now.saturating_duration_since(conn.created()) >= self.settings.max_lifetime;
        let over_cap = st.cap.is_some_and(|cap| st.open > cap);
        let stale = self.is_stale(&conn);
        if expired || over_cap || stale {
            drop(st);
            let reason = match () {
                () if stale => "failover",
                () if expired => "lifetime",
                () => "cap",
            };
            self.close(conn, reason);
            return;
        }
        while let Some(w) = st.waiters.pop_front() {
            // Strict FIFO: when the head waiter needs another partition, this
            // connection's slot goes to it.
            let fits = w.fits(&conn);
            let grant = if fits {
                Grant::Conn(conn)
            } else {
                Grant::Replace(conn)
            };
            match w.tx.send(grant) {
                Ok(()) => {
                    if !fits {
                        drop(st);
                        self.metrics
                            .database_connections_closed
                            .with_label_values(&["repartition"])
                            .inc();
                    }
                    return;
                }
                Err(back) => conn = back.into_conn().expect("a connection grant"),
            }
        }
        // Idle connections above max_idle are trimmed by the reaper, not here: closing
        // at once would churn connections through every burst.
        st.push_idle(conn);
        self.publish_locked(&st);
    }

    /// Closes a connection, counted under `reason`.
    pub(super) fn close(self: &Arc<Self>, conn: K::Conn, reason: &str) {
        self.metrics
            .database_connections_closed
            .with_label_values(&[reason])
            .inc();
        self.retire(conn);
    }

    /// Closes a connection whose closing is already counted. Its slot is reused only
    /// once the server has let it go: a waiter gets the connection itself and quits it
    /// before opening its own; otherwise the slot is freed after the quit completes. So
    /// the server never counts more than the cap.
    pub(super) fn retire(self: &Arc<Self>, mut conn: K::Conn) {
        let mut st = self.lock();
        if st.slots_may_pass() {
            while let Some(w) = st.waiters.pop_front() {
                match w.tx.send(Grant::Replace(conn)) {
                    Ok(()) => return,
                    Err(back) => conn = back.into_conn().expect("a connection grant"),
                }
            }
        }
        drop(st);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let pool = self.clone();
                rt.spawn(async move {
                    K::quit(conn).await;
                    pool.free_slot();
                });
            }
            // Outside the runtime (shutdown): just drop it.
            Err(_) => {
                drop(conn);
                self.free_slot();
            }
        }
    }

    /// A slot is no longer used: the next waiter gets it, or it is free.
    pub(super) fn free_slot(&self) {
        let mut st = self.lock();
        if st.slots_may_pass() {
            while let Some(w) = st.waiters.pop_front() {
                if w.tx.send(Grant::Slot).is_ok() {
                    drop(st);
                    self.publish();
                    return;
                }
            }
        }
        st.open -= 1;
        drop(st);
        self.publish();
    }

    /// Free slots (the cap grew) go to waiters.
    pub fn grant_free_slots(&self) {
        let mut st = self.lock();
        // Waiters first: after a refusal, asking for a slot uses up the next attempt.
        while !st.waiters.is_empty() && st.has_slot() {
            let Some(w) = st.waiters.pop_front() else {
                break;
            };
            if w.tx.send(Grant::Slot).is_ok() {
                st.open += 1;
            }
        }
        self.publish_locked(&st);
    }

    /// Updates the gauges from the pool state.
    pub(super) fn publish(&self) {
        self.publish_locked(&self.lock());
    }

    /// The cap, or fewer while the database refuses connections.
    pub(super) fn publish_effective_cap(&self, st: &State<K>) {
        let cap = st.cap.unwrap_or(0);
        self.gauges
            .effective_max
            .set(st.opening.effective_cap(cap) as i64);
    }

    pub(super) fn publish_locked(&self, st: &State<K>) {
        self.gauges.open.set(st.open as i64);
        self.gauges.idle.set(st.idle_count as i64);
    }

    /// Closes idle connections past their idle timeout or lifetime, then the least
    /// recently used ones above `max_idle`.
    pub fn reap(self: &Arc<Self>) {
        let now = Instant::now();
        let mut closed = Vec::new();
        {
            let mut st = self.lock();
            let (idle_timeout, lifetime) = (self.settings.idle_timeout, self.settings.max_lifetime);
            for list in st.idle.values_mut() {
                let mut i = 0;
                while i < list.len() {
                    let c = &list[i];
                    if now - c.last_used() >= idle_timeout || now - c.created() >= lifetime {
                        closed.push((list.swap_remove(i), "idle_timeout"));
                    } else {
                        i += 1;
                    }
                }
            }
            st.idle_count -= closed.len();
            // Over the cap (it shrank): idle connections go first, least recently used.
            while st
                .cap
                .is_some_and(|cap| st.open.saturating_sub(closed.len()) > cap)
            {
                let Some(conn) = st.take_least_recently_used() else {
                    break;
                };
                closed.push((conn, "cap"));
            }
            while st.idle_count > st.max_idle {
                let Some(conn) = st.take_least_recently_used() else {
                    break;
                };
                closed.push((conn, "idle_limit"));
            }
            self.publish_locked(&st);
        }
        for (conn, reason) in closed {
            self.close(conn, reason);
        }
    }

    /// Closes every idle connection politely (shutdown).
    pub async fn close_idle(&self) {
        let drained: Vec<K::Conn> = {
            let mut st = self.lock();
            let all: Vec<_> = st.idle.drain().flat_map(|(_, v)| v).collect();
            st.idle_count = 0;
            st.open -= all.len();
            self.publish_locked(&st);
            all
        };
        let mut quits = tokio::task::JoinSet::new();
        for conn in drained {
            quits.spawn(K::quit(conn));
        }
        while quits.join_next().await.is_some() {}
    }
}
