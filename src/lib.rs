//! Sluice: a MySQL connection-pooling and multiplexing proxy — an open-source answer to
//! Amazon RDS Proxy.
//!
//! # Lifecycle of a client connection
//!
//! ```text
//! accept ─► greeting (fresh scramble) ─► [SSLRequest ─► TLS] ─► HandshakeResponse
//!        ─► authenticate (native / caching_sha2 password, or an IAM token over TLS)
//!        ─► OK ─► command loop:
//!           read command ─► classify ─► lease a backend (or keep the pinned one)
//!           ─► sync schema ─► relay request ─► relay response, read status flags and
//!           session-track info ─► in transaction or pinned? keep : release to pool
//! ```
//!
//! # Layout
//!
//! - [`config`]: typed TOML configuration, validated once.
//! - [`server`]: listeners (the main one and the reader endpoint), accept loop, client
//!   limit, graceful drain.
//! - [`workers`]: thread-per-core runtimes that sessions are spread over.
//! - [`clock`]: every timer, made on the control runtime's timer wheel (workers have none).
//! - [`admin`]: HTTP `/metrics`, `/healthz`, `/readyz`.
//! - [`metrics`]: the one registry of every metric.
//! - [`protocol`]: MySQL wire format only, no I/O policy.
//! - [`frontend`]: one client session: handshake, TLS, auth, command loop, relay.
//! - [`auth`]: password plugins, and IAM auth tokens (`auth::iam`).
//! - [`backend`]: backend connections, the capped pool (generic over a `Connector`, so it
//!   is tested with fakes) and its leases, the cap from `@@max_connections`, backend TLS,
//!   and the topology: the instances, the writer among them, failover, and the reader
//!   endpoint's pool per replica.
//! - [`multiplex`]: pin reasons, SQL lexer and classifier, session-tracker reading.
//! - [`credentials`]: where passwords come from: the config, or Secrets Manager.
//! - [`net`], [`tls`]: plain-or-TLS streams and the `PacketStream` both sides read and
//!   write packets through, PEM loading.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod backend;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod frontend;
pub mod metrics;
pub mod multiplex;
pub mod net;
pub mod protocol;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod workers;

/// Checks what `--check-config` checks beyond parsing: the TLS files load.
pub fn check(config: &config::Config) -> Result<(), config::ConfigError> {
    let invalid = |e: tls::TlsError| config::ConfigError::Invalid(e.to_string());
    if let Some(t) = &config.server.tls {
        tls::server_config(t).map_err(invalid)?;
    }
    if let Some(t) = &config.backend.tls {
        for address in config.backend.instances() {
            backend::tls::BackendTls::from_config(t, config::host_of(address)).map_err(invalid)?;
        }
    }
    Ok(())
}
