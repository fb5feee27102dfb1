//! Which instance is the writer, from what the monitor last saw of each: pure rules,
//! no I/O, tested exhaustively below.
//!
//! - One instance: it is always the one used (a deliberate read replica stays usable).
//!   But a different server behind its address (a Multi-AZ failover moved the DNS
//!   name), or the same server turned read-only, is a new writer: the pool's
//!   connections to the old one are let go.
//! - Several instances: the writer is the one writable instance. None writable (the
//!   writer died or was demoted and no replica is promoted yet): no writer, and
//!   borrowers wait. Two or more writable at once (a split brain, or a promotion seen
//!   before the old writer's demotion): Sluice keeps the writer it has if it is among
//!   them, else takes the first in the configured order, and reports the conflict. It
//!   never moves on a conflict, since moving would be writing to both.

/// What the last look at an instance found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not looked at yet.
    Unknown,
    /// It answered: which server it is (`@@server_id`) and whether it takes writes.
    Up { server_id: u32, writable: bool },
    /// It does not answer (refused, reset, or timed out twice in a row).
    Down,
}

/// The writer as Sluice uses it: an instance, the server found behind it, and whether
/// it took writes when last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterId {
    /// Index into the configured instances.
    pub instance: usize,
    /// None until the monitor has seen it (a single instance is used from the start).
    pub server_id: Option<u32>,
    pub writable: bool,
}

impl WriterId {
    /// The single instance before any look: used as it is.
    pub const ASSUMED: WriterId = WriterId {
        instance: 0,
        server_id: None,
        writable: true,
    };

    /// The same server, as far as is known (an unknown id matches any): connections to
    /// one are connections to the other.
    pub fn same_server(self, other: WriterId) -> bool {
        self.instance == other.instance
            && self.writable == other.writable
            && match (self.server_id, other.server_id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

/// The outcome of one election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Election {
    pub writer: Option<WriterId>,
    /// More than one instance took writes.
    pub conflict: bool,
}

/// Elects the writer from `seen` (one entry per configured instance), given the
/// `current` one.
pub fn elect(current: Option<WriterId>, seen: &[Seen]) -> Election {
    if let [only] = seen {
        let writer = match *only {
            Seen::Up {
                server_id,
                writable,
            } => WriterId {
                instance: 0,
                server_id: Some(server_id),
                writable,
            },
            // Not answering: still the one to connect to (connects wait for it).
            Seen::Unknown | Seen::Down => current.unwrap_or(WriterId::ASSUMED),
        };
        return Election {
            writer: Some(writer),
            conflict: false,
        };
    }
    let writable = |i: usize| match seen.get(i) {
        Some(Seen::Up {
            writable: true,
            server_id,
        }) => Some(*server_id),
        _ => None,
    };
    let candidates = (0..seen.len()).filter(|&i| writable(i).is_some()).count();
    let keep = current.and_then(|c| writable(c.instance).map(|id| (c.instance, id)));
    let first = (0..seen.len()).find_map(|i| writable(i).map(|id| (i, id)));
    let writer = keep.or(first).map(|(instance, id)| WriterId {
        instance,
        server_id: Some(id),
        writable: true,
    });
    Election {
        writer,
        conflict: candidates > 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn up(server_id: u32, writable: bool) -> Seen {
        Seen::Up {
            server_id,
            writable,
        }
    }

    fn writer(instance: usize, server_id: u32) -> Option<WriterId> {
        Some(WriterId {
            instance,
            server_id: Some(server_id),
            writable: true,
        })
    }

    #[test]
    fn a_single_instance_is_always_used_and_its_changes_are_new_writers() {
        let assumed = Some(WriterId::ASSUMED);
        for seen in [Seen::Unknown, Seen::Down] {
            assert_eq!(elect(None, &[seen]).writer, assumed);
            assert_eq!(elect(assumed, &[seen]).writer, assumed);
            assert_eq!(elect(writer(0, 7), &[seen]).writer, writer(0, 7));
        }
        // First seen: the same writer as assumed (no connections let go).
        let first = elect(assumed, &[up(7, true)]).writer.unwrap();
        assert!(first.same_server(WriterId::ASSUMED));
        // A read replica on its own is used as it is.
        let replica = elect(assumed, &[up(7, false)]).writer.unwrap();
        assert!(!replica.writable && replica.instance == 0);
        // Demoted, or another server behind the name: a new writer.
        assert!(!first.same_server(replica));
        let moved = elect(Some(first), &[up(8, true)]).writer.unwrap();
        assert!(!first.same_server(moved));
        assert!(!elect(assumed, &[up(7, true)]).conflict);
    }

    #[test]
    fn of_several_the_one_writable_instance_is_the_writer() {
        let seen = [up(1, false), up(2, true), Seen::Down];
        assert_eq!(elect(None, &seen).writer, writer(1, 2));
        assert_eq!(elect(writer(0, 1), &seen).writer, writer(1, 2));
        assert!(!elect(None, &seen).conflict);
    }

    #[test]
    fn with_none_writable_there_is_no_writer() {
        for seen in [
            [Seen::Unknown, Seen::Unknown],
            [up(1, false), up(2, false)],
            [Seen::Down, up(2, false)],
            [Seen::Down, Seen::Down],
        ] {
            for current in [None, writer(0, 1), writer(1, 2)] {
                let e = elect(current, &seen);
                assert_eq!(e.writer, None, "{seen:?} from {current:?}");
                assert!(!e.conflict);
            }
        }
    }

    #[test]
    fn two_writable_keep_the_current_writer_or_take_the_first() {
        let seen = [up(1, true), up(2, true), up(3, false)];
        assert_eq!(elect(writer(1, 2), &seen).writer, writer(1, 2));
        assert_eq!(elect(writer(0, 1), &seen).writer, writer(0, 1));
        assert_eq!(elect(None, &seen).writer, writer(0, 1));
        // The current writer read-only now: the first writable one.
        assert_eq!(elect(writer(2, 3), &seen).writer, writer(0, 1));
        assert!(elect(None, &seen).conflict);
    }

    #[test]
    fn another_server_behind_the_writers_address_is_a_new_writer() {
        let e = elect(writer(0, 1), &[up(9, true), up(2, false)]);
        assert_eq!(e.writer, writer(0, 9));
        assert!(!writer(0, 1).unwrap().same_server(e.writer.unwrap()));
        assert!(writer(0, 1).unwrap().same_server(writer(0, 1).unwrap()));
    }
}
