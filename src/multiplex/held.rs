//! Which of a session's prepared statements keep it on its backend: those with long data
//! waiting for their execute (COM_STMT_SEND_LONG_DATA), and those with an open cursor.
//! Both live in the server's statement, so the session must stay where they are until the
//! execute, the last row, a reset or a close of *that* statement; other statements of
//! the session run and finish as usual without ending it.

/// Client statement ids (Sluice's) with state on the held backend. A session has few at
/// once, so small vectors beat sets.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub struct HeldStatements {
    long_data: Vec<u32>,
    cursors: Vec<u32>,
}

impl HeldStatements {
    /// Nothing of the session's statements is on the backend.
    pub fn is_empty(&self) -> bool {
        self.long_data.is_empty() && self.cursors.is_empty()
    }

    /// Long data was sent for `id`.
    pub fn long_data(&mut self, id: u32) {
        if !self.long_data.contains(&id) {
            self.long_data.push(id);
        }
    }

    /// `id` was executed: its long data was consumed, and a previous cursor closed; the
    /// server opened a new one when the response says so.
    pub fn executed(&mut self, id: u32, cursor_opened: bool) {
        self.long_data.retain(|&i| i != id);
        self.cursors.retain(|&i| i != id);
        if cursor_opened {
            self.cursors.push(id);
        }
    }

    /// Rows of `id`'s cursor were fetched; `open` is whether the cursor has more.
    pub fn fetched(&mut self, id: u32, open: bool) {
        if !open {
            self.cursors.retain(|&i| i != id);
        }
    }

    /// COM_STMT_RESET or COM_STMT_CLOSE of `id` dropped its long data and cursor; true
    /// when it held any.
    pub fn forget(&mut self, id: u32) -> bool {
        let before = self.long_data.len() + self.cursors.len();
        self.long_data.retain(|&i| i != id);
        self.cursors.retain(|&i| i != id);
        before != self.long_data.len() + self.cursors.len()
    }

    pub fn has_long_data(&self, id: u32) -> bool {
        self.long_data.contains(&id)
    }

    pub fn has_cursor(&self, id: u32) -> bool {
        self.cursors.contains(&id)
    }

    /// Every statement id with state on the backend.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.long_data.iter().chain(&self.cursors).copied()
    }

    pub fn clear(&mut self) {
        self.long_data.clear();
        self.cursors.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_finishing_does_not_release_another() {
        let mut h = HeldStatements::default();
        h.long_data(1);
        h.executed(2, true);
        // Statement 3 runs and finishes: 1 and 2 still hold the backend.
        h.executed(3, false);
        assert!(!h.is_empty());
        h.executed(1, false);
        assert!(h.has_cursor(2));
        h.fetched(2, true);
        assert!(!h.is_empty());
        h.fetched(2, false);
        assert!(h.is_empty());
    }

    #[test]
    fn reset_and_close_forget_only_their_statement() {
        let mut h = HeldStatements::default();
        h.long_data(1);
        h.long_data(1);
        h.executed(2, true);
        assert!(!h.forget(7));
        assert!(h.forget(1));
        assert_eq!(h.ids().collect::<Vec<_>>(), vec![2]);
        // Re-executing closes the old cursor; this time none opens.
        h.executed(2, false);
        assert!(h.is_empty());
    }
}
