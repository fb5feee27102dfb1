//! Whether an instance gets the reader endpoint's new work, from what the monitor last
//! saw of it: pure rules, no I/O, tested below.
//!
//! A replica serves reads while it answers, takes no writes, is not the writer, and is
//! no further behind its source than `max_replica_lag`. One that falls behind, stops
//! replicating or cannot say how far behind it is gets no new work, but the sessions
//! that run on it go on (it is still a read-only copy of the data). One that stops
//! answering or turns writable (promoted) is no replica any more: its connections are
//! let go as the writer's are in a failover.

use std::time::Duration;

use super::election::Seen;
use super::look::Lag;

/// An instance's part in the reader endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// It gets new reader work.
    Serves,
    /// Further behind than allowed.
    Behind,
    /// Its replication is stopped (or it replicates from nothing).
    NotReplicating,
    /// It would not say how far behind it is (no privilege to ask, an error).
    LagUnknown,
    /// It takes writes: the writer, or a replica promoted.
    Writable,
    /// Not answering, or not looked at yet.
    Down,
}

impl Reading {
    /// `is_writer`: the instance is Sluice's writer now.
    pub fn decide(seen: Seen, lag: Option<Lag>, is_writer: bool, max_lag: Duration) -> Self {
        match seen {
            Seen::Unknown | Seen::Down => return Self::Down,
            Seen::Up { writable: true, .. } => return Self::Writable,
            Seen::Up { .. } if is_writer => return Self::Writable,
            Seen::Up { .. } => {}
        }
        match lag {
            Some(Lag::Seconds(s)) if Duration::from_secs(s) <= max_lag => Self::Serves,
            Some(Lag::Seconds(_)) => Self::Behind,
            Some(Lag::SharedStorage) => Self::Serves,
            Some(Lag::NotReplicating) => Self::NotReplicating,
            Some(Lag::Unknown) | None => Self::LagUnknown,
        }
    }

    pub fn serves(self) -> bool {
        self == Self::Serves
    }

    /// It is no replica now: connections made while it served must not be used again.
    pub fn retires(self) -> bool {
        matches!(self, Self::Writable | Self::Down)
    }

    /// For the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serves => "serves reads",
            Self::Behind => "behind by more than max_replica_lag",
            Self::NotReplicating => "not replicating",
            Self::LagUnknown => "lag unknown",
            Self::Writable => "writable",
            Self::Down => "down",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(5);

    fn replica(lag: Option<Lag>) -> Reading {
        let seen = Seen::Up {
            server_id: 2,
            writable: false,
        };
        Reading::decide(seen, lag, false, MAX)
    }

    #[test]
    fn a_current_read_only_replica_serves_and_the_rest_do_not() {
        assert_eq!(replica(Some(Lag::Seconds(0))), Reading::Serves);
        assert_eq!(replica(Some(Lag::Seconds(5))), Reading::Serves);
        assert_eq!(replica(Some(Lag::Seconds(6))), Reading::Behind);
        assert_eq!(replica(Some(Lag::SharedStorage)), Reading::Serves);
        assert_eq!(replica(Some(Lag::NotReplicating)), Reading::NotReplicating);
        assert_eq!(replica(Some(Lag::Unknown)), Reading::LagUnknown);
        assert_eq!(replica(None), Reading::LagUnknown);
        let writable = Seen::Up {
            server_id: 1,
            writable: true,
        };
        assert_eq!(
            Reading::decide(writable, None, false, MAX),
            Reading::Writable
        );
        // A single instance used as the writer while read-only is still the writer.
        let read_only = Seen::Up {
            server_id: 1,
            writable: false,
        };
        let lag = Some(Lag::Seconds(0));
        assert_eq!(
            Reading::decide(read_only, lag, true, MAX),
            Reading::Writable
        );
        for seen in [Seen::Down, Seen::Unknown] {
            assert_eq!(Reading::decide(seen, lag, false, MAX), Reading::Down);
        }
    }

    #[test]
    fn only_an_instance_that_is_no_replica_loses_its_connections() {
        let all = [
            Reading::Serves,
            Reading::Behind,
            Reading::NotReplicating,
            Reading::LagUnknown,
            Reading::Writable,
            Reading::Down,
        ];
        let retiring: Vec<_> = all.iter().filter(|r| r.retires()).collect();
        assert_eq!(retiring, [&Reading::Writable, &Reading::Down]);
        let serving: Vec<_> = all.iter().filter(|r| r.serves()).collect();
        assert_eq!(serving, [&Reading::Serves]);
    }
}
