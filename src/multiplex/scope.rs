//! Values that belong to the connection and that Sluice keeps for a session, so that
//! `SELECT FOUND_ROWS()`, `SELECT ROW_COUNT()`, `SHOW WARNINGS` and the like get the
//! session's own values even on a backend whose last statement was another client's.

use crate::protocol::result_set::{
    text_result, Column, Ending, NOT_NULL, TYPE_LONG, TYPE_VAR_STRING, UNSIGNED,
};

/// A read Sluice can answer itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRead {
    FoundRows,
    RowCount,
}

/// A read of the previous statement's diagnostics that Sluice can answer from what it
/// kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagnosticsRead {
    ShowWarnings,
    ShowErrors,
    /// `SELECT @@warning_count`, with the column name as written.
    WarningCount(Vec<u8>),
    ErrorCount(Vec<u8>),
}

/// A statement's diagnostics as the server listed them before its backend went back to
/// the pool: the whole `SHOW WARNINGS` and `SHOW ERRORS` responses, and their counts.
#[derive(Debug, Clone)]
pub struct KeptDiagnostics {
    pub warnings: Vec<u8>,
    pub errors: Vec<u8>,
    pub warning_count: u64,
    pub error_count: u64,
}

/// MySQL (8.0.17 and later) warns about every `FOUND_ROWS()`; a `SELECT FOUND_ROWS()`
/// Sluice answers itself must leave this warning as the server would.
pub const FOUND_ROWS_DEPRECATED: (u16, &str) = (
    1287,
    "FOUND_ROWS() is deprecated and will be removed in a future release. Consider using COUNT(*) instead.",
);

impl KeptDiagnostics {
    /// The diagnostics of a statement that left one warning: what `SHOW WARNINGS` and
    /// `SHOW ERRORS` would list, as result sets for a client with these capabilities
    /// (`collation` for the text columns, as the session's results are encoded).
    pub fn one_warning(code: u16, message: &str, collation: u16, end: Ending) -> Self {
        let text = |name: &'static [u8], length| Column {
            name,
            kind: TYPE_VAR_STRING,
            collation,
            length,
            flags: NOT_NULL,
        };
        let columns = [
            text(b"Level", 28),
            Column {
                name: b"Code",
                kind: TYPE_LONG,
                collation: 63,
                length: 4,
                flags: NOT_NULL | UNSIGNED,
            },
            text(b"Message", 2048),
        ];
        let code = code.to_string();
        let row: &[Option<&[u8]>] = &[
            Some(b"Warning"),
            Some(code.as_bytes()),
            Some(message.as_bytes()),
        ];
        // Listing diagnostics leaves no warning of its own.
        let end = Ending { warnings: 0, ..end };
        Self {
            warnings: text_result(&columns, &[row], end),
            errors: text_result(&columns, &[], end),
            warning_count: 1,
            error_count: 0,
        }
    }
}

/// The session's FOUND_ROWS() and ROW_COUNT(), and whether the held backend knows them.
#[derive(Debug, Default)]
pub struct ScopeValues {
    found_rows: u64,
    row_count: i64,
    /// The held backend ran the session's last result set.
    found_rows_here: bool,
    /// The held backend ran the session's last statement.
    row_count_here: bool,
}

impl ScopeValues {
    /// A backend was borrowed: it knows neither.
    pub fn borrowed(&mut self) {
        self.found_rows_here = false;
        self.row_count_here = false;
    }

    /// A statement ran on the held backend: the rows of its last result set, if any,
    /// and its ROW_COUNT() (-1 after a result set or an error, else affected rows).
    pub fn ran(&mut self, result_rows: Option<u64>, row_count: Option<i64>) {
        if let Some(rows) = result_rows {
            self.found_rows = rows;
            self.found_rows_here = true;
        }
        if let Some(count) = row_count {
            self.row_count = count;
            self.row_count_here = true;
        }
    }

    /// The value to answer `read` with, or None when the held backend (`holding`) has
    /// the session's own and the statement should run there.
    pub fn answer(&mut self, read: ScopeRead, holding: bool) -> Option<i64> {
        let value = match read {
            ScopeRead::FoundRows if !(holding && self.found_rows_here) => {
                i64::try_from(self.found_rows).unwrap_or(i64::MAX)
            }
            ScopeRead::RowCount if !(holding && self.row_count_here) => self.row_count,
            _ => return None,
        };
        // The answer is itself a one-row result set, which the backend never saw.
        self.found_rows = 1;
        self.row_count = -1;
        self.found_rows_here = false;
        self.row_count_here = false;
        Some(value)
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_off_the_backend_and_defers_to_it_when_held() {
        let mut s = ScopeValues::default();
        s.borrowed();
        s.ran(Some(3), Some(-1));
        // Still holding the backend that ran it: it knows.
        assert_eq!(s.answer(ScopeRead::FoundRows, true), None);
        // Released: Sluice answers.
        assert_eq!(s.answer(ScopeRead::FoundRows, false), Some(3));
        // That answer was a one-row result set.
        assert_eq!(s.answer(ScopeRead::FoundRows, true), Some(1));
        assert_eq!(s.answer(ScopeRead::RowCount, false), Some(-1));
        s.borrowed();
        s.ran(None, Some(2));
        assert_eq!(s.answer(ScopeRead::RowCount, true), None);
        assert_eq!(s.answer(ScopeRead::RowCount, false), Some(2));
    }

    #[test]
    fn found_rows_survives_statements_without_result_sets() {
        let mut s = ScopeValues::default();
        s.ran(Some(9), Some(-1));
        s.borrowed();
        s.ran(None, Some(1));
        // This backend ran the UPDATE, not the SELECT.
        assert_eq!(s.answer(ScopeRead::FoundRows, true), Some(9));
    }
}
