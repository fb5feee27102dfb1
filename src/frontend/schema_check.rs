//! The default schema a client names at login (or in COM_CHANGE_USER) is checked then,
//! as the server checks it: one the user may not use gets the server's 1044, one that
//! does not exist 1049, in place of the login's OK; the client never gets a session
//! that silently has no schema.
//!
//! The check runs on a pooled backend connection of the client's partition (nothing to
//! do when it already has that schema, else COM_INIT_DB; a connection opened for it
//! logs in naming the schema, and the server may refuse that login instead). A schema
//! found usable is remembered for a minute, so a storm of logins naming it costs one
//! check. Before Sluice has reached the database at all, or when no backend connection
//! can be had within a second (the pool busy, the database down), the login goes on
//! unchecked: the first statement reports any problem, as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

use super::Context;
use crate::backend::conn::Internal;
use crate::backend::{BackendError, ConnectionError, PartitionKey};
use crate::multiplex::Variables;
use crate::protocol::errors::ErrorPacket;

/// How long a schema found usable by a user is taken as usable without asking again.
const REMEMBER: Duration = Duration::from_secs(60);
/// How long a login waits for a backend connection to check its schema on.
const CHECK_WITHIN: Duration = Duration::from_secs(1);
/// (user, schema) pairs remembered at most.
const REMEMBERED: usize = 4096;

/// A user and a schema name.
type UserSchema = (Arc<str>, Box<[u8]>);

/// Schemas recently found usable, per user: when each was.
pub struct SchemaChecks {
    usable: Mutex<LruCache<UserSchema, Instant>>,
}

impl Default for SchemaChecks {
    fn default() -> Self {
        let cap = std::num::NonZeroUsize::new(REMEMBERED).expect("a positive constant");
        Self {
            usable: Mutex::new(LruCache::new(cap)),
        }
    }
}

impl SchemaChecks {
    fn known_usable(&self, user: &Arc<str>, schema: &[u8], now: Instant) -> bool {
        let key = (user.clone(), Box::from(schema));
        self.usable
            .lock()
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(*at) < REMEMBER)
    }

    fn usable(&self, user: &Arc<str>, schema: &[u8], now: Instant) {
        self.usable
            .lock()
            .put((user.clone(), Box::from(schema)), now);
    }
}

/// The server's refusal of `schema` for clients of `key`, if it refuses it.
pub(super) async fn schema_refusal(
    ctx: &Context,
    key: &PartitionKey,
    schema: &[u8],
) -> Option<ErrorPacket> {
    // Before Sluice has reached the database at all the login does not try to: its
    // failure would stand in for the real one (a refused certificate, say) that the
    // first statement then reports.
    let now = Instant::now();
    if ctx.pool.cap().is_none() || ctx.schema_checks.known_usable(&key.user, schema, now) {
        return None;
    }
    let vars = Variables::default();
    let borrowed = crate::clock::timeout(CHECK_WITHIN, ctx.pool.borrow(key, Some(schema), &vars));
    let mut lease = match borrowed.await {
        Ok(Ok(lease)) => lease,
        // A new backend connection logs in with the schema: the server may refuse the
        // login for it.
        Ok(Err(BackendError::Connection(e))) if refuses_schema(&e) => return refusal(e),
        _ => {
            tracing::debug!(user = %key.user, "default schema not checked at login: no backend connection");
            return None;
        }
    };
    let conn = lease.conn();
    if conn.schema().is(Some(schema)) {
        lease.release();
        ctx.schema_checks.usable(&key.user, schema, Instant::now());
        return None;
    }
    let outcome = match conn.pipeline(&[Internal::InitDb(schema)]).await {
        Ok(mut results) => results.pop(),
        // The connection failed, not the schema: closed (the lease's drop), unchecked.
        Err(_) => return None,
    };
    match outcome {
        Some(Ok(_)) => {
            lease.release();
            ctx.schema_checks.usable(&key.user, schema, Instant::now());
            None
        }
        Some(Err(e)) if refuses_schema(&e) => {
            // The server refused: the connection is as it was.
            lease.release();
            refusal(e)
        }
        _ => None,
    }
}

/// The server's errors for a schema: no access (1044) or none such (1049).
fn refuses_schema(e: &ConnectionError) -> bool {
    matches!(e.server_code(), Some(1044 | 1049))
}

fn refusal(e: ConnectionError) -> Option<ErrorPacket> {
    match e {
        ConnectionError::Server {
            code,
            sql_state,
            message,
        } => Some(ErrorPacket::from_server(code, sql_state, message)),
        _ => None,
    }
}
