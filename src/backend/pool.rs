//! The pool: a global cap on backend connections, idle connections per partition, and a
//! FIFO queue of borrowers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::conn::{BackendConn, Target};
use super::lease::Lease;
use super::BackendError;
use crate::credentials::Credentials;
use crate::metrics::Metrics;
use crate::multiplex::handshake_state::Collations;
use crate::multiplex::Variables;
use crate::protocol::flavor::Flavor;

/// Connections are shared only between clients with the same key: the backend user and
/// the semantic capability flags (`caps::SEMANTIC`). The handshake character set is not
/// part of it: every connection logs in with one collation and a client's own is
/// replayed (`multiplex::handshake_state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub user: Arc<str>,
    pub flags: u32,
}

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

pub(super) enum Grant {
    Conn(BackendConn),
    /// The slot of a connection that must be closed first (another partition's, or one
    /// past its lifetime): the receiver quits it, then opens its own.
    Replace(BackendConn),
    /// Permission to open one connection within the cap.
    Slot,
}

pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) key: PartitionKey,
    /// The client has no default schema, so only a connection without one fits.
    pub(super) schema_less: bool,
    pub(super) tx: oneshot::Sender<Grant>,
}

impl Waiter {
    fn fits(&self, conn: &BackendConn) -> bool {
        self.key == conn.key && (!self.schema_less || conn.schema.is(None))
    }
}

#[derive(Default)]
pub(super) struct State {
    /// floor(@@max_connections × percent / 100); None until first read.
    pub(super) cap: Option<usize>,
    pub(super) max_idle: usize,
    /// Prepared statements per connection: the configured bound, or less when the
    /// server's `max_prepared_stmt_count` shared over the cap is smaller.
    pub(super) statement_bound: Option<usize>,
    /// Connections open or being opened: slots in use.
    pub(super) open: usize,
    pub(super) idle: HashMap<PartitionKey, Vec<BackendConn>>,
    pub(super) idle_count: usize,
    /// Each partition's baseline session variables, read by its first connection.
    pub(super) baselines: HashMap<PartitionKey, Arc<Variables>>,
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) next_waiter: u64,
    pub(super) server_version: Option<Vec<u8>>,
    /// The server's collations, read by the first capacity probe.
    pub(super) collations: Option<Arc<Collations>>,
    /// The sum of the server's DDL counters at the last look (`ddl_watch`).
    pub(super) ddl_seen: Option<u64>,
    /// Status flags of the backend's greeting (e.g. NO_BACKSLASH_ESCAPES from sql_mode).
    pub(super) server_status: Option<u16>,
    /// When the last capacity probe failed: borrowers arriving soon after fail at once
    /// instead of each waiting a connect timeout in turn.
    pub(super) probe_failed_at: Option<Instant>,
}

