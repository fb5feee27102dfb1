//! How busy a pool is, for the reader endpoint's choice of replica.

use super::shared::Pool;
use super::traits::Connector;

/// Connections lent or waited for, against the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    pub busy: usize,
    /// None until the server's limits are read.
    pub cap: Option<usize>,
}

impl Load {
    /// A smaller share of its cap in use than `other` (a pool of unknown cap has
    /// nothing open yet, and counts as a cap of one).
    pub fn lighter_than(self, other: Load) -> bool {
        let cap = |l: Load| l.cap.unwrap_or(1).max(1);
        self.busy * cap(other) < other.busy * cap(self)
    }
}

impl<K: Connector> Pool<K> {
    pub fn load(&self) -> Load {
        let st = self.lock();
        Load {
            busy: st.open.saturating_sub(st.idle_count) + st.waiters.len(),
            cap: st.cap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Load;

    #[test]
    fn the_lighter_pool_has_the_smaller_share_of_its_cap_in_use() {
        let load = |busy, cap| Load { busy, cap };
        assert!(load(1, Some(10)).lighter_than(load(1, Some(5))));
        assert!(load(3, Some(10)).lighter_than(load(1, Some(2))));
        assert!(!load(2, Some(10)).lighter_than(load(1, Some(5))), "a tie");
        assert!(load(0, None).lighter_than(load(1, Some(50))));
        assert!(!load(0, None).lighter_than(load(0, Some(50))));
    }
}
