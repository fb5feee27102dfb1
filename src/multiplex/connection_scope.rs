//! A session's connection-scoped values: `LAST_INSERT_ID()`, and the diagnostics of its
//! last statement (warnings, `ROW_COUNT()`, `FOUND_ROWS()`). On a direct connection they
//! live in the server's session; through Sluice they live on whichever backend ran the
//! session's last statement, so Sluice tracks whose values the held backend has, reads
//! them before the backend goes back to the pool, and restores them where a statement
//! reads them. Pure bookkeeping: the session sends what this decides.

use super::scope::{KeptDiagnostics, ScopeValues};

/// What the session's values are, and whose the held backend's are.
#[derive(Debug, Default)]
pub struct ConnectionScope {
    /// The session's LAST_INSERT_ID(), from the OK packets of its own statements (or
    /// read from the backend, or restored).
    last_insert_id: u64,
    /// The held backend's LAST_INSERT_ID() is this session's (restored, or set by its
    /// own statement), not the previous user's.
    insert_id_ours: bool,
    /// The running statement may set LAST_INSERT_ID() with no OK packet saying so
    /// (`LAST_INSERT_ID(expr)`, `RETURNING`, a procedure).
    sets_insert_id: bool,
    /// The held backend holds the session's LAST_INSERT_ID(), a value Sluice has not
    /// seen: it is read before the backend goes back to the pool.
    insert_id_pending: bool,
    /// The held backend's warnings, ROW_COUNT() and FOUND_ROWS() are this session's.
    diagnostics_ours: bool,
    /// The last statement left warnings or an error on the held backend.
    diagnostics_pending: bool,
    /// The session's FOUND_ROWS() and ROW_COUNT(), for when its backend has moved on.
    pub values: ScopeValues,
    /// The diagnostics as the server listed them, read before the backend went back to
    /// the pool, for a later `SHOW WARNINGS` and the like.
    pub kept: Option<KeptDiagnostics>,
}

/// What a statement that ran left, as its response said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ran {
    /// The insert id an OK packet carried (0: none).
    pub last_insert_id: u64,
    /// It left warnings, affected rows or an insert id: values of its own.
    pub leaves_connection_scope: bool,
    /// It left warnings or an error.
    pub diagnostics: bool,
    /// Rows of its last result set, for FOUND_ROWS().
    pub result_rows: Option<u64>,
    /// Its ROW_COUNT(), when an OK said.
    pub row_count: Option<i64>,
}

/// The statement that gives the held backend the session's values before a statement
/// that reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub sql: String,
    /// It also clears the previous user's diagnostics.
    resets_diagnostics: bool,
}

impl ConnectionScope {
    pub fn last_insert_id(&self) -> u64 {
        self.last_insert_id
    }

    /// A backend was borrowed: its values are its previous user's.
    pub fn borrowed(&mut self) {
        self.insert_id_ours = false;
        self.diagnostics_ours = false;
        self.values.borrowed();
    }

    /// A statement is about to run; `sets_insert_id` as its text says.
    pub fn running(&mut self, sets_insert_id: bool) {
        self.sets_insert_id = sets_insert_id;
    }

    /// The command is over, whatever its outcome.
    pub fn finished(&mut self) {
        self.sets_insert_id = false;
    }

    /// What to run before a statement that reads the insert id (`reads_id`) or the
    /// previous diagnostics (`reads_diagnostics`), or any statement of a pinned session
    /// (whose prepared statements may read them unseen), so that the held backend holds
    /// the session's values and not its previous user's.
    ///
    /// `DO LAST_INSERT_ID(n)` restores the id; naming a table (here a derived one) also
    /// clears the previous user's warnings, ROW_COUNT() and FOUND_ROWS(), which a bare
    /// DO would not (it keeps warnings). The bare form keeps the session's own warnings
    /// when only the id needs restoring.
    pub fn restore(
        &self,
        reads_id: bool,
        reads_diagnostics: bool,
        pinned: bool,
    ) -> Option<Restore> {
        let reset_diagnostics = (reads_diagnostics || pinned) && !self.diagnostics_ours;
        let restore_id = (reads_id || pinned) && !self.insert_id_ours;
        let id = self.last_insert_id;
        let sql = match (reset_diagnostics, restore_id) {
            (true, _) => {
                format!("DO LAST_INSERT_ID({id}), (SELECT 1 FROM (SELECT 1) AS sluice_reset)")
            }
            (false, true) => format!("DO LAST_INSERT_ID({id})"),
            (false, false) => return None,
        };
        Some(Restore {
            sql,
            resets_diagnostics: reset_diagnostics,
        })
    }

    /// The restore ran.
    pub fn restored(&mut self, restore: &Restore) {
        self.insert_id_ours = true;
        self.diagnostics_ours |= restore.resets_diagnostics;
    }

