//! Whether the pool may open another connection: up to the cap, unless the database
//! lately refused one (its own `max_connections` reached by other applications, 1040;
//! or nothing accepting at its address). Then the pool keeps to the connections that
//! work, and tries one more at a time, at a rate that backs off with jitter: a refusing
//! database is never hammered, and borrowers wait in line for a working connection
//! instead of getting the server's refusal.

use std::time::{Duration, Instant};

/// The first pause after a refusal; it doubles with each refusal in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts: at most one refused connect per this long.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// Connections are opened as borrowers need them, up to the cap.
    Free,
    /// The database refused a connection: at most `limit` slots are used (the
    /// connections that worked), and one attempt beyond them may start at `retry_at`.
    Refused {
        limit: usize,
        retry_at: Instant,
        /// The pause after the next refusal (before jitter).
        backoff: Duration,
        /// When the pool last learned of a refusal: attempts already under way then
        /// were made without knowing, and their refusals do not lengthen the pause.
        learned_at: Instant,
    },
}

impl Opening {
    /// May a connection be opened with `open` slots in use under `cap`? An attempt
    /// beyond the limit is allowed once per pause: it counts as made when allowed, so a
    /// borrower that gives up on it does not leave the pool waiting for its outcome.
    pub(super) fn allows(&mut self, open: usize, cap: usize) -> bool {
        match self {
            Self::Free => open < cap,
            Self::Refused { limit, .. } if open < (*limit).min(cap) => true,
            Self::Refused {
                retry_at, backoff, ..
            } => {
                let now = Instant::now();
                if open >= cap || now < *retry_at {
                    return false;
                }
                *retry_at = now + *backoff;
                true
            }
        }
    }

    /// Slots in use may change hands (a freed one goes to the next borrower) while this
    /// many are in use.
    pub(super) fn may_pass(&self, open: usize) -> bool {
        match self {
            Self::Free => true,
            Self::Refused { limit, .. } => open <= *limit,
        }
    }

    /// The database refused a connection attempted from `attempted` on, while `working`
    /// other slots were in use. `jitter` (0.5 to 1) spreads the pause so that several
    /// proxies do not retry in step. Returns when the next attempt may start.
    pub(super) fn refused(
        &mut self,
        working: usize,
        attempted: Instant,
        now: Instant,
        jitter: f64,
    ) -> Instant {
        let backoff = match *self {
            Self::Free => FIRST_BACKOFF,
            Self::Refused {
                limit,
                retry_at,
                learned_at,
                ..
            } if attempted < learned_at => {
                // Under way before the last refusal was known (a burst of connects):
                // the same refusal again, only the limit follows.
                if let Self::Refused { limit: l, .. } = self {
                    *l = limit.min(working);
                }
                return retry_at;
            }
            Self::Refused { backoff, .. } => backoff,
        };
        let retry_at = now + backoff.mul_f64(jitter.clamp(0.5, 1.0));
        let limit = match *self {
            Self::Refused { limit, .. } => limit.min(working),
            Self::Free => working,
        };
        *self = Self::Refused {
            limit,
            retry_at,
            backoff: (backoff * 2).min(MAX_BACKOFF),
            learned_at: now,
        };
        retry_at
    }

    /// A connection was opened while `open` slots are in use (it among them): they all
    /// work. The next attempt may start at once; at the cap, the pool is free again.
    pub(super) fn opened(&mut self, open: usize, cap: usize, now: Instant) {
        if let Self::Refused {
            limit, retry_at, ..
        } = self
        {
            if open >= cap {
                *self = Self::Free;
            } else {
                *limit = (*limit).max(open);
                *retry_at = now;
            }
        }
    }

    /// The most connections the pool uses now.
    pub(super) fn effective_cap(&self, cap: usize) -> usize {
        match self {
            Self::Free => cap,
            Self::Refused { limit, .. } => (*limit).min(cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_up_to_the_cap() {
        let mut o = Opening::Free;
        assert!(o.allows(9, 10));
        assert!(!o.allows(10, 10));
        assert!(o.may_pass(10));
        assert_eq!(o.effective_cap(10), 10);
    }

    #[test]
    fn a_refusal_keeps_to_the_working_connections_and_allows_one_attempt_per_pause() {
        let mut o = Opening::Free;
        let now = Instant::now();
        let retry_at = o.refused(3, now, now, 1.0);
        assert_eq!(retry_at, now + FIRST_BACKOFF);
        assert_eq!(o.effective_cap(10), 3);
        // Below the limit (a working connection closed): its slot may be reopened.
        assert!(o.allows(2, 10));
        assert!(!o.allows(3, 10), "before the pause ends");
        // A freed slot above the limit disappears instead of passing on.
        assert!(o.may_pass(3) && !o.may_pass(4));
        std::thread::sleep(FIRST_BACKOFF);
        assert!(o.allows(3, 10), "one attempt once the pause is over");
        assert!(!o.allows(3, 10), "and only one");
    }

    #[test]
    fn pauses_double_up_to_the_maximum_with_jitter() {
        let mut o = Opening::Free;
        let now = Instant::now();
        let mut pauses = Vec::new();
        for _ in 0..8 {
            pauses.push(o.refused(0, now, now, 1.0) - now);
        }
        let ms: Vec<u128> = pauses.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        // Jitter shortens a pause by up to half, never lengthens it.
        assert_eq!(o.refused(0, now, now, 0.5) - now, MAX_BACKOFF / 2);
        assert_eq!(o.refused(0, now, now, 0.1) - now, MAX_BACKOFF / 2);
        assert_eq!(o.refused(0, now, now, 7.0) - now, MAX_BACKOFF);
    }

    #[test]
    fn refusals_of_connects_already_under_way_only_lower_the_limit() {
        let mut o = Opening::Free;
        let before = Instant::now();
        let now = before + Duration::from_millis(1);
        let retry_at = o.refused(5, before, now, 1.0);
        // Four more of the same burst: the pause stays the first one.
        for working in [4, 3, 2, 1] {
            assert_eq!(o.refused(working, before, now, 1.0), retry_at);
        }
        assert_eq!(o.effective_cap(10), 1);
        // An attempt made since (after the pause): the pause doubles.
        let later = now + Duration::from_millis(150);
        assert_eq!(o.refused(1, later, later, 1.0), later + 2 * FIRST_BACKOFF);
    }

    #[test]
    fn each_connection_opened_raises_the_limit_until_the_cap_frees_the_pool() {
        let mut o = Opening::Free;
        let now = Instant::now();
        o.refused(2, now, now, 1.0);
        o.opened(3, 5, now);
        assert_eq!(o.effective_cap(5), 3);
        // The next attempt may go at once.
        assert!(o.allows(3, 5));
        o.opened(4, 5, now);
        assert_eq!(o.effective_cap(5), 4);
        o.opened(5, 5, now);
        assert_eq!(o, Opening::Free);
        // A later refusal starts from the first pause again.
        assert_eq!(o.refused(1, now, now, 1.0), now + FIRST_BACKOFF);
    }
}