impl State {
    fn take_idle(
        &mut self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Option<BackendConn> {
        let list = self.idle.get_mut(key)?;
        // A client without a default schema must not find another client's selected, and
        // MySQL cannot deselect one: such clients only take connections without one. Any
        // other schema is fine: COM_INIT_DB switches it.
        // Among those, prefer one whose session variables already match (no replay),
        // then one on the right schema; among equals the most recently used (warm).
        let allowed = |c: &BackendConn| schema.is_some() || c.schema.is(None);
        // The common case, a recent connection that matches in every way, without
        // scanning the whole list.
        let perfect = list
            .iter()
            .rposition(|c| c.vars == *vars && c.schema.is(schema) && allowed(c));
        let pos = match perfect {
            Some(pos) => pos,
            None => {
                list.iter()
                    .enumerate()
                    .filter(|(_, c)| allowed(c))
                    .max_by_key(|&(i, c)| (c.vars == *vars, c.schema.is(schema), i))?
                    .0
            }
        };
        let conn = list.swap_remove(pos);
        self.idle_count -= 1;
        Some(conn)
    }

    /// The idle connection unused for longest, across partitions.
    fn take_least_recently_used(&mut self) -> Option<BackendConn> {
        let (key, pos) = self
            .idle
            .iter()
            .flat_map(|(k, v)| v.iter().enumerate().map(move |(i, c)| (k, i, c.last_used)))
            .min_by_key(|(_, _, used)| *used)
            .map(|(k, i, _)| (k.clone(), i))?;
        let conn = self.idle.get_mut(&key)?.swap_remove(pos);
        self.idle_count -= 1;
        Some(conn)
    }

    /// Any idle connection, oldest partition entry first: room for another partition.
    pub(super) fn take_idle_any(&mut self) -> Option<BackendConn> {
        let key = self.idle.iter().find(|(_, v)| !v.is_empty())?.0.clone();
        let list = self.idle.get_mut(&key)?;
        let conn = list.remove(0);
        self.idle_count -= 1;
        Some(conn)
    }

    /// An idle connection whose slot may change hands: none while over the cap (it
    /// shrank), when slots must disappear instead.
    fn take_victim(&mut self) -> Option<BackendConn> {
        if self.cap.is_some_and(|cap| self.open <= cap) {
            self.take_idle_any()
        } else {
            None
        }
    }

    pub(super) fn has_slot(&self) -> bool {
        self.cap.is_some_and(|cap| self.open < cap)
    }
}

pub struct Pool {
    pub(super) target: Target,
    pub(super) settings: PoolSettings,
    pub(super) metrics: Arc<Metrics>,
    pub(super) state: Mutex<State>,
    /// Serialises reads of @@max_connections.
    pub(super) capacity_lock: tokio::sync::Mutex<()>,
    /// Where backend logins come from (static passwords or secrets).
    pub(super) credentials: Arc<Credentials>,
    /// The users capacity probes may log in as, in the order tried.
    pub(super) probe_users: Vec<Arc<str>>,
    /// See [`Pool::schema_generation`].
    schema_generation: AtomicU64,
}

impl Pool {
    pub fn new(
        target: Target,
        settings: PoolSettings,
        metrics: Arc<Metrics>,
        credentials: Arc<Credentials>,
        probe_users: Vec<Arc<str>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            target,
            settings,
            metrics,
            state: Mutex::new(State::default()),
            capacity_lock: tokio::sync::Mutex::new(()),
            credentials,
            probe_users,
            schema_generation: AtomicU64::new(0),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub fn cap(&self) -> Option<usize> {
        self.lock().cap
    }

    /// The backend's greeting status flags, once a connection has been made.
    pub fn server_status(&self) -> Option<u16> {
        self.lock().server_status
    }

    /// How many DDL statements Sluice has relayed: prepared statements are shared only
    /// within one generation.
    pub fn schema_generation(&self) -> u64 {
        self.schema_generation.load(Ordering::Relaxed)
    }

    /// A DDL statement ran.
    pub fn schema_changed(&self) {
        self.schema_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// The server's collations by handshake id, once the capacity probe read them.
    pub fn collations(&self) -> Option<Arc<Collations>> {
        self.lock().collations.clone()
    }

    /// MySQL or MariaDB, once a connection has been made (MySQL until then).
    pub fn flavor(&self) -> Flavor {
        self.lock()
            .server_version
            .as_deref()
            .map(Flavor::from_version)
            .unwrap_or_default()
    }

    /// The version string of the backend, once a connection has been made.
    pub fn server_version(&self) -> Option<Vec<u8>> {
        self.lock().server_version.clone()
    }

    /// Borrows a connection for `key`, waiting FIFO up to the borrow timeout.
    ///
    /// Not cancellation safe: a borrow dropped midway may lose the slot it was granted.
    /// Callers await it to the end (no `select!`, no outer timeout).
    pub async fn borrow(
        self: &Arc<Self>,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Result<Lease, BackendError> {
        let start = Instant::now();
        if self.cap().is_none() {
            self.ensure_capacity().await?;
        }
        let mut gone = Vec::new();
        let immediate = {
            let mut st = self.lock();
            // An idle connection the server has closed (its wait_timeout, which a client
            // may have lowered and Sluice replayed, or a restart) is never handed out.
            let taken = loop {
                match st.take_idle(key, schema, vars) {
                    Some(conn) if conn.server_gone() => gone.push(conn),
                    taken => break taken,
                }
            };
            let outcome = if let Some(conn) = taken {
                Ok(Grant::Conn(conn))
            } else if st.has_slot() {
                st.open += 1;
                Ok(Grant::Slot)
            } else if let Some(victim) = st.take_victim() {
                // The slot of an idle connection that does not fit (another partition,
                // or a schema this client must not see) changes hands.
                self.metrics
                    .database_connections_closed
                    .with_label_values(&["replaced"])
                    .inc();
                Ok(Grant::Replace(victim))
            } else {
                let id = st.next_waiter;
                st.next_waiter += 1;
                let (tx, rx) = oneshot::channel();
                st.waiters.push_back(Waiter {
                    id,
                    key: key.clone(),
                    schema_less: schema.is_none(),
                    tx,
                });
                Err((id, rx))
            };
            self.publish_locked(&st);
            outcome
        };
        for conn in gone {
            self.close(conn, "server_closed");
        }
        let grant = match immediate {
            Ok(grant) => grant,
            Err((id, rx)) => self.wait(id, rx).await?,
        };
        let conn = match grant {
            Grant::Conn(conn) => conn,
            Grant::Replace(_) | Grant::Slot => {
                if let Grant::Replace(old) = grant {
                    old.quit().await;
                }
                match self.open_conn(key, schema).await {
                    Ok(conn) => {
                        self.connected(&conn);
                        conn
                    }
                    Err(e) => {
                        self.metrics.database_connections_setup_failed.inc();
                        self.free_slot();
                        return Err(e);
                    }
                }
            }
        };
        self.metrics
            .borrow_duration
            .observe(start.elapsed().as_secs_f64());
        self.metrics.database_connections_borrowed.inc();
        Ok(Lease::new(conn, self.clone()))
    }

    /// Opens a backend connection for `key` with its user's current login. A refused
    /// password (1045) may mean the secret was rotated: the login is tried once more
    /// with a newer value (see Credentials::backend_refused).
    pub(super) async fn open_conn(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> Result<BackendConn, BackendError> {
        let login = self
            .credentials
            .backend_login(&key.user)
            .await
            .map_err(BackendError::Credentials)?;
        let baseline = self.baseline(key);
        let result =
            BackendConn::connect(&self.target, &login, key.clone(), schema, baseline.clone()).await;
        match result {
            Err(e) if e.server_code() == Some(1045) => {
                let Some(login) = self.credentials.backend_refused(&key.user, &login).await else {
                    return Err(e);
                };
                tracing::info!(user = %key.user, "backend refused the password; retrying with the secret's newer value");
                BackendConn::connect(&self.target, &login, key.clone(), schema, baseline).await
            }
            result => result,
        }
    }

    /// How many prepared statements one backend connection may keep open.
    pub fn statement_bound(&self) -> usize {
        self.lock()
            .statement_bound
            .unwrap_or(self.settings.max_prepared_statements)
    }

    /// The partition's baseline, when a connection of it has read one.
    pub(super) fn baseline(&self, key: &PartitionKey) -> Option<Arc<Variables>> {
        self.lock().baselines.get(key).cloned()
    }

    /// Notes what a newly opened connection learned about the server.
    pub(super) fn connected(&self, conn: &BackendConn) {
        self.metrics.database_connections_setup_succeeded.inc();
        let mut st = self.lock();
        st.server_version
            .get_or_insert_with(|| conn.server_version.clone());
        st.server_status = Some(conn.server_status);
        st.baselines
            .entry(conn.key.clone())
            .or_insert_with(|| conn.baseline.clone());
    }

    async fn wait(&self, id: u64, mut rx: oneshot::Receiver<Grant>) -> Result<Grant, BackendError> {
        match tokio::time::timeout(self.settings.borrow_timeout, &mut rx).await {
            Ok(Ok(grant)) => Ok(grant),
            _ => {
                let mut st = self.lock();
                st.waiters.retain(|w| w.id != id);
                drop(st);
                // A grant sent just before the deadline is still ours.
                match rx.try_recv() {
                    Ok(grant) => Ok(grant),
                    Err(_) => {
                        self.metrics.borrow_timeouts.inc();
                        Err(BackendError::BorrowTimeout)
                    }
                }
            }
        }
    }

    /// Returns a clean connection (no transaction, nothing pinned) for reuse.
    pub(super) fn put_back(self: &Arc<Self>, mut conn: BackendConn) {
        conn.last_used = Instant::now();
        let mut st = self.lock();
        self.metrics.database_connections_borrowed.dec();
        let expired = conn.created.elapsed() >= self.settings.max_lifetime;
        let over_cap = st.cap.is_some_and(|cap| st.open > cap);
        if expired || over_cap {
            drop(st);
            self.close(conn, if expired { "lifetime" } else { "cap" });
            return;
        }
        while let Some(w) = st.waiters.pop_front() {
            if w.fits(&conn) {
                match w.tx.send(Grant::Conn(conn)) {
                    Ok(()) => return,
                    Err(grant) => conn = grant.into_conn(),
                }
            } else {
                // Strict FIFO: the head waiter needs another partition, so this
                // connection's slot goes to it.
                match w.tx.send(Grant::Replace(conn)) {
                    Ok(()) => {
                        drop(st);
                        self.metrics
                            .database_connections_closed
                            .with_label_values(&["repartition"])
                            .inc();
                        return;
                    }
                    Err(grant) => conn = grant.into_conn(),
                }
            }
        }
        // Idle connections above max_idle are trimmed by the reaper, not here: closing
        // at once would churn connections through every burst.
        st.idle_count += 1;
        match st.idle.get_mut(&conn.key) {
            Some(list) => list.push(conn),
            None => {
                st.idle.insert(conn.key.clone(), vec![conn]);
            }
        }
        self.publish_locked(&st);
    }

    /// Closes a connection. Its slot is reused only once the server has let it go: a
    /// waiter gets the connection itself and quits it before opening its own; otherwise
    /// the slot is freed after COM_QUIT completes. So the server never counts more than
    /// the cap.
    pub(super) fn close(self: &Arc<Self>, mut conn: BackendConn, reason: &str) {
        self.metrics
            .database_connections_closed
            .with_label_values(&[reason])
            .inc();
        let mut st = self.lock();
        if st.cap.is_none_or(|cap| st.open <= cap) {
            while let Some(w) = st.waiters.pop_front() {
                match w.tx.send(Grant::Replace(conn)) {
                    Ok(()) => return,
                    Err(grant) => conn = grant.into_conn(),
                }
            }
        }
        drop(st);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let pool = self.clone();
                rt.spawn(async move {
                    conn.quit().await;
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

    pub(super) fn free_slot(&self) {
        let mut st = self.lock();
        // Over the cap (it shrank), the slot disappears instead of changing hands.
        if st.cap.is_none_or(|cap| st.open <= cap) {
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

    /// Updates the gauges from the pool state.
    pub(super) fn publish(&self) {
        self.publish_locked(&self.lock());
    }

    pub(super) fn publish_locked(&self, st: &State) {
        self.metrics.database_connections.set(st.open as i64);
        self.metrics
            .database_connections_idle
            .set(st.idle_count as i64);
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
                    if now - c.last_used >= idle_timeout || now - c.created >= lifetime {
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
        let drained: Vec<BackendConn> = {
            let mut st = self.lock();
            let all: Vec<_> = st.idle.drain().flat_map(|(_, v)| v).collect();
            st.idle_count = 0;
            st.open -= all.len();
            self.publish_locked(&st);
            all
        };
        let mut quits = tokio::task::JoinSet::new();
        for conn in drained {
            quits.spawn(conn.quit());
        }
        while quits.join_next().await.is_some() {}
    }
}

impl Grant {
    pub(super) fn into_conn(self) -> BackendConn {
        match self {
            Grant::Conn(c) | Grant::Replace(c) => c,
            Grant::Slot => unreachable!("only connection grants are turned back"),
        }
    }
}
