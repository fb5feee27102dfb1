//! Backend side: connections to the MySQL server, the capped pool, TLS to the server.

pub mod conn;
pub mod connector;
mod ddl_watch;
pub mod error;
mod login_check;
mod monitor;
pub mod partition;
pub mod pool;
pub mod tls;
pub mod topology;
mod upkeep;

pub use connector::MySqlConnector;
pub use error::{BackendError, ConnectionError, PoolError};
pub use partition::PartitionKey;
pub use pool::PoolSettings;

/// The proxy's pool: of MySQL (or MariaDB) connections.
pub type Pool = pool::Pool<MySqlConnector>;
/// A borrowed MySQL connection.
pub type Lease = pool::Lease<MySqlConnector>;
