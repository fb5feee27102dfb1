//! Failed-login throttling, per source address and per user name.
//!
//! MySQL's own defence is `max_connect_errors`: a host with that many failed handshakes
//! is blocked until an administrator runs FLUSH HOSTS. Sluice blocks for a while
//! instead, and slows guessing before it blocks:
//!
//! - Failures are counted per address and per user name; a count is forgotten once
//!   `window` passes without a failure.
//! - Past `delay_after` failures (of the address or of the user), each further *failed*
//!   login is answered late: 100 ms, doubling up to `max_delay`. A correct password is
//!   never delayed, so an attacker guessing a user's password does not slow that user.
//! - At `block_after` failures an address is refused outright for `block_for` (all its
//!   logins, as MySQL's host block does), and a user name is refused for `block_for`
//!   from every address that has itself failed a login in the window: a legitimate
//!   client of that user from a clean address still logs in.
//! - Addresses in `exempt` are never blocked (still delayed): a sidecar's clients all
//!   come from 127.0.0.1, where one misconfigured service would block its neighbours.
//!
//! The books are bounded (least recently failed entries are forgotten first), so a
//! flood of addresses cannot grow them without limit. Time is passed in, so the rules
//! are tested without sleeping.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::Mutex;

/// The first delay, doubled for every failure past `delay_after`.
const FIRST_DELAY: Duration = Duration::from_millis(100);

/// Addresses and user names remembered at most, each.
const REMEMBERED: usize = 16_384;

/// The thresholds (`[server.login_throttle]`).
#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    pub delay_after: u32,
    pub max_delay: Duration,
    pub block_after: u32,
    pub block_for: Duration,
    pub window: Duration,
    pub exempt: Vec<IpAddr>,
}

/// Why a login is refused before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The address failed too often; `remaining` of its block is left.
    Address { failures: u32, remaining: Duration },
    /// The user name failed too often (and this address has failed too).
    User { failures: u32, remaining: Duration },
}

/// What a failed login leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// How long to wait before answering it.
    pub delay: Duration,
    /// Failures of the address and of the user so far in the window.
    pub address_failures: u32,
    pub user_failures: u32,
    /// This failure started a block (of the address or the user).
    pub blocks: Option<Blocked>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl Failures {
    /// The count as of `now` (zero once the window passed without a failure).
    fn current(&self, now: Instant, window: Duration) -> u32 {
        if now.saturating_duration_since(self.last) > window {
            0
        } else {
            self.count
        }
    }

    fn remaining_block(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }
}

struct Books {
    addresses: LruCache<IpAddr, Failures>,
    users: LruCache<Box<[u8]>, Failures>,
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    books: Mutex<Books>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        let cap = NonZeroUsize::new(REMEMBERED).expect("a positive constant");
        Self {
            settings,
            books: Mutex::new(Books {
                addresses: LruCache::new(cap),
                users: LruCache::new(cap),
            }),
        }
    }

    /// Before a login is checked: whether it is refused outright.
    pub fn check(&self, ip: IpAddr, user: &[u8], now: Instant) -> Option<Blocked> {
        let window = self.settings.window;
        let books = self.books.lock();
        let address = books.addresses.peek(&ip).copied();
        if let Some(a) = address {
            if let Some(remaining) = a.remaining_block(now) {
                return Some(Blocked::Address {
                    failures: a.count,
                    remaining,
                });
            }
        }
        let address_failed = address.is_some_and(|a| a.current(now, window) > 0);
        if !address_failed {
            return None;
        }
        let u = books.users.peek(user)?;
        u.remaining_block(now).map(|remaining| Blocked::User {
            failures: u.count,
            remaining,
        })
    }

    /// A login from `ip` as `user` failed at `now`: how long to wait before saying so,
    /// and whether it started a block.
    pub fn failed(&self, ip: IpAddr, user: &[u8], now: Instant) -> Failure {
        let s = &self.settings;
        let may_block_address = !s.exempt.contains(&ip);
        let mut books = self.books.lock();
        let address = books.addresses.get_or_insert_mut(ip, || fresh(now));
        let (address_failures, address_blocks) = record(address, now, s, may_block_address);
        let user = books.users.get_or_insert_mut(user.into(), || fresh(now));
        let (user_failures, user_blocks) = record(user, now, s, true);
        drop(books);
        let blocks = if address_blocks {
            Some(Blocked::Address {
                failures: address_failures,
                remaining: s.block_for,
            })
        } else if user_blocks {
            Some(Blocked::User {
                failures: user_failures,
                remaining: s.block_for,
            })
        } else {
            None
        };
        Failure {
            delay: delay_for(address_failures.max(user_failures), s),
            address_failures,
            user_failures,
            blocks,
        }
    }

    /// A login from `ip` succeeded: the address's failures are forgotten, as the
    /// server forgets a host's connection errors. The user's are not: others may be
    /// guessing its password from elsewhere.
    pub fn succeeded(&self, ip: IpAddr, now: Instant) {
        let mut books = self.books.lock();
        if books
            .addresses
            .peek(&ip)
            .is_some_and(|a| a.remaining_block(now).is_none())
        {
            books.addresses.pop(&ip);
        }
    }
}

