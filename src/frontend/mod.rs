//! Client side: one session per client connection — handshake, TLS upgrade,
//! authentication, then the command loop that relays commands to leased backends.

pub mod authenticate;
mod backend_hold;
pub mod change_user;
mod command_loop;
mod continuation;
mod dispatch;
pub mod error;
mod execute;
pub mod handshake;
mod query;
pub mod relay;
mod replay;
mod replies;
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
use crate::backend::Pool;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::metrics::Metrics;

pub use error::FrontendError;

/// Everything client sessions share, built once by the server.
pub struct Context {
    pub config: Arc<Config>,
    pub credentials: Arc<Credentials>,
    /// Checks IAM auth tokens; None when no `[iam]` is configured.
    pub iam: Option<Arc<IamVerifier>>,
    pub pool: Arc<Pool>,
    pub metrics: Arc<Metrics>,
    pub tls: Option<TlsAcceptor>,
    /// Flips to true when the server starts draining.
    pub shutdown: watch::Receiver<bool>,
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
        Self {
            config,
            credentials,
            iam,
            pool,
            metrics,
            tls,
            shutdown,
            next_connection_id: AtomicU32::new(1),
            sha2_verified: Mutex::new(HashSet::new()),
        }
    }

    fn connection_id(&self) -> u32 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Serves one client connection to the end. Errors are logged and counted here.
pub async fn serve(ctx: Arc<Context>, tcp: TcpStream, peer: SocketAddr) {
    ctx.metrics.client_connections_received.inc();
    let _ = tcp.set_nodelay(true);
    let id = ctx.connection_id();
    let timeout = ctx.config.server.handshake_timeout.get();
    // Boxed, and freed once the client is in: the connection's future then holds only
    // the session.
    let handshake = Box::pin(handshake::handshake(&ctx, tcp, peer, id));
    let client = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "client setup failed");
            ctx.metrics
                .client_connections_setup_failed
                .with_label_values(&[e.reason()])
                .inc();
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "client handshake timed out");
            ctx.metrics
                .client_connections_setup_failed
                .with_label_values(&["timeout"])
                .inc();
            return;
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
