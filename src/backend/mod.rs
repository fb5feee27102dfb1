//! Backend side: connections to the MySQL server, the capped pool, TLS to the server.

pub mod capacity;
pub mod conn;
pub mod ddl_watch;
pub mod error;
pub mod lease;
mod login_check;
pub mod pool;
pub mod tls;

pub use error::BackendError;
pub use lease::Lease;
pub use pool::{PartitionKey, Pool, PoolSettings};