fn fresh(now: Instant) -> Failures {
    Failures {
        count: 0,
        last: now,
        blocked_until: None,
    }
}

/// Counts one failure at `now`: the count in the window, and whether it starts a block.
fn record(f: &mut Failures, now: Instant, s: &ThrottleSettings, may_block: bool) -> (u32, bool) {
    let count = f.current(now, s.window).saturating_add(1);
    f.count = count;
    f.last = now;
    let starts = may_block && count >= s.block_after && f.remaining_block(now).is_none();
    if starts {
        f.blocked_until = Some(now + s.block_for);
    }
    (count, starts)
}

/// The delay before a failed login is answered, after `failures` of its address or user.
fn delay_for(failures: u32, s: &ThrottleSettings) -> Duration {
    let Some(past) = failures.checked_sub(s.delay_after + 1) else {
        return Duration::ZERO;
    };
    let factor = 1u32.checked_shl(past).unwrap_or(u32::MAX);
    FIRST_DELAY.saturating_mul(factor).min(s.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            delay_after: 3,
            max_delay: Duration::from_secs(5),
            block_after: 10,
            block_for: Duration::from_secs(60),
            window: Duration::from_secs(300),
            exempt: vec!["127.0.0.9".parse().unwrap()],
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn delays_grow_after_the_first_failures_and_stop_at_the_maximum() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        let delays: Vec<_> = (0..12)
            .map(|i| {
                t.failed(ip(1), b"app", now + Duration::from_millis(i))
                    .delay
            })
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(
            delays,
            [0, 0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]
        );
    }

    #[test]
    fn an_address_is_blocked_at_the_threshold_and_only_for_a_while() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        for i in 0..9 {
            let f = t.failed(ip(1), format!("user{i}").as_bytes(), now);
            assert_eq!(f.blocks, None);
            assert_eq!(t.check(ip(1), b"app", now), None);
        }
        let tenth = t.failed(ip(1), b"user9", now);
        assert!(matches!(
            tenth.blocks,
            Some(Blocked::Address { failures: 10, .. })
        ));
        // Every login from it is refused, any user's; other addresses are not.
        assert!(matches!(
            t.check(ip(1), b"app", now + Duration::from_secs(59)),
            Some(Blocked::Address { failures: 10, .. })
        ));
        assert_eq!(t.check(ip(2), b"app", now), None);
        assert_eq!(t.check(ip(1), b"app", now + Duration::from_secs(61)), None);
        // Still within the window: one more failure blocks it again at once.
        let again = t.failed(ip(1), b"user0", now + Duration::from_secs(62));
        assert!(matches!(
            again.blocks,
            Some(Blocked::Address { failures: 11, .. })
        ));
    }

    #[test]
    fn a_user_is_refused_only_from_addresses_that_failed() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        // Guesses at one user from ten addresses, one each: no address reaches its
        // threshold, the user does.
        let mut last = None;
        for a in 0..10 {
            last = Some(t.failed(ip(10 + a), b"app", now));
        }
        assert!(matches!(
            last.unwrap().blocks,
            Some(Blocked::User { failures: 10, .. })
        ));
        assert!(matches!(
            t.check(ip(10), b"app", now),
            Some(Blocked::User { .. })
        ));
        // Another user from a guessing address, and the user from a clean one, get in.
        assert_eq!(t.check(ip(10), b"other", now), None);
        assert_eq!(t.check(ip(1), b"app", now), None);
        // But a failed login of that user from the clean address is answered late.
        assert_eq!(t.failed(ip(1), b"app", now).delay, Duration::from_secs(5));
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_window_and_an_address_after_a_success() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        for _ in 0..5 {
            t.failed(ip(1), b"app", now);
        }
        let later = now + Duration::from_secs(301);
        let f = t.failed(ip(1), b"app", later);
        assert_eq!((f.address_failures, f.user_failures), (1, 1));
        for _ in 0..5 {
            t.failed(ip(2), b"app", later);
        }
        t.succeeded(ip(2), later);
        let f = t.failed(ip(2), b"app", later);
        // The address starts again; the user's count goes on.
        assert_eq!((f.address_failures, f.user_failures), (1, 7));
    }

    #[test]
    fn exempt_addresses_are_delayed_but_never_blocked() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        let mut last = None;
        for i in 0..15 {
            last = Some(t.failed(ip(9), format!("user{i}").as_bytes(), now));
        }
        let last = last.unwrap();
        assert_eq!(last.blocks, None);
        assert_eq!(last.delay, Duration::from_secs(5));
        assert_eq!(t.check(ip(9), b"app", now), None);
    }

    #[test]
    fn the_books_stay_bounded() {
        let t = LoginThrottle::new(settings());
        let now = Instant::now();
        for i in 0..(REMEMBERED as u32 + 100) {
            t.failed(IpAddr::from(i.to_be_bytes()), b"app", now);
        }
        assert_eq!(t.books.lock().addresses.len(), REMEMBERED);
    }
}
