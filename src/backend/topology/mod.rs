//! The backend as a set of instances, which one is the writer now, and which serve
//! reads. The pool's connections go to the writer; `monitor` looks at every instance
//! on an interval and elects the writer (`election`); each change of writer is a new
//! generation, and the pool lets go of connections of an older one (`Pool::retarget`).
//! The reader endpoint (`readers`) has a pool per replica, each following its
//! instance's part (`reading`) with a generation of its own.

mod election;
mod look;
mod monitor;
mod readers;
mod reading;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::conn::Target;
pub use election::{elect, Election, Seen, WriterId};
pub use monitor::Monitor;
pub use readers::{Fallback, ReaderSettings, Readers};
pub use reading::Reading;

/// The instances and the writer among them.
pub struct Topology {
    /// How to reach each instance, in the configured order.
    instances: Vec<Target>,
    writer: Mutex<Option<WriterId>>,
    /// Bumped with every change of writer (kept apart from the lock: read on every
    /// borrow and release).
    generation: AtomicU64,
    /// A statement's error suggested the writer changed: the monitor looks now.
    suspect: Notify,
    /// Per instance, its part in the reader endpoint as last decided.
    reading: Mutex<Vec<Reading>>,
    /// Per instance, bumped each time it stops being a replica: its reader pool's
    /// connections of an older one are let go.
    reading_generations: Vec<AtomicU64>,
    /// Per instance, whether it serves reads now (read on every reader borrow, so kept
    /// apart from the lock).
    serves: Vec<AtomicBool>,
}

/// A change of writer, as applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: Option<WriterId>,
    pub to: Option<WriterId>,
    pub generation: u64,
}

