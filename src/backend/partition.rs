//! Which clients may share a backend connection.

use std::sync::Arc;

/// Connections are shared only between clients with the same key: the backend user and
/// the semantic capability flags (`caps::SEMANTIC`). The handshake character set is not
/// part of it: every connection logs in with one collation and a client's own is
/// replayed (`multiplex::handshake_state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub user: Arc<str>,
    pub flags: u32,
}
