//! Admission of client connections, in two budgets.
//!
//! A connection still logging in holds a handshake slot: at most `max_handshakes` in
//! all and `max_handshakes_per_address` from one address; beyond them a new connection
//! gets 1040 at once and is closed. Only once it has authenticated does it take one of
//! the `max_client_connections` client slots. So silent or slow connections (held until
//! the handshake timeout) can neither use up the clients' budget nor, from a few
//! addresses, the handshake budget of everyone else; and an authenticated client is
//! never disconnected to make room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// Why a connection is turned away before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crowded {
    /// `max_handshakes` connections are logging in.
    Handshakes,
    /// `max_handshakes_per_address` of them come from this address.
    Address,
}

impl Crowded {
    /// Metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Handshakes => "too_many_handshakes",
            Self::Address => "too_many_handshakes_from_address",
        }
    }
}

pub struct Admission {
    handshakes: Arc<Semaphore>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
    clients: Arc<Semaphore>,
    max_clients: usize,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(
        max_handshakes: usize,
        max_per_address: usize,
        max_clients: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            handshakes: Arc::new(Semaphore::new(max_handshakes)),
            per_address: Mutex::new(HashMap::new()),
            max_per_address,
            clients: Arc::new(Semaphore::new(max_clients)),
            max_clients,
            metrics,
        })
    }

    /// A handshake slot for a connection from `ip`, held until the returned guard drops.
    pub fn begin_handshake(self: &Arc<Self>, ip: IpAddr) -> Result<Handshaking, Crowded> {
        // Both address forms of one IPv4 client count as one address.
        let ip = ip.to_canonical();
        let permit = self
            .handshakes
            .clone()
            .try_acquire_owned()
            .map_err(|_| Crowded::Handshakes)?;
        {
            let mut per_address = self.per_address.lock();
            let n = per_address.entry(ip).or_insert(0);
            if *n >= self.max_per_address {
                return Err(Crowded::Address);
            }
            *n += 1;
        }
        self.metrics.client_connections_handshaking.inc();
        Ok(Handshaking {
            admission: self.clone(),
            ip,
            _permit: permit,
        })
    }

    /// A client slot for a connection that has authenticated; None at
    /// `max_client_connections`.
    pub fn admit_client(&self) -> Option<OwnedSemaphorePermit> {
        self.clients.clone().try_acquire_owned().ok()
    }

    /// Waits until every client slot is free again (every session ended).
    pub async fn all_clients_gone(&self) {
        let all = u32::try_from(self.max_clients).unwrap_or(u32::MAX);
        let _ = self.clients.acquire_many(all).await;
    }
}

/// A connection's handshake slot, given back on drop (the handshake ended, whichever
/// way).
pub struct Handshaking {
    admission: Arc<Admission>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        let mut per_address = self.admission.per_address.lock();
        if let Some(n) = per_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_address.remove(&self.ip);
            }
        }
        drop(per_address);
        self.admission.metrics.client_connections_handshaking.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn handshake_slots_are_bounded_in_all_and_per_address_and_given_back() {
        let metrics = Arc::new(Metrics::new());
        let a = Admission::new(4, 2, 10, metrics.clone());
        let first = a.begin_handshake(ip(1)).unwrap();
        let _second = a.begin_handshake(ip(1)).unwrap();
        assert_eq!(a.begin_handshake(ip(1)).err(), Some(Crowded::Address));
        // The IPv4-mapped form is the same address.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(a.begin_handshake(mapped).err(), Some(Crowded::Address));
        let _third = a.begin_handshake(ip(2)).unwrap();
        let _fourth = a.begin_handshake(ip(3)).unwrap();
        assert_eq!(a.begin_handshake(ip(4)).err(), Some(Crowded::Handshakes));
        assert_eq!(metrics.client_connections_handshaking.get(), 4);
        drop(first);
        assert_eq!(metrics.client_connections_handshaking.get(), 3);
        assert!(a.begin_handshake(ip(1)).is_ok());
        assert_eq!(a.per_address.lock().get(&ip(1)), Some(&1));
    }

    #[test]
    fn handshakes_do_not_use_client_slots() {
        let a = Admission::new(10, 10, 1, Arc::new(Metrics::new()));
        let _logging_in: Vec<_> = (0..5).map(|i| a.begin_handshake(ip(i)).unwrap()).collect();
        let client = a.admit_client().expect("the one client slot is free");
        assert!(a.admit_client().is_none());
        drop(client);
        assert!(a.admit_client().is_some());
    }
}
