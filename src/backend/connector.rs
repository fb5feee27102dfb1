//! The pool's connections are MySQL (or MariaDB) connections: this opens them with each
//! user's current login, resets and closes them, reads the server's limits, and keeps
//! what connections have taught Sluice about the server (its version, its greeting's
//! status, each partition's baseline session, its collations).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::conn::{BackendConn, Target};
use super::partition::PartitionKey;
use super::pool::{Connector, ServerLimits};
use super::topology::Topology;
use super::{BackendError, ConnectionError};
use crate::credentials::Credentials;
use crate::credentials::CredentialsError;
use crate::multiplex::handshake_state::{Collations, COLLATIONS_QUERY};
use crate::multiplex::Variables;
use crate::protocol::flavor::Flavor;

pub struct MySqlConnector {
    /// The instances, shared by the writer's pool and the reader endpoint's.
    topology: Arc<Topology>,
    /// Which of them this connector's connections go to.
    route: Route,
    /// Where backend logins come from (static passwords or secrets).
    credentials: Arc<Credentials>,
    /// The users capacity probes may log in as, in the order tried.
    probe_users: Vec<Arc<str>>,
    learned: Mutex<Learned>,
    /// See [`MySqlConnector::schema_generation`].
    schema_generation: AtomicU64,
    /// The sum of the server's DDL counters at the last look (`ddl_watch`).
    ddl_seen: Mutex<Option<u64>>,
}

/// Where new connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// To the writer, whichever instance it is now.
    Writer,
    /// To this instance, while it serves reads (a reader endpoint's pool).
    Replica(usize),
}

/// What connections have taught Sluice about the server.
#[derive(Default)]
struct Learned {
    server_version: Option<Vec<u8>>,
    /// Status flags of the backend's greeting (e.g. NO_BACKSLASH_ESCAPES from sql_mode).
    server_status: Option<u16>,
    /// Each partition's baseline session variables, read by its first connection.
    baselines: HashMap<PartitionKey, Arc<Variables>>,
    /// The server's collations, read by the first capacity probe.
    collations: Option<Arc<Collations>>,
}

impl MySqlConnector {
    /// `instances`: one target per configured instance (at least one).
    pub fn new(
        instances: Vec<Target>,
        credentials: Arc<Credentials>,
        probe_users: Vec<Arc<str>>,
    ) -> Self {
        assert!(!instances.is_empty(), "the configuration names an instance");
        Self::routed(
            Arc::new(Topology::new(instances)),
            Route::Writer,
            credentials,
            probe_users,
        )
    }

    fn routed(
        topology: Arc<Topology>,
        route: Route,
        credentials: Arc<Credentials>,
        probe_users: Vec<Arc<str>>,
    ) -> Self {
        Self {
            topology,
            route,
            credentials,
            probe_users,
            learned: Mutex::default(),
            schema_generation: AtomicU64::new(0),
            ddl_seen: Mutex::new(None),
        }
    }

    /// A connector of the same instances and logins whose connections go to
    /// `instance` while it serves reads: the reader endpoint's pool of that replica.
    /// What it learns (each partition's baseline) is that server's own.
    pub fn replica(&self, instance: usize) -> Self {
        Self::routed(
            self.topology.clone(),
            Route::Replica(instance),
            self.credentials.clone(),
            self.probe_users.clone(),
        )
    }

    /// Where a new connection goes now, with the generation it belongs to: with no
    /// writer, a refusal (borrowers wait for one); a replica that does not serve reads
    /// now, a failure (the reader endpoint tries another).
    fn destination(&self) -> Result<(&Target, u64), ConnectionError> {
        match self.route {
            Route::Writer => self.topology.writer().ok_or(ConnectionError::NoWriter),
            Route::Replica(i) => self.topology.replica(i).ok_or(ConnectionError::ReplicaOut),
        }
    }

