//! The pools `[backend]` and `[reader]` configure: the writer's, and the reader
//! endpoint's pool per replica. Nothing is connected yet.

use std::sync::Arc;

use super::ServerError;
use crate::backend::conn::Target;
use crate::backend::tls::BackendTls;
use crate::backend::topology::{Fallback, ReaderSettings, Readers};
use crate::backend::{MySqlConnector, Pool, PoolSettings};
use crate::config::{Config, ReaderFallback};
use crate::credentials::Credentials;
use crate::metrics::Metrics;

/// The backend pool, as `[backend]` configures it. Nothing is connected yet.
pub(super) fn backend_pool(
    config: &Config,
    credentials: &Arc<Credentials>,
    metrics: &Arc<Metrics>,
) -> Result<Arc<Pool>, ServerError> {
    let b = &config.backend;
    let mut instances = Vec::new();
    for address in b.instances() {
        // Each instance's certificate carries its own name, unless one is configured.
        let tls = match &b.tls {
            Some(t) => Some(BackendTls::from_config(t, crate::config::host_of(address))?),
            None => None,
        };
        instances.push(Target {
            address: address.clone(),
            tls,
            connect_timeout: b.connect_timeout.get(),
            init_query: b.init_query.clone(),
        });
    }
    let settings = pool_settings(config);
    // Static logins first: they need nothing from AWS.
    let mut probe_users: Vec<&crate::config::UserConfig> = config.users.iter().collect();
    probe_users.sort_by_key(|u| u.secret.is_some());
    let probe_users = probe_users
        .into_iter()
        .map(|u| Arc::from(u.name.as_str()))
        .collect();
    let connector = MySqlConnector::new(instances, credentials.clone(), probe_users);
    Ok(Pool::new(connector, settings, metrics.clone()))
}

/// The reader endpoint's pools, when `[reader]` is configured: each replica's with the
/// writer's pool settings (its cap from its own `max_connections`).
pub(super) fn reader_pools(
    config: &Config,
    writer: &Arc<Pool>,
    metrics: &Arc<Metrics>,
) -> Option<Arc<Readers>> {
    let reader = config.reader.as_ref()?;
    let settings = ReaderSettings {
        max_lag: reader.max_replica_lag.get(),
        fallback: match reader.fallback {
            ReaderFallback::Writer => Fallback::Writer,
            ReaderFallback::Refuse => Fallback::Refuse,
        },
    };
    let pool = pool_settings(config);
    Some(Readers::new(
        writer.clone(),
        &pool,
        settings,
        metrics.clone(),
    ))
}

fn pool_settings(config: &Config) -> PoolSettings {
    let b = &config.backend;
    PoolSettings {
        max_connections_percent: b.max_connections_percent,
        max_idle_connections_percent: b.max_idle_connections_percent(),
        borrow_timeout: b.connection_borrow_timeout.get(),
        max_lifetime: b.max_lifetime.get(),
        idle_timeout: b.idle_timeout.get(),
        max_prepared_statements: b.max_prepared_statements,
    }
}
