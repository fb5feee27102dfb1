//! The pool's books, behind its lock: slots in use against the cap, idle connections per
//! partition and the queue of borrowers. No I/O and no awaiting happen here.

use std::collections::VecDeque;

use foldhash::HashMap;
use std::time::Instant;

use tokio::sync::oneshot;

use super::grant::Grant;
use super::health::Health;
use super::opening::Opening;
use super::traits::{Connector, Pooled};
use crate::backend::partition::PartitionKey;
use crate::multiplex::Variables;

/// A borrower waiting for a connection or a slot, in arrival order.
pub(super) struct Waiter<K: Connector> {
    pub(super) id: u64,
    pub(super) key: PartitionKey,
    /// The client has no default schema, so only a connection without one fits.
    pub(super) schema_less: bool,
    pub(super) tx: oneshot::Sender<Grant<K::Conn>>,
}

impl<K: Connector> Waiter<K> {
    pub(super) fn fits(&self, conn: &K::Conn) -> bool {
        self.key == *conn.key() && (!self.schema_less || conn.has_schema(None))
    }
}

pub(super) struct State<K: Connector> {
    /// floor(@@max_connections × percent / 100); None until first read.
    pub(super) cap: Option<usize>,
    pub(super) max_idle: usize,
    /// Prepared statements per connection: the configured bound, or less when the
    /// server's `max_prepared_stmt_count` shared over the cap is smaller.
    pub(super) statement_bound: Option<usize>,
    /// Connections open or being opened (or being closed): slots in use.
    pub(super) open: usize,
    pub(super) idle: HashMap<PartitionKey, Vec<K::Conn>>,
    pub(super) idle_count: usize,
    pub(super) waiters: VecDeque<Waiter<K>>,
    pub(super) next_waiter: u64,
    /// When the last capacity probe failed: borrowers arriving soon after fail at once
    /// instead of each waiting a connect timeout in turn.
    pub(super) probe_failed_at: Option<Instant>,
    /// Whether the database lately refused a connection.
    pub(super) opening: Opening,
    pub(super) health: Health,
    /// When a connection last came back from a client: the database answered then.
    pub(super) last_returned: Option<Instant>,
}

impl<K: Connector> Default for State<K> {
    fn default() -> Self {
        Self {
            cap: None,
            max_idle: 0,
            statement_bound: None,
            open: 0,
            idle: HashMap::default(),
            idle_count: 0,
            waiters: VecDeque::new(),
            next_waiter: 0,
            probe_failed_at: None,
            opening: Opening::Free,
            health: Health::Unknown,
            last_returned: None,
        }
    }
}

impl<K: Connector> State<K> {
    /// The best idle connection of `key` for a client on `schema` with `vars`.
    pub(super) fn take_idle(
        &mut self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Option<K::Conn> {
        let list = self.idle.get_mut(key)?;
        // A client without a default schema must not find another client's selected, and
        // MySQL cannot deselect one: such clients only take connections without one. Any
        // other schema is fine: COM_INIT_DB switches it.
        // Among those, prefer one whose session variables already match (no replay),
        // then one on the right schema; among equals the most recently used (warm).
        let allowed = |c: &K::Conn| schema.is_some() || c.has_schema(None);
        // The common case, a recent connection that matches in every way, without
        // scanning the whole list.
        let perfect = list
            .iter()
            .rposition(|c| c.has_vars(vars) && c.has_schema(schema) && allowed(c));
        let pos = match perfect {
            Some(pos) => pos,
            None => {
                list.iter()
                    .enumerate()
                    .filter(|(_, c)| allowed(c))
                    .max_by_key(|&(i, c)| (c.has_vars(vars), c.has_schema(schema), i))?
                    .0
            }
        };
        let conn = list.swap_remove(pos);
        self.idle_count -= 1;
        Some(conn)
    }

    /// The idle connection unused for longest, across partitions.
    pub(super) fn take_least_recently_used(&mut self) -> Option<K::Conn> {
        self.take_idle_by_last_use(false)
    }

    /// Any idle connection, oldest partition entry first: room for another partition.
    pub(super) fn take_idle_any(&mut self) -> Option<K::Conn> {
        let key = self.idle.iter().find(|(_, v)| !v.is_empty())?.0.clone();
        let list = self.idle.get_mut(&key)?;
        let conn = list.remove(0);
        self.idle_count -= 1;
        Some(conn)
    }

    /// The idle connection used last, across partitions: the one a borrower would take
    /// next anyway, so that checking it (and putting it back last in its list) leaves the
    /// others to expire.
    pub(super) fn take_idle_newest(&mut self) -> Option<K::Conn> {
        self.take_idle_by_last_use(true)
    }

    fn take_idle_by_last_use(&mut self, newest: bool) -> Option<K::Conn> {
        let all = self.idle.iter().flat_map(|(k, v)| {
            v.iter()
                .enumerate()
                .map(move |(i, c)| (k, i, c.last_used()))
        });
        let found = if newest {
            all.max_by_key(|(_, _, used)| *used)
        } else {
            all.min_by_key(|(_, _, used)| *used)
        };
        let (key, pos) = found.map(|(k, i, _)| (k.clone(), i))?;
        // `remove`, not `swap_remove`: the list's order is the borrowers' preference.
        let conn = self.idle.get_mut(&key)?.remove(pos);
        self.idle_count -= 1;
        Some(conn)
    }

    /// An idle connection whose slot may change hands: none while over the cap (it
    /// shrank), when slots must disappear instead.
    pub(super) fn take_victim(&mut self) -> Option<K::Conn> {
        if self.cap.is_some_and(|cap| self.open <= cap) {
            self.take_idle_any()
        } else {
            None
        }
    }

    /// A connection may be opened in a free slot (under the cap, and within what the
    /// database lately accepted: `Opening`).
    pub(super) fn has_slot(&mut self) -> bool {
        match self.cap {
            Some(cap) => self.opening.allows(self.open, cap),
            None => false,
        }
    }

    /// Over the cap (it shrank), or over what the database lately accepted, a slot that
    /// is given up disappears instead of changing hands.
    pub(super) fn slots_may_pass(&self) -> bool {
        self.cap.is_none_or(|cap| self.open <= cap) && self.opening.may_pass(self.open)
    }

    pub(super) fn push_idle(&mut self, conn: K::Conn) {
        self.idle_count += 1;
        match self.idle.get_mut(conn.key()) {
            Some(list) => list.push(conn),
            None => {
                self.idle.insert(conn.key().clone(), vec![conn]);
            }
        }
    }

    /// Queues a borrower (at the head: one that was served first and must wait again);
    /// its id and the end it waits on.
    pub(super) fn enqueue(
        &mut self,
        key: &PartitionKey,
        schema_less: bool,
        at_head: bool,
    ) -> (u64, oneshot::Receiver<Grant<K::Conn>>) {
        let id = self.next_waiter;
        self.next_waiter += 1;
        let (tx, rx) = oneshot::channel();
        let waiter = Waiter {
            id,
            key: key.clone(),
            schema_less,
            tx,
        };
        if at_head {
            self.waiters.push_front(waiter);
        } else {
            self.waiters.push_back(waiter);
        }
        (id, rx)
    }
}
