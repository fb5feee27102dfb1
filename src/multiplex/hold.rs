//! Why a client session holds a backend connection, and every rule of when it lets it go.
//!
//! A session borrows a backend for a command and gives it back when the command ends,
//! unless something that lives only on that connection ties the session to it. The
//! reasons, from the weakest to the strongest:
//!
//! - the command is still running;
//! - the last statement left values a next one may ask for (warnings, ROW_COUNT(), an
//!   insert id): kept for a short affinity window;
//! - prepared statements with long data waiting for their execute, or an open cursor;
//! - an open transaction;
//! - a pin: state Sluice cannot carry to another connection, until the session ends or
//!   resets.
//!
//! A stronger reason hides a weaker one, but what is beneath it is kept (the statements
//! of a transaction, a transaction of a pinned session) so that the hold falls back to
//! it when the stronger reason ends. `L` is the lease, a fake one in the tests.

use std::mem;
use std::time::{Duration, Instant};

use super::held::HeldStatements;
use super::pin::PinReason;

/// A held backend connection and the session's prepared statements with state on it.
#[derive(Debug, Clone)]
pub struct Held<L> {
    lease: L,
    statements: HeldStatements,
}

/// The session's hold on a backend: none, or one with the strongest reason it is kept.
#[derive(Debug, Default, Clone)]
pub enum Hold<L> {
    /// No backend: the next command that needs one borrows it.
    #[default]
    Free,
    /// Borrowed (or kept) for the command being run; settled when it finishes.
    Running(Held<L>),
    /// The last statement left connection-scoped values; kept until `until` in case the
    /// next statement asks for them.
    Affinity { held: Held<L>, until: Instant },
    /// Statements with long data or an open cursor on this connection.
    Statements(Held<L>),
    /// An open transaction.
    Transaction(Held<L>),
    /// Pinned for the rest of the session.
    Pinned {
        held: Held<L>,
        reason: PinReason,
        in_transaction: bool,
    },
}

/// What a finished command left on its backend for a next statement to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// Nothing: the backend can go back at once.
    Nothing,
    /// Values a next statement may read: kept for the affinity window, if there is one.
    Values,
    /// Values Sluice itself must read before the backend goes back: kept until the
    /// window ends, even a window of zero (whose timer fires at once).
    ValuesToRead,
}

/// Everything a hold had, when the session lets go of its backend.
#[derive(Debug)]
pub struct Taken<L> {
    pub lease: Option<L>,
    pub statements: HeldStatements,
    pub pin: Option<PinReason>,
    pub in_transaction: bool,
}

impl<L> Taken<L> {
    /// The connection carried state that exists nowhere else (a transaction, pinned
    /// state): when it fails, the session cannot go on as if nothing happened.
    pub fn state_lost(&self) -> bool {
        self.lease.is_some() && (self.in_transaction || self.pin.is_some())
    }

    /// The session left something on the connection that must be reset before another
    /// session may use it.
    pub fn dirty(&self) -> bool {
        self.in_transaction || self.pin.is_some() || !self.statements.is_empty()
    }
}

impl<L> Hold<L> {
    fn held(&self) -> Option<&Held<L>> {
        match self {
            Self::Free => None,
            Self::Running(held)
            | Self::Statements(held)
            | Self::Transaction(held)
            | Self::Affinity { held, .. }
            | Self::Pinned { held, .. } => Some(held),
        }
    }

    fn held_mut(&mut self) -> Option<&mut Held<L>> {
        match self {
            Self::Free => None,
            Self::Running(held)
            | Self::Statements(held)
            | Self::Transaction(held)
            | Self::Affinity { held, .. }
            | Self::Pinned { held, .. } => Some(held),
        }
    }

    fn into_held(self) -> Option<Held<L>> {
        match self {
            Self::Free => None,
            Self::Running(held)
            | Self::Statements(held)
            | Self::Transaction(held)
            | Self::Affinity { held, .. }
            | Self::Pinned { held, .. } => Some(held),
        }
    }

    pub fn is_held(&self) -> bool {
        !matches!(self, Self::Free)
    }

    pub fn lease_mut(&mut self) -> Option<&mut L> {
        self.held_mut().map(|h| &mut h.lease)
    }

