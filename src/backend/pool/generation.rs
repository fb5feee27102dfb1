//! Connections belong to the writer generation they were opened in (the connector's
//! [`Connector::generation`]). When the writer changes, the pool lets go of the old
//! generation: idle connections are closed at once, borrowed ones when they come back,
//! and none is lent again. Borrowers waiting meanwhile get the new writer's.

use std::sync::Arc;

use super::opening::Opening;
use super::shared::Pool;
use super::traits::{Connector, Pooled};

impl<K: Connector> Pool<K> {
    /// Of a writer generation that is over.
    pub(super) fn is_stale(&self, conn: &K::Conn) -> bool {
        conn.generation() != self.connector.generation()
    }

    /// The writer changed: closes every idle connection of an older generation, forgets
    /// the old writer's refusals, and lets waiters try the new one.
    pub fn retarget(self: &Arc<Self>) {
        let stale = {
            let mut st = self.lock();
            let mut stale = Vec::new();
            for list in st.idle.values_mut() {
                let mut i = 0;
                while i < list.len() {
                    if self.is_stale(&list[i]) {
                        stale.push(list.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            st.idle_count -= stale.len();
            st.opening = Opening::Free;
            self.publish_effective_cap(&st);
            stale
        };
        for conn in stale {
            self.close(conn, "failover");
        }
        self.grant_free_slots();
    }
}
