//! The client listeners (the main one, and the reader endpoint's): accept loop, client
//! limit, graceful drain. Owns the shared state.

mod pools;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::iam::IamVerifier;
use crate::backend::topology::Monitor;
use crate::config::Config;
use crate::credentials::secrets::SecretStore;
use crate::credentials::Credentials;
use crate::frontend::admission::{Admission, Crowded};
use crate::frontend::{self, Context, Endpoint};
use crate::metrics::Metrics;
use crate::protocol::errors::ErrorPacket;
use crate::tls::TlsError;
use crate::workers::Workers;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A bound, ready-to-run proxy.
pub struct Server {
    listener: TcpListener,
    /// The reader endpoint's listener, when `[reader]` is configured.
    reader: Option<TcpListener>,
    admin: Option<TcpListener>,
    ctx: Arc<Context>,
    shutdown: watch::Sender<bool>,
    workers: Arc<Workers>,
}

impl Server {
    /// Binds the listeners and builds the pool; reads the backend's capacity once (a
    /// backend that is down is retried in the background, not fatal).
    pub async fn bind(config: Arc<Config>) -> Result<Self, ServerError> {
        let metrics = Arc::new(Metrics::new());
        let secrets = secret_store(&config, &metrics).await;
        let credentials = Arc::new(Credentials::new(
            &config.users,
            secrets.clone(),
            config.aws.previous_password_grace.get(),
        ));
        let pool = pools::backend_pool(&config, &credentials, &metrics)?;
        let readers = pools::reader_pools(&config, &pool, &metrics);
        let iam = config.iam.as_ref().map(|c| {
            let timeout = config.aws.request_timeout.get();
            Arc::new(IamVerifier::new(
                c,
                secrets.clone(),
                pool.clone(),
                timeout,
                metrics.clone(),
            ))
        });
        let client_tls = match &config.server.tls {
            Some(t) => Some(TlsAcceptor::from(crate::tls::server_config(t)?)),
            None => None,
        };
        let listener = listen(config.server.listen, config.server.listen_backlog)?;
        let reader = match &config.reader {
            Some(r) => Some(listen(r.listen, config.server.listen_backlog)?),
            None => None,
        };
        let admin = match config.admin.listen {
            Some(addr) => Some(listen(addr, 128)?),
            None => None,
        };
        // The writer is known before the first client arrives (of several instances,
        // none is used until a look has found the writable one).
        let mut topology = Monitor::new(pool.clone(), config.backend.health_check_timeout.get());
        if let Some(readers) = &readers {
            topology = topology.with_readers(readers.clone());
        }
        topology.round().await;
        match pool.refresh_capacity().await {
            Ok(cap) => tracing::info!(cap, "backend pool cap"),
            Err(e) => tracing::warn!(error = %e, "backend not reachable yet; will retry"),
        }
        let refresh = config.backend.capacity_refresh_interval.get();
        tokio::spawn(pool.clone().maintain(refresh));
        if let Some(readers) = &readers {
            tokio::spawn(readers.clone().maintain(refresh));
        }
        let backend = &config.backend;
        tokio::spawn(topology.run(backend.monitor_interval.get()));
        tokio::spawn(pool.clone().monitor(
            backend.health_check_interval.get(),
            backend.health_check_timeout.get(),
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let ctx = Arc::new(
            Context::new(
                config,
                credentials,
                iam,
                pool,
                metrics,
                client_tls,
                shutdown_rx,
            )
            .with_readers(readers),
        );
        Ok(Self {
            listener,
            reader,
            admin,
            ctx,
            shutdown,
            workers: Arc::default(),
        })
    }

    /// Runs client sessions on these workers instead of the caller's runtime.
    pub fn with_workers(mut self, workers: Arc<Workers>) -> Self {
        self.workers = workers;
        self
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The reader endpoint's address, when one is configured.
    pub fn reader_addr(&self) -> Option<SocketAddr> {
        self.reader.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `stop` completes, then drains: no new clients, open transactions get
    /// `drain_timeout` to finish, then everything closes.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let ctx = self.ctx.clone();
        if let Some(admin) = self.admin.take() {
            tokio::spawn(crate::admin::serve(
                admin,
                ctx.metrics.clone(),
                ctx.pool.clone(),
            ));
        }
        let server = &ctx.config.server;
        let admission = Admission::new(
            server.max_handshakes,
            server.max_handshakes_per_address,
            server.max_client_connections,
            ctx.metrics.clone(),
        );
        tracing::info!(listen = %self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "accepting clients");
        let reader = self.reader.take();
        if let Some(r) = &reader {
            tracing::info!(listen = %r.local_addr().map(|a| a.to_string()).unwrap_or_default(), "accepting reader clients");
        }
        tokio::pin!(stop);
        loop {
            let (accepted, endpoint) = tokio::select! {
                accepted = self.listener.accept() => (accepted, Endpoint::Writer),
                accepted = accept_on(reader.as_ref()) => (accepted, Endpoint::Reader),
                () = &mut stop => break,
            };
            match accepted {
                Ok((tcp, peer)) => self.admit(&ctx, &admission, tcp, peer, endpoint),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    crate::clock::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        }
        tracing::info!("draining client sessions");
        drop(self.listener);
        drop(reader);
        let _ = self.shutdown.send(true);
        let drain = ctx.config.server.drain_timeout.get();
        if crate::clock::timeout(drain, admission.all_clients_gone())
            .await
            .is_err()
        {
            tracing::warn!("drain timeout reached; closing remaining sessions");
        }
        ctx.pool.close_idle().await;
        if let Some(readers) = &ctx.readers {
            readers.close_idle().await;
        }
    }

    /// A client accepted: its handshake and session run on a worker, or, when too many
    /// connections are logging in (in all or from its address), it is refused with 1040.
    fn admit(
        &self,
        ctx: &Arc<Context>,
        admission: &Arc<Admission>,
        tcp: TcpStream,
        peer: SocketAddr,
        endpoint: Endpoint,
    ) {
        let handshaking = match admission.begin_handshake(peer.ip()) {
            Ok(h) => h,
            Err(crowded) => {
                ctx.metrics.client_connections_received.inc();
                ctx.metrics
                    .client_connections_setup_failed
                    .with_label_values(&[crowded.reason()])
                    .inc();
                let e = match crowded {
                    Crowded::Handshakes => ErrorPacket::too_many_handshakes(),
                    Crowded::Address => {
                        ErrorPacket::too_many_handshakes_from(&peer.ip().to_string())
                    }
                };
                tokio::spawn(refuse(tcp, e));
                return;
            }
        };
        // The socket moves to the worker unregistered and registers with that worker's
        // reactor: its readiness events then wake the thread that runs the session, not
        // this one.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand a client to a worker");
                return;
            }
        };
        let ctx = ctx.clone();
        let admission = admission.clone();
        self.workers.spawn(async move {
            match TcpStream::from_std(tcp) {
                Ok(tcp) => frontend::serve(ctx, tcp, peer, handshaking, admission, endpoint).await,
                Err(e) => tracing::warn!(error = %e, "cannot register a client socket"),
            }
        });
    }
}

/// The secret store, when a user's password or the IAM keys live in Secrets Manager.
/// The AWS SDK is loaded once, only then; nothing is fetched yet (an unreachable Secrets
/// Manager must not stop Sluice from starting).
async fn secret_store(config: &Config, metrics: &Arc<Metrics>) -> Option<Arc<SecretStore>> {
    let needs_aws = Credentials::needs_secrets(&config.users)
        || config.iam.as_ref().is_some_and(|i| i.keys_secret.is_some());
    if !needs_aws {
        return None;
    }
    let store = Arc::new(SecretStore::load(&config.aws, metrics.clone()).await);
    let every = config.aws.secret_refresh_interval.get();
    tokio::spawn(refresh_secrets(store.clone(), every));
    Some(store)
}

/// Re-reads every secret in use on an interval, so rotations are picked up before a
/// password stops working.
async fn refresh_secrets(store: Arc<SecretStore>, every: std::time::Duration) {
    let mut tick = crate::clock::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        store.refresh_all().await;
    }
}

/// Greets a client over a limit with its error (1040), as MySQL does, and closes.
/// Bounded: a peer that reads nothing cannot keep this task.
async fn refuse(mut tcp: TcpStream, e: ErrorPacket) {
    let bye = async {
        let _ = tcp.write_all(&e.encode(0)).await;
        let _ = tcp.shutdown().await;
    };
    let _ = crate::clock::timeout(std::time::Duration::from_secs(1), bye).await;
}

/// The next client of `listener`; never, without one.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

fn listen(addr: SocketAddr, backlog: u32) -> Result<TcpListener, ServerError> {
    let bind = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(backlog)
    };
    bind().map_err(|e| ServerError::Bind(addr, e))
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
