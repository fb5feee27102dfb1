//! Which listener a client came in by, and so where its statements run: the main one's
//! on the writer; the reader endpoint's on the replicas (`backend::topology::Readers`).

use super::Context;
use crate::backend::{BackendError, Lease, PartitionKey};
use crate::multiplex::Variables;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Writer,
    Reader,
}

impl Context {
    /// A backend connection for a session of `endpoint`.
    pub(super) async fn borrow_for(
        &self,
        endpoint: Endpoint,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Result<Lease, BackendError> {
        match (endpoint, &self.readers) {
            // Boxed: inline, the choice among replicas would grow every session's
            // state machine, the writer's sessions' too.
            (Endpoint::Reader, Some(readers)) => Box::pin(readers.borrow(key, schema, vars)).await,
            _ => self.pool.borrow(key, schema, vars).await,
        }
    }
}