    pub fn pin(&self) -> Option<PinReason> {
        match self {
            Self::Pinned { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    pub fn in_transaction(&self) -> bool {
        match self {
            Self::Transaction(_) => true,
            Self::Pinned { in_transaction, .. } => *in_transaction,
            _ => false,
        }
    }

    /// When the affinity window ends, if one is open.
    pub fn affinity_deadline(&self) -> Option<Instant> {
        match self {
            Self::Affinity { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// The session's statements with state on the held backend (none without one).
    pub fn statements(&self) -> Option<&HeldStatements> {
        self.held().map(|h| &h.statements)
    }

    pub fn statements_mut(&mut self) -> Option<&mut HeldStatements> {
        self.held_mut().map(|h| &mut h.statements)
    }

    /// Statement `id` has long data or a cursor on the held backend.
    pub fn holds_statement(&self, id: u32) -> bool {
        self.statements().is_some_and(|s| s.ids().any(|i| i == id))
    }

    /// A command is about to run: a backend kept for the affinity window now serves it.
    /// True when a backend is held (else the command borrows one and calls `obtained`).
    pub fn begin(&mut self) -> bool {
        if let Self::Affinity { .. } = self {
            if let Some(held) = mem::take(self).into_held() {
                *self = Self::Running(held);
            }
        }
        self.is_held()
    }

    /// The backend borrowed for the command about to run. Only called when free; a
    /// backend held before would be dropped (closed) here.
    pub fn obtained(&mut self, lease: L) {
        debug_assert!(!self.is_held(), "obtained a second backend");
        *self = Self::Running(Held {
            lease,
            statements: HeldStatements::default(),
        });
    }

    /// The session is pinned to the held backend; true when it was not before (false
    /// also without a backend: nothing ran, so nothing is left to pin to).
    pub fn pin_with(&mut self, reason: PinReason) -> bool {
        if matches!(self, Self::Free | Self::Pinned { .. }) {
            return false;
        }
        let in_transaction = self.in_transaction();
        if let Some(held) = mem::take(self).into_held() {
            *self = Self::Pinned {
                held,
                reason,
                in_transaction,
            };
        }
        true
    }

    /// The server's status flags after a statement say whether a transaction is open.
    /// One that ends leaves the backend held for the running command; `finish` decides.
    pub fn transaction_status(&mut self, open: bool) {
        match self {
            Self::Free => {}
            Self::Pinned { in_transaction, .. } => *in_transaction = open,
            Self::Transaction(_) if open => {}
            Self::Running(_) | Self::Statements(_) | Self::Affinity { .. } if !open => {}
            _ => {
                if let Some(held) = mem::take(self).into_held() {
                    *self = if open {
                        Self::Transaction(held)
                    } else {
                        Self::Running(held)
                    };
                }
            }
        }
    }

    /// The command (or a statement close) finished and left `left`: keeps the backend
    /// while anything ties the session to it, else hands it back to be released. An
    /// affinity window already open stays open (closing a statement runs nothing).
    /// `now` is only asked when a window opens.
    pub fn finish(
        &mut self,
        left: Left,
        window: Duration,
        now: impl FnOnce() -> Instant,
    ) -> Option<L> {
        match self {
            Self::Free | Self::Transaction(_) | Self::Pinned { .. } | Self::Affinity { .. } => {
                return None
            }
            Self::Running(_) | Self::Statements(_) => {}
        }
        let held = mem::take(self).into_held()?;
        let keep = match left {
            Left::Nothing => false,
            Left::Values => !window.is_zero(),
            Left::ValuesToRead => true,
        };
        if !held.statements.is_empty() {
            *self = Self::Statements(held);
        } else if keep {
            *self = Self::Affinity {
                held,
                until: now() + window,
            };
        } else {
            return Some(held.lease);
        }
        None
    }

    /// The affinity window ended before the next command: the backend, for the session
    /// to read what it kept it for and then release.
    pub fn end_affinity(&mut self) -> Option<L> {
        match self {
            Self::Affinity { .. } => mem::take(self).into_held().map(|h| h.lease),
            _ => None,
        }
    }

    /// Lets go of the backend, whatever held it: at the end of the session, a reset or
    /// a change of user, or because the connection failed.
    pub fn take(&mut self) -> Taken<L> {
        let pin = self.pin();
        let in_transaction = self.in_transaction();
        match mem::take(self).into_held() {
            Some(held) => Taken {
                lease: Some(held.lease),
                statements: held.statements,
                pin,
                in_transaction,
            },
            None => Taken {
                lease: None,
                statements: HeldStatements::default(),
                pin,
                in_transaction,
            },
        }
    }
}

#[cfg(test)]
#[path = "hold_tests.rs"]
mod tests;
