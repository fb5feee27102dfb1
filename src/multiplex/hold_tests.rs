//! The hold's rules, one by one, and then exhaustively: every state reachable from a
//! fresh session, under every command, against a model written as independent flags
//! (the form the rules had before they were one type).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::*;

/// A fake backend lease: which connection it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Fake(u32);

const WINDOW: Duration = Duration::from_millis(5);

fn running(lease: u32) -> Hold<Fake> {
    let mut hold = Hold::Free;
    assert!(!hold.begin());
    hold.obtained(Fake(lease));
    hold
}

#[test]
fn a_command_that_leaves_nothing_releases_its_backend() {
    let mut hold = running(1);
    assert!(hold.is_held());
    assert_eq!(
        hold.finish(Left::Nothing, WINDOW, Instant::now),
        Some(Fake(1))
    );
    assert!(!hold.is_held());
    assert!(!hold.begin(), "the next command borrows again");
}

#[test]
fn values_keep_the_backend_for_the_window_which_the_next_command_reuses() {
    let now = Instant::now();
    let mut hold = running(1);
    assert_eq!(hold.finish(Left::Values, WINDOW, || now), None);
    assert_eq!(hold.affinity_deadline(), Some(now + WINDOW));
    assert!(hold.begin(), "the next command runs on the kept backend");
    assert_eq!(hold.affinity_deadline(), None);
    assert_eq!(hold.lease_mut(), Some(&mut Fake(1)));
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), Some(Fake(1)));
}

#[test]
fn without_a_window_values_go_back_unless_sluice_must_read_them() {
    let now = Instant::now();
    let mut hold = running(1);
    assert_eq!(
        hold.finish(Left::Values, Duration::ZERO, || now),
        Some(Fake(1))
    );
    let mut hold = running(2);
    assert_eq!(
        hold.finish(Left::ValuesToRead, Duration::ZERO, || now),
        None
    );
    assert_eq!(hold.affinity_deadline(), Some(now));
    assert_eq!(hold.end_affinity(), Some(Fake(2)));
    assert!(!hold.is_held());
    assert_eq!(hold.end_affinity(), None);
}

#[test]
fn a_transaction_keeps_the_backend_until_the_status_closes_it() {
    let now = Instant::now();
    let mut hold = running(1);
    hold.transaction_status(true);
    assert!(hold.in_transaction());
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), None);
    assert!(hold.begin());
    hold.transaction_status(true);
    assert_eq!(hold.finish(Left::Values, WINDOW, || now), None);
    assert_eq!(
        hold.affinity_deadline(),
        None,
        "no window inside a transaction"
    );
    assert!(hold.begin());
    hold.transaction_status(false);
    assert!(!hold.in_transaction());
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), Some(Fake(1)));
}

#[test]
fn statements_outlive_the_transaction_they_were_opened_in() {
    let now = Instant::now();
    let mut hold = running(1);
    hold.transaction_status(true);
    hold.statements_mut().unwrap().executed(7, true);
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), None);
    assert!(hold.begin());
    hold.transaction_status(false);
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), None);
    assert!(matches!(hold, Hold::Statements(_)));
    assert!(hold.holds_statement(7));
    // The last row of the cursor: nothing holds the backend any more.
    assert!(hold.begin());
    hold.statements_mut().unwrap().fetched(7, false);
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), Some(Fake(1)));
}

#[test]
fn closing_a_statement_keeps_an_open_window() {
    let now = Instant::now();
    let mut hold = running(1);
    assert_eq!(hold.finish(Left::Values, WINDOW, || now), None);
    hold.statements_mut().unwrap().forget(3);
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), None);
    assert_eq!(hold.affinity_deadline(), Some(now + WINDOW));
}

#[test]
fn a_pin_outlives_everything_until_the_backend_is_taken() {
    let now = Instant::now();
    let mut hold = running(1);
    assert!(hold.pin_with(PinReason::UserVariable));
    assert!(!hold.pin_with(PinReason::TemporaryTable), "pinned once");
    assert_eq!(hold.pin(), Some(PinReason::UserVariable));
    hold.transaction_status(true);
    assert!(hold.in_transaction());
    assert_eq!(hold.finish(Left::Values, WINDOW, || now), None);
    hold.transaction_status(false);
    assert_eq!(hold.finish(Left::Nothing, WINDOW, || now), None);
    assert_eq!(hold.pin(), Some(PinReason::UserVariable));
    let taken = hold.take();
    assert_eq!(taken.lease, Some(Fake(1)));
    assert!(taken.dirty() && taken.state_lost());
    assert!(!hold.is_held() && hold.pin().is_none());
}