    /// A statement ran on the held backend (`holding`: it is still held, the command
    /// did not lose it). True when the backend should be kept a moment for the values
    /// it now holds.
    pub fn ran(&mut self, ran: Ran, holding: bool) -> bool {
        if ran.last_insert_id != 0 {
            self.last_insert_id = ran.last_insert_id;
            self.insert_id_pending = false;
        } else if self.sets_insert_id && holding {
            // The backend has the session's id now, whatever it was before.
            self.insert_id_pending = true;
            self.insert_id_ours = true;
        }
        self.values.ran(ran.result_rows, ran.row_count);
        self.diagnostics_pending = ran.diagnostics;
        // A statement that left warnings, affected rows or an insert id replaced the
        // previous user's diagnostics with this session's.
        self.insert_id_ours |= ran.last_insert_id != 0;
        self.diagnostics_ours |= ran.leaves_connection_scope;
        ran.leaves_connection_scope || self.insert_id_pending
    }

    /// The held backend failed and is gone: an id only it knew is lost with it (the
    /// last one seen stands).
    pub fn backend_lost(&mut self) {
        self.insert_id_pending = false;
    }

    /// The held backend has diagnostics of the session's last statement that Sluice
    /// has not read.
    pub fn diagnostics_pending(&self) -> bool {
        self.diagnostics_pending
    }

    /// Something on the held backend must be read before it goes back.
    pub fn pending(&self) -> bool {
        self.diagnostics_pending || self.insert_id_pending
    }

    /// Takes the duty to read the held backend's diagnostics, if any.
    pub fn take_diagnostics_pending(&mut self) -> bool {
        std::mem::take(&mut self.diagnostics_pending)
    }

    /// Takes the duty to read the held backend's insert id, if any.
    pub fn take_insert_id_pending(&mut self) -> bool {
        std::mem::take(&mut self.insert_id_pending)
    }

    /// The insert id read from the backend (None: unreadable, the last one stands).
    pub fn read_insert_id(&mut self, value: Option<u64>) {
        self.last_insert_id = value.unwrap_or(self.last_insert_id);
    }

    /// Sets the pending duty to read diagnostics back (a `SHOW WARNINGS` through the
    /// backend reads them without clearing them).
    pub fn set_diagnostics_pending(&mut self, pending: bool) {
        self.diagnostics_pending = pending;
    }

    /// A fresh session (COM_RESET_CONNECTION, COM_CHANGE_USER, the end).
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_backend_gets_the_sessions_values_only_where_they_are_read() {
        let mut s = ConnectionScope::default();
        s.ran(
            Ran {
                last_insert_id: 7,
                leaves_connection_scope: true,
                ..Ran::default()
            },
            true,
        );
        s.borrowed();
        assert_eq!(s.restore(false, false, false), None);
        let id = s.restore(true, false, false).unwrap();
        assert_eq!(id.sql, "DO LAST_INSERT_ID(7)");
        let both = s.restore(true, true, false).unwrap();
        assert!(both.sql.contains("sluice_reset"));
        // Pinned: everything, since prepared statements may read them unseen.
        assert_eq!(s.restore(false, false, true), Some(both.clone()));
        s.restored(&both);
        assert_eq!(s.restore(true, true, true), None);
    }

    #[test]
    fn an_insert_id_no_ok_packet_carried_is_read_before_the_backend_goes_back() {
        let mut s = ConnectionScope::default();
        s.running(true);
        let keep = s.ran(Ran::default(), true);
        assert!(keep && s.pending());
        s.finished();
        assert!(s.take_insert_id_pending());
        s.read_insert_id(Some(42));
        assert_eq!(s.last_insert_id(), 42);
        assert!(!s.pending());
        // Unreadable: the last one stands.
        s.read_insert_id(None);
        assert_eq!(s.last_insert_id(), 42);
    }

    #[test]
    fn a_lost_backend_loses_only_what_it_alone_knew() {
        let mut s = ConnectionScope::default();
        s.ran(
            Ran {
                last_insert_id: 3,
                ..Ran::default()
            },
            true,
        );
        s.running(true);
        s.ran(Ran::default(), true);
        s.backend_lost();
        assert!(!s.pending());
        assert_eq!(s.last_insert_id(), 3);
    }

    #[test]
    fn statements_that_leave_nothing_release_the_backend_at_once() {
        let mut s = ConnectionScope::default();
        assert!(!s.ran(Ran::default(), true));
        let warned = Ran {
            leaves_connection_scope: true,
            diagnostics: true,
            ..Ran::default()
        };
        assert!(s.ran(warned, true));
        assert!(s.diagnostics_pending());
        assert!(s.take_diagnostics_pending());
        assert!(!s.diagnostics_pending());
        s.reset();
        assert_eq!(s.last_insert_id(), 0);
        assert!(s.kept.is_none());
    }
}
