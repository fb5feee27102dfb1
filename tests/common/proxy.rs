//! Sluice running in-process on free ports, configured per test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice::config::Config;
use sluice::server::Server;
use sluice::workers::Workers;
use tokio::sync::oneshot;

use super::{TestDb, APP_PASSWORD, APP_USER};

pub struct Proxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The reader endpoint, when the configuration has one.
    pub reader: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Dropped last: its threads end, cancelling the sessions still on them.
    _workers: Arc<Workers>,
}

/// The base configuration for a test: the given backend, user app, the knobs in `extra`
/// (TOML appended to the [backend] table, or whole tables).
pub fn config_for(db: &TestDb, backend_extra: &str, tables: &str) -> String {
    let address = format!("address = \"{}\"", db.address());
    config_with_backend(&address, backend_extra, tables)
}

/// As [`config_for`], for a backend of several instances.
pub fn config_for_instances(dbs: &[&TestDb], backend_extra: &str, tables: &str) -> String {
    let list: Vec<String> = dbs
        .iter()
        .map(|db| format!("\"{}\"", db.address()))
        .collect();
    let instances = format!("instances = [{}]", list.join(", "));
    config_with_backend(&instances, backend_extra, tables)
}

/// The test configuration with `where_` (the backend's `address` or `instances` line).
pub fn config_with_backend(where_: &str, backend_extra: &str, tables: &str) -> String {
    let mut backend = backend_extra.to_string();
    for (key, default) in [
        ("max_connections_percent", "70"),
        ("connection_borrow_timeout", "60"),
    ] {
        if !backend.contains(key) {
            backend.push_str(&format!("\n{key} = {default}"));
        }
    }
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nhandshake_timeout = 5\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [backend]\n{where_}\n{backend}\n\
         [[users]]\nname = \"{APP_USER}\"\npassword = \"{APP_PASSWORD}\"\n{tables}\n"
    )
}

/// `SLUICE_TEST_LOG=debug` (any `tracing` filter) prints the proxy's log to stderr, for
/// a test that fails in a way its assertions do not explain.
fn init_log() {
    if let Ok(filter) = std::env::var("SLUICE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
}

impl Proxy {
    pub async fn start(config_toml: &str) -> Self {
        init_log();
        let config = Arc::new(Config::parse(config_toml).expect("test config is valid"));
        // Sessions run on worker threads without a time driver, as in the daemon, with
        // this test's runtime as their control runtime.
        let threads = config.server.worker_threads.unwrap_or(2);
        let workers = Arc::new(
            Workers::start(tokio::runtime::Handle::current(), threads).expect("workers start"),
        );
        let server = Server::bind(config)
            .await
            .expect("sluice binds")
            .with_workers(workers.clone());
        let addr = server.local_addr();
        let admin = server.admin_addr().expect("admin listener");
        let reader = server.reader_addr();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            admin,
            reader,
            stop: Some(tx),
            task: Some(task),
            _workers: workers,
        }
    }

    pub async fn for_db(db: &TestDb) -> Self {
        Self::start(&config_for(db, "", "")).await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// mysql_async options for user app through Sluice.
    pub fn opts(&self) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port())
            .user(Some(APP_USER))
            .pass(Some(APP_PASSWORD))
            .db_name(Some("shop"))
            .prefer_socket(false)
    }

    /// As [`Proxy::opts`], to the reader endpoint.
    pub fn reader_opts(&self) -> mysql_async::OptsBuilder {
        let reader = self.reader.expect("a reader endpoint is configured");
        self.opts().tcp_port(reader.port())
    }

    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::new(self.opts())
            .await
            .expect("connect through sluice")
    }

    /// Scrapes /metrics from the real admin endpoint.
    pub async fn metrics(&self) -> String {
        super::metrics::scrape(self.admin).await
    }

    /// The value of one sample in /metrics (0 when absent).
    pub async fn metric(&self, name_with_labels: &str) -> f64 {
        super::metrics::sample(&self.metrics().await, name_with_labels)
    }

    /// The sample once `wanted` holds for it, or its value after `within`: for a count
    /// a session makes after its client has seen the outcome (sessions run on their own
    /// threads), or a state the proxy reaches in its own time.
    pub async fn metric_until(
        &self,
        name_with_labels: &str,
        within: Duration,
        wanted: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = std::time::Instant::now() + within;
        loop {
            let now = self.metric(name_with_labels).await;
            if wanted(now) || std::time::Instant::now() > deadline {
                return now;
            }
            sluice::clock::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The sample once it is `want`, or its value after 5 s.
    pub async fn metric_reaches(&self, name_with_labels: &str, want: f64) -> f64 {
        let within = Duration::from_secs(5);
        self.metric_until(name_with_labels, within, |now| now == want)
            .await
    }

    /// Polls /readyz until it answers `code`, within `within`; the body it answered.
    pub async fn readyz_becomes(&self, code: u16, within: Duration) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (now, body) = super::metrics::get(self.admin, "/readyz").await;
            if now == code {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/readyz still {now} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Pins of every reason, and the /metrics text they were read from.
    pub async fn pins_total(&self) -> (f64, String) {
        let text = self.metrics().await;
        (super::metrics::pins(&text), text)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
