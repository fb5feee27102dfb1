//! Client side: one session per client connection — handshake, TLS upgrade,
//! authentication, then the command loop that relays commands to leased backends.

pub mod admission;
pub mod authenticate;
mod backend_hold;
pub mod change_user;
mod command_loop;
mod continuation;
mod dispatch;
mod endpoint;
pub mod error;
mod execute;
pub mod handshake;
mod query;
pub mod relay;
mod replay;
mod replies;
mod schema_check;
mod scope_reads;
pub mod session;
pub mod set_option;
mod simple;
pub mod statements;
mod stmt_bind;
mod stmt_commands;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::iam::IamVerifier;
use crate::auth::throttle::{LoginThrottle, ThrottleSettings};
use crate::backend::topology::Readers;
use crate::backend::Pool;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::metrics::Metrics;
use admission::{Admission, Handshaking};

pub use endpoint::Endpoint;
pub use error::FrontendError;

/// Everything client sessions share, built once by the server.
pub struct Context {
    pub config: Arc<Config>,
    pub credentials: Arc<Credentials>,
    /// Checks IAM auth tokens; None when no `[iam]` is configured.
    pub iam: Option<Arc<IamVerifier>>,
    pub pool: Arc<Pool>,
    /// The reader endpoint's pools; None when no `[reader]` is configured.
    pub readers: Option<Arc<Readers>>,
    pub metrics: Arc<Metrics>,
    pub tls: Option<TlsAcceptor>,
    /// Flips to true when the server starts draining.
    pub shutdown: watch::Receiver<bool>,
    /// Failed logins per address and user: delays and temporary refusals.
    pub throttle: LoginThrottle,
    /// Default schemas recently found usable at login, per user.
    schema_checks: schema_check::SchemaChecks,
    next_connection_id: AtomicU32,
    /// Users who completed caching_sha2_password full authentication (MySQL's cache):
    /// later logins of theirs take the fast path.
    sha2_verified: Mutex<HashSet<Vec<u8>>>,
}

impl Context {
    pub fn new(
        config: Arc<Config>,
        credentials: Arc<Credentials>,
        iam: Option<Arc<IamVerifier>>,
        pool: Arc<Pool>,
        metrics: Arc<Metrics>,
        tls: Option<TlsAcceptor>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let t = &config.server.login_throttle;
        let throttle = LoginThrottle::new(ThrottleSettings {
            delay_after: t.delay_after,
            max_delay: t.max_delay.get(),
            block_after: t.block_after,
            block_for: t.block_seconds.get(),
            window: t.window.get(),
            exempt: t.exempt_addresses.clone(),
        });
        Self {
            throttle,
            schema_checks: Default::default(),
            config,
            credentials,
            iam,
            pool,
            readers: None,
            metrics,
            tls,
            shutdown,
            next_connection_id: AtomicU32::new(1),
            sha2_verified: Mutex::new(HashSet::new()),
        }
    }

    /// Serves the reader endpoint's sessions from `readers`.
    pub fn with_readers(mut self, readers: Option<Arc<Readers>>) -> Self {
        self.readers = readers;
        self
    }

    fn setup_failed(&self, reason: &str) {
        self.metrics
            .client_connections_setup_failed
            .with_label_values(&[reason])
            .inc();
    }

    fn connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Serves one client connection of `endpoint` to the end: its handshake (holding `handshaking`, its
/// handshake slot, until it ends), then, with a client slot from `admission`, its
/// session. Errors are logged and counted here.
pub async fn serve(
    ctx: Arc<Context>,
    tcp: TcpStream,
    peer: SocketAddr,
    handshaking: Handshaking,
    admission: Arc<Admission>,
    endpoint: Endpoint,
) {
    ctx.metrics.client_connections_received.inc();
    let _ = tcp.set_nodelay(true);
    let id = ctx.connection_id();
    let timeout = ctx.config.server.handshake_timeout.get();
    // Boxed, and freed once the client is in: the connection's future then holds only
    // the session.
    // The handshake slot lives in the (boxed) handshake's future and goes with it.
    let handshake = Box::pin({
        let ctx = ctx.clone();
        async move {
            let _slot = handshaking;
            handshake::handshake(&ctx, tcp, peer, id, &admission, endpoint).await
        }
    });
    let outcome = crate::clock::timeout(timeout, handshake).await;
    let (client, _slot) = match outcome {
        Ok(Ok(logged_in)) => logged_in,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "client setup failed");
            return ctx.setup_failed(e.reason());
        }
        Err(_) => {
            tracing::debug!(%peer, "client handshake timed out");
            return ctx.setup_failed("timeout");
        }
    };
    let tls = if client.io.is_tls() { "true" } else { "false" };
    ctx.metrics
        .client_connections_setup_succeeded
        .with_label_values(&[tls])
        .inc();
    let gauge = ctx.metrics.client_connections.with_label_values(&[tls]);
    gauge.inc();
    if let Err(e) = session::Session::new(&ctx, client).run().await {
        tracing::debug!(%peer, error = %e, "client session ended with an error");
    }
    gauge.dec();
}

#[cfg(test)]
#[path = "size_tests.rs"]
mod size_tests;