#[test]
fn nothing_is_pinned_without_a_backend() {
    let mut hold: Hold<Fake> = Hold::Free;
    assert!(!hold.pin_with(PinReason::UserVariable));
    assert_eq!(hold.pin(), None);
    hold.transaction_status(true);
    assert!(!hold.in_transaction());
}

#[test]
fn what_is_taken_says_whether_it_must_be_reset_or_was_lost() {
    let mut hold = running(1);
    hold.statements_mut().unwrap().long_data(2);
    let taken = hold.take();
    assert!(taken.dirty(), "long data is reset away");
    assert!(
        !taken.state_lost(),
        "long data is reported at its execute instead"
    );
    assert_eq!(taken.statements.ids().collect::<Vec<_>>(), vec![2]);
    let taken = Hold::<Fake>::Free.take();
    assert!(taken.lease.is_none() && !taken.dirty() && !taken.state_lost());
}

/// The rules as independent flags, as the session kept them before: the reference the
/// enum must agree with everywhere.
#[derive(Debug, Clone, Default)]
struct Model {
    lease: Option<Fake>,
    pin: Option<PinReason>,
    in_transaction: bool,
    statements: HeldStatements,
    affinity_until: Option<Instant>,
}

impl Model {
    fn begin(&mut self, next: Fake) {
        self.affinity_until = None;
        if self.lease.is_none() {
            self.lease = Some(next);
        }
    }

    fn settle(&mut self, left: Left, window: Duration, now: Instant) -> Option<Fake> {
        if self.affinity_until.is_some()
            || self.pin.is_some()
            || self.in_transaction
            || !self.statements.is_empty()
            || self.lease.is_none()
        {
            return None;
        }
        let affinity = left != Left::Nothing;
        if affinity && (!window.is_zero() || left == Left::ValuesToRead) {
            self.affinity_until = Some(now + window);
            return None;
        }
        self.lease.take()
    }

    fn end_affinity(&mut self) -> Option<Fake> {
        self.affinity_until = None;
        if self.pin.is_some() || self.in_transaction || !self.statements.is_empty() {
            return None;
        }
        self.lease.take()
    }
}

/// What one command does to the statements of the session.
#[derive(Debug, Clone, Copy)]
enum StatementOp {
    LongData(u32),
    Executed { id: u32, cursor: bool },
    Fetched { id: u32, open: bool },
    Reset(u32),
}

impl StatementOp {
    fn apply(self, s: &mut HeldStatements) {
        match self {
            Self::LongData(id) => s.long_data(id),
            Self::Executed { id, cursor } => s.executed(id, cursor),
            Self::Fetched { id, open } => s.fetched(id, open),
            Self::Reset(id) => {
                s.forget(id);
            }
        }
    }
}

/// What happens to a session between two observations.
#[derive(Debug, Clone, Copy)]
enum Event {
    /// A command runs on a backend: what it pinned, the transaction status it ended
    /// with, what it did to a statement, and what it left.
    Command {
        pin: Option<PinReason>,
        status: Option<bool>,
        statement: Option<StatementOp>,
        left: Left,
    },
    /// COM_STMT_CLOSE of a statement: it is forgotten and nothing runs.
    Close(u32),
    /// The affinity timer fired.
    WindowEnds,
    /// The session ends, resets, changes user, or its backend failed.
    Take,
}

fn events() -> Vec<Event> {
    let pins = [None, Some(PinReason::UserVariable)];
    let statuses = [None, Some(true), Some(false)];
    let statements = [
        None,
        Some(StatementOp::LongData(1)),
        Some(StatementOp::LongData(2)),
        Some(StatementOp::Executed {
            id: 1,
            cursor: true,
        }),
        Some(StatementOp::Executed {
            id: 1,
            cursor: false,
        }),
        Some(StatementOp::Fetched { id: 1, open: true }),
        Some(StatementOp::Fetched { id: 1, open: false }),
        Some(StatementOp::Reset(2)),
    ];
    let lefts = [Left::Nothing, Left::Values, Left::ValuesToRead];
    let mut all = vec![
        Event::Close(1),
        Event::Close(2),
        Event::WindowEnds,
        Event::Take,
    ];
    for pin in pins {
        for status in statuses {
            for statement in statements {
                for left in lefts {
                    all.push(Event::Command {
                        pin,
                        status,
                        statement,
                        left,
                    });
                }
            }
        }
    }
    all
}

