//! Backend side: connections to the MySQL server, the capped pool, TLS to the server.

pub mod conn;
pub mod error;
pub mod pool;
pub mod tls;

pub use error::BackendError;
pub use pool::{Lease, PartitionKey, Pool, PoolSettings};