    /// The settings every instance shares (connect timeout, init_query, TLS trust):
    /// the first instance's target.
    pub fn target(&self) -> &Target {
        &self.topology.instances()[0]
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The server changed: what the old one taught about sessions (each partition's
    /// baseline) is learned again from the new one's first connections.
    pub(super) fn forget_baselines(&self) {
        self.learned.lock().baselines.clear();
    }

    /// The backend's greeting status flags, once a connection has been made.
    pub fn server_status(&self) -> Option<u16> {
        self.learned.lock().server_status
    }

    /// The version string of the backend, once a connection has been made.
    pub fn server_version(&self) -> Option<Vec<u8>> {
        self.learned.lock().server_version.clone()
    }

    /// MySQL or MariaDB, once a connection has been made (MySQL until then).
    pub fn flavor(&self) -> Flavor {
        self.learned
            .lock()
            .server_version
            .as_deref()
            .map(Flavor::from_version)
            .unwrap_or_default()
    }

    /// The server's collations by handshake id, once the capacity probe read them.
    pub fn collations(&self) -> Option<Arc<Collations>> {
        self.learned.lock().collations.clone()
    }

    /// How many times the schema changed (DDL relayed by Sluice, or seen by the DDL
    /// watch): prepared statements are shared only within one generation.
    pub fn schema_generation(&self) -> u64 {
        self.schema_generation.load(Ordering::Relaxed)
    }

    /// A DDL statement ran.
    pub fn schema_changed(&self) {
        self.schema_generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes the sum of the server's DDL counters; true when it differs from the last
    /// one seen.
    pub(super) fn ddl_total_changed(&self, total: u64) -> bool {
        self.ddl_seen
            .lock()
            .replace(total)
            .is_some_and(|before| before != total)
    }

    /// Opens a connection for `key` where this connector's connections go (see
    /// `destination`), of that instance's current generation.
    async fn open(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> Result<BackendConn, BackendError> {
        let (target, generation) = self.destination()?;
        let mut conn = self.open_at(target, key, schema).await?;
        conn.set_generation(generation);
        Ok(conn)
    }

    /// Opens a backend connection to `target` for `key` with its user's current login.
    /// A refused password (1045) may mean the secret was rotated: the login is tried
    /// once more with a newer value (see Credentials::backend_refused).
    async fn open_at(
        &self,
        target: &Target,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> Result<BackendConn, BackendError> {
        let login = self
            .credentials
            .backend_login(&key.user)
            .await
            .map_err(BackendError::Credentials)?;
        let baseline = self.learned.lock().baselines.get(key).cloned();
        let result =
            BackendConn::connect(target, &login, key.clone(), schema, baseline.clone()).await;
        let conn = match result {
            Err(e) if e.server_code() == Some(1045) => {
                let Some(login) = self.credentials.backend_refused(&key.user, &login).await else {
                    return Err(e.into());
                };
                tracing::info!(user = %key.user, "backend refused the password; retrying with the secret's newer value");
                BackendConn::connect(target, &login, key.clone(), schema, baseline).await?
            }
            result => result?,
        };
        let mut learned = self.learned.lock();
        learned
            .server_version
            .get_or_insert_with(|| conn.server_version().to_vec());
        learned.server_status = Some(conn.server_status());
        learned
            .baselines
            .entry(conn.key().clone())
            .or_insert_with(|| conn.baseline().clone());
        Ok(conn)
    }

    /// A connection to `target` as any user: the capacity probe's and the topology
    /// monitor's. Any user will do, so one whose login cannot be had (its secret
    /// unreadable, its password refused) does not keep every user's pool from starting.
    /// Static logins come first.
    pub(super) async fn connect_probe_at(
        &self,
        target: &Target,
    ) -> Result<Box<BackendConn>, BackendError> {
        let mut last: BackendError =
            CredentialsError::UnknownUser("(no users configured)".into()).into();
        for user in &self.probe_users {
            let key = PartitionKey {
                user: user.clone(),
                flags: 0,
            };
            match self.open_at(target, &key, None).await {
                Ok(c) => return Ok(Box::new(c)),
                Err(
                    e @ (BackendError::Credentials(_)
                    | BackendError::Connection(ConnectionError::Server { .. })),
                ) => last = e,
                // The server itself is unreachable: another user will not help.
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// The server's collations, read once (clients' handshake character sets map to
    /// them). Without them those fall back to the server's default until a later probe.
    async fn learn_collations(&self, conn: &mut BackendConn) {
        if self.learned.lock().collations.is_some() {
            return;
        }
        match conn.query(COLLATIONS_QUERY).await {
            Ok(rows) => {
                let collations = Collations::from_rows(rows.iter().filter_map(|r| {
                    Some([
                        r.first()?.as_deref()?,
                        r.get(1)?.as_deref()?,
                        r.get(2)?.as_deref()?,
                    ])
                }));
                self.learned.lock().collations = Some(Arc::new(collations));
            }
            Err(e) => tracing::warn!(error = %e, "reading the server's collations failed"),
        }
    }
}

impl Connector for MySqlConnector {
    /// Boxed: a connection (its buffers, statements and state) is several hundred bytes,
    /// and it changes hands on every statement.
    type Conn = Box<BackendConn>;

    async fn connect(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
    ) -> Result<Box<BackendConn>, BackendError> {
        self.open(key, schema).await.map(Box::new)
    }

    /// Where this connector's connections go (see `connect_probe_at`).
    async fn connect_probe(&self) -> Result<Box<BackendConn>, BackendError> {
        let (target, generation) = self.destination()?;
        let mut conn = self.connect_probe_at(target).await?;
        conn.set_generation(generation);
        Ok(conn)
    }

    async fn probe(&self, conn: &mut Box<BackendConn>) -> Result<ServerLimits, BackendError> {
        let rows = conn
            .query("SELECT @@max_connections, @@max_prepared_stmt_count")
            .await?;
        let column = |i: usize| {
            rows.first()
                .and_then(|r| r.get(i).cloned().flatten())
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<usize>().ok())
        };
        let limits = ServerLimits {
            max_connections: column(0).unwrap_or(1),
            max_prepared_statements: column(1),
        };
        self.learn_collations(conn).await;
        Ok(limits)
    }

    async fn reset(&self, conn: &mut Box<BackendConn>) -> Result<(), BackendError> {
        Ok(conn.reset(self.target()).await?)
    }

    async fn quit(conn: Box<BackendConn>) {
        conn.quit().await
    }

    fn timeout(&self) -> Duration {
        self.target().connect_timeout
    }

    fn generation(&self) -> u64 {
        match self.route {
            Route::Writer => self.topology.generation(),
            Route::Replica(i) => self.topology.reading_generation(i),
        }
    }
}
