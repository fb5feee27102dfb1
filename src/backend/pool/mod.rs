//! The pool: a global cap on backend connections, idle connections per partition, and a
//! FIFO queue of borrowers. It is generic over what opens connections
//! ([`Connector`]): MySQL in the proxy, fakes in its tests.

mod borrow;
mod capacity;
mod generation;
mod grant;
mod health;
mod lease;
mod load;
mod opening;
mod shared;
mod state;
mod traits;

#[cfg(test)]
mod tests;

pub use health::{Down, Health};
pub use lease::Lease;
pub use load::Load;
pub use shared::{Pool, PoolSettings};
pub use traits::{Connector, Pooled, ServerLimits};