/// Applies `event` to both; returns the lease each handed back to be released.
fn step(
    hold: &mut Hold<Fake>,
    model: &mut Model,
    event: Event,
    next: Fake,
    window: Duration,
    now: Instant,
) -> (Option<Fake>, Option<Fake>) {
    match event {
        Event::Command {
            pin,
            status,
            statement,
            left,
        } => {
            if !hold.begin() {
                hold.obtained(next);
            }
            model.begin(next);
            if let Some(reason) = pin {
                let newly = hold.pin_with(reason);
                assert_eq!(newly, model.pin.is_none(), "{event:?}");
                model.pin.get_or_insert(reason);
            }
            if let Some(op) = statement {
                op.apply(hold.statements_mut().expect("held while running"));
                op.apply(&mut model.statements);
            }
            if let Some(open) = status {
                hold.transaction_status(open);
                model.in_transaction = open;
            }
            (
                hold.finish(left, window, || now),
                model.settle(left, window, now),
            )
        }
        Event::Close(id) => {
            if let Some(s) = hold.statements_mut() {
                s.forget(id);
            }
            model.statements.forget(id);
            (
                hold.finish(Left::Nothing, window, || now),
                model.settle(Left::Nothing, window, now),
            )
        }
        Event::WindowEnds => {
            let model_lease = match model.affinity_until {
                Some(_) => model.end_affinity(),
                None => None,
            };
            (hold.end_affinity(), model_lease)
        }
        Event::Take => {
            let taken = hold.take();
            let dirty = model.pin.is_some() || model.in_transaction || !model.statements.is_empty();
            let lost = model.lease.is_some() && (model.pin.is_some() || model.in_transaction);
            assert_eq!(taken.dirty(), dirty);
            assert_eq!(taken.state_lost(), lost);
            assert_eq!(taken.pin, model.pin);
            assert_eq!(sorted(&taken.statements), sorted(&model.statements));
            let lease = model.lease.take();
            *model = Model::default();
            (taken.lease, lease)
        }
    }
}

fn sorted(s: &HeldStatements) -> Vec<u32> {
    let mut ids: Vec<u32> = s.ids().collect();
    ids.sort_unstable();
    ids
}

fn assert_agree(hold: &Hold<Fake>, model: &Model, path: &[Event]) {
    let mut hold = hold.clone();
    assert_eq!(hold.lease_mut().copied(), model.lease, "{path:?}");
    assert_eq!(hold.pin(), model.pin, "{path:?}");
    assert_eq!(hold.in_transaction(), model.in_transaction, "{path:?}");
    assert_eq!(hold.affinity_deadline(), model.affinity_until, "{path:?}");
    let statements = hold.statements().map(sorted).unwrap_or_default();
    assert_eq!(statements, sorted(&model.statements), "{path:?}");
    // The invariants the enum keeps by its shape.
    match &hold {
        Hold::Free => assert!(model.statements.is_empty()),
        Hold::Statements(held) => assert!(!held.statements.is_empty()),
        Hold::Running(_) => panic!("a finished command left the hold running: {path:?}"),
        _ => {}
    }
}

/// A state's identity for the search: everything observable, the lease aside.
type Key = (bool, Option<PinReason>, bool, Vec<u32>, Vec<u32>, bool);

fn key(model: &Model) -> Key {
    let cursors: Vec<u32> = [1, 2]
        .into_iter()
        .filter(|&id| model.statements.has_cursor(id))
        .collect();
    (
        model.lease.is_some(),
        model.pin,
        model.in_transaction,
        sorted(&model.statements),
        cursors,
        model.affinity_until.is_some(),
    )
}

#[test]
fn every_reachable_state_under_every_event_agrees_with_the_flags() {
    let now = Instant::now();
    let events = events();
    for window in [Duration::ZERO, WINDOW] {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::new();
        queue.push_back((Hold::<Fake>::Free, Model::default(), Vec::<Event>::new()));
        seen.insert(key(&Model::default()));
        let mut next = 1;
        while let Some((hold, model, path)) = queue.pop_front() {
            for &event in &events {
                let (mut hold, mut model) = (hold.clone(), model.clone());
                let held_before = model.lease;
                next += 1;
                let (released, expected) =
                    step(&mut hold, &mut model, event, Fake(next), window, now);
                let mut path = path.clone();
                path.push(event);
                assert_eq!(released, expected, "{path:?}");
                if let Some(lease) = released {
                    // Only the backend the session held (or borrowed for this command)
                    // ever goes back.
                    assert!(held_before.is_none_or(|h| h == lease), "{path:?}");
                }
                assert_agree(&hold, &model, &path);
                if seen.insert(key(&model)) {
                    queue.push_back((hold, model, path));
                }
            }
        }
        // Free; the window; and every held combination of pin (2) × transaction (2) ×
        // long data of statements 1 and 2 (4) × a cursor of 1 (2), less the one with
        // nothing at all (which is released or is the window): 1 + 1 + 31.
        assert_eq!(seen.len(), 33, "states reached");
    }
}