impl Topology {
    /// A single instance is used from the start; of several, none is until the monitor
    /// has found the writable one.
    pub fn new(instances: Vec<Target>) -> Self {
        let writer = (instances.len() == 1).then_some(WriterId::ASSUMED);
        let n = instances.len();
        Self {
            instances,
            writer: Mutex::new(writer),
            generation: AtomicU64::new(0),
            suspect: Notify::new(),
            reading: Mutex::new(vec![Reading::Down; n]),
            reading_generations: (0..n).map(|_| AtomicU64::new(0)).collect(),
            serves: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Where a reader pool's new connections to `instance` go, with the generation they
    /// belong to; None while it does not serve reads.
    pub fn replica(&self, instance: usize) -> Option<(&Target, u64)> {
        self.serves_reads(instance)
            .then(|| (&self.instances[instance], self.reading_generation(instance)))
    }

    /// `instance` gets new reader work now.
    pub fn serves_reads(&self, instance: usize) -> bool {
        self.serves
            .get(instance)
            .is_some_and(|s| s.load(Ordering::Acquire))
    }

    /// The generation of `instance` as a replica.
    pub fn reading_generation(&self, instance: usize) -> u64 {
        self.reading_generations
            .get(instance)
            .map_or(0, |g| g.load(Ordering::Acquire))
    }

    /// Takes in `instance`'s part as just decided; the one it had before, when it
    /// changed. Leaving for a part in which it is no replica (down, writable) starts a
    /// new generation: connections made while it served are let go.
    pub fn set_reading(&self, instance: usize, now: Reading) -> Option<Reading> {
        let mut reading = self.reading.lock();
        let slot = reading.get_mut(instance)?;
        let before = std::mem::replace(slot, now);
        if now.retires() && !before.retires() {
            self.reading_generations[instance].fetch_add(1, Ordering::AcqRel);
        }
        self.serves[instance].store(now.serves(), Ordering::Release);
        (before != now).then_some(before)
    }

    pub fn instances(&self) -> &[Target] {
        &self.instances
    }

    /// Where new connections go, with the generation they belong to; None while there
    /// is no writer.
    pub fn writer(&self) -> Option<(&Target, u64)> {
        let writer = self.writer.lock();
        let target = self.instances.get((*writer)?.instance)?;
        Some((target, self.generation.load(Ordering::Acquire)))
    }

    /// The writer as last elected.
    pub fn writer_id(&self) -> Option<WriterId> {
        *self.writer.lock()
    }

    /// The current generation: connections of an older one are let go.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Takes in an election; the change when the writer is no longer the same server.
    pub fn apply(&self, election: &Election) -> Option<Change> {
        let mut writer = self.writer.lock();
        let from = *writer;
        let to = election.writer;
        *writer = to;
        let same = match (from, to) {
            (Some(a), Some(b)) => a.same_server(b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return None;
        }
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        Some(Change {
            from,
            to,
            generation,
        })
    }

    /// A statement failed in a way that may mean the writer changed (1290 read-only,
    /// 1836 read-only mode, a lost connection): the monitor looks at once.
    pub fn suspect(&self) {
        self.suspect.notify_one();
    }

    /// Completes when a statement gave cause to look (cancellation safe).
    pub(crate) async fn suspected(&self) {
        self.suspect.notified().await
    }

    /// The name an instance is shown under (its configured address).
    pub fn name(&self, instance: usize) -> &str {
        self.instances
            .get(instance)
            .map_or("", |t| t.address.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn target(address: &str) -> Target {
        Target {
            address: address.into(),
            tls: None,
            connect_timeout: Duration::from_secs(1),
            init_query: String::new(),
        }
    }

    fn up(server_id: u32, writable: bool) -> Seen {
        Seen::Up {
            server_id,
            writable,
        }
    }

    #[test]
    fn each_change_of_writer_is_a_new_generation() {
        let t = Topology::new(vec![target("a:1"), target("b:1")]);
        assert!(t.writer().is_none());
        let elect_now = |seen: &[Seen]| t.apply(&elect(t.writer_id(), seen));
        let first = elect_now(&[up(1, true), up(2, false)]).unwrap();
        assert_eq!((first.from, first.generation), (None, 1));
        assert_eq!(
            t.writer().map(|(w, g)| (w.address.as_str(), g)),
            Some(("a:1", 1))
        );
        // Seen again the same: nothing changes.
        assert_eq!(elect_now(&[up(1, true), up(2, false)]), None);
        // The writer killed: no writer, then the promoted replica.
        assert_eq!(elect_now(&[Seen::Down, up(2, false)]).unwrap().to, None);
        assert!(t.writer().is_none());
        let promoted = elect_now(&[Seen::Down, up(2, true)]).unwrap();
        assert_eq!(promoted.generation, 3);
        assert_eq!(t.name(promoted.to.unwrap().instance), "b:1");
        assert_eq!(t.generation(), 3);
    }

    #[test]
    fn a_replica_that_stops_being_one_starts_a_new_reading_generation() {
        let t = Topology::new(vec![target("a:1"), target("b:1")]);
        assert!(t.replica(1).is_none(), "nothing serves before a look");
        assert_eq!(t.set_reading(1, Reading::Serves), Some(Reading::Down));
        assert_eq!(
            t.replica(1).map(|(r, g)| (r.address.as_str(), g)),
            Some(("b:1", 0))
        );
        assert_eq!(t.set_reading(1, Reading::Serves), None);
        // Behind: no new work, but its connections stay of the same generation.
        assert_eq!(t.set_reading(1, Reading::Behind), Some(Reading::Serves));
        assert!(t.replica(1).is_none());
        assert_eq!(t.reading_generation(1), 0);
        t.set_reading(1, Reading::Serves);
        // Promoted, then down: one new generation, at the first of them.
        t.set_reading(1, Reading::Writable);
        assert_eq!(t.reading_generation(1), 1);
        t.set_reading(1, Reading::Down);
        assert_eq!(t.reading_generation(1), 1);
        t.set_reading(1, Reading::Serves);
        assert_eq!(t.replica(1).map(|(_, g)| g), Some(1));
        assert!(!t.serves_reads(0) && t.set_reading(5, Reading::Serves).is_none());
    }

    #[test]
    fn a_single_instance_keeps_its_generation_until_another_server_answers() {
        let t = Topology::new(vec![target("db:1")]);
        assert_eq!(t.writer().map(|(_, g)| g), Some(0));
        let elect_now = |seen: &[Seen]| t.apply(&elect(t.writer_id(), seen));
        assert_eq!(elect_now(&[up(5, true)]), None);
        assert_eq!(elect_now(&[Seen::Down]), None);
        assert_eq!(elect_now(&[up(6, true)]).unwrap().generation, 1);
        assert_eq!(elect_now(&[up(6, false)]).unwrap().generation, 2);
        assert!(
            t.writer().is_some(),
            "a read-only single instance is still used"
        );
    }
}
