//! Classifies COM_QUERY text for the session effects the server's trackers do not report
//! (GET_LOCK, LOCK TABLES, SQL_CALC_FOUND_ROWS, HANDLER, XA, ...) and for reads of values
//! that belong to the connection (LAST_INSERT_ID(), ROW_COUNT(), warnings, ...).

use smallvec::SmallVec;

use super::lexer::{tokens_with, Kw, Token};
use super::scope::{DiagnosticsRead, ScopeRead};
use super::PinReason;
use crate::protocol::flavor::Flavor;

/// What the text of one statement says about the session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The pin the statement needs before it runs.
    pub pin: Option<PinReason>,
    /// It reads the session's last generated id: LAST_INSERT_ID(), @@identity,
    /// @@last_insert_id.
    pub reads_insert_id: bool,
    /// It reads what the session's previous statement left: ROW_COUNT(), FOUND_ROWS(),
    /// @@warning_count, @@error_count, SHOW WARNINGS / ERRORS, GET DIAGNOSTICS.
    pub reads_diagnostics: bool,
    /// KILL [CONNECTION | QUERY] n: the ids clients know are Sluice's, not the server's,
    /// so relaying it would kill someone else's backend work.
    pub kill: bool,
    /// It names a table or has a subquery (read from the text, like MariaDB's own test:
    /// tables referenced, or more than one query block).
    pub uses_tables: bool,
    /// It may set the session's LAST_INSERT_ID() without any OK packet saying so:
    /// `LAST_INSERT_ID(expr)`, `… RETURNING …` (MariaDB's INSERT / REPLACE / DELETE),
    /// `CALL`. Sluice then reads the value from the backend before it lets it go.
    pub sets_insert_id: bool,
    /// It is DDL (`CREATE`, `ALTER`, `DROP`, `RENAME`, `TRUNCATE`): statements prepared
    /// after it must not share server statements prepared before it.
    pub changes_schema: bool,
    /// Every statement in it is a diagnostics statement (`SHOW WARNINGS`, `SHOW ERRORS`,
    /// `SHOW COUNT(*) …`, `GET DIAGNOSTICS`), which reads the list without clearing it.
    pub diagnostics_only: bool,
}

impl Classification {
    /// Whether the statement clears the previous statement's warnings even when it leaves
    /// none itself. MariaDB clears them for a statement that names a table or has a
    /// subquery, and keeps them for one that does neither (`SELECT 1`, `SET …`, `DO 1`).
    /// MySQL clears them for every statement but the diagnostics statements, including
    /// `SELECT @@warning_count`, which answers the count first.
    pub fn clears_diagnostics(&self, flavor: Flavor) -> bool {
        match flavor {
            Flavor::MariaDb => self.uses_tables,
            Flavor::MySql => !self.diagnostics_only,
        }
    }
}

/// A COM_QUERY's text, lexed once: every question Sluice asks of a statement (what it
/// pins, whether Sluice answers it itself) reads these tokens, not the text again.
pub struct Lexed<'a> {
    sql: &'a [u8],
    toks: SmallVec<[Token<'a>; 24]>,
    seen: Seen,
}

/// What kinds of token a statement has, noted while it is lexed: most questions are
/// about a few keywords or variables that most statements do not have, and this
/// answers them without a pass over the tokens.
#[derive(Default, Clone, Copy)]
struct Seen {
    /// One bit per keyword (`Kw` as a number).
    words: u64,
    user_vars: bool,
    sys_vars: bool,
}

impl Seen {
    fn note(&mut self, token: &Token<'_>) {
        match token {
            Token::Word(_, kw) => self.words |= bit(*kw),
            Token::UserVar => self.user_vars = true,
            Token::SysVar(_) => self.sys_vars = true,
            _ => {}
        }
    }

    /// Whether any of `kws` is among the statement's words.
    fn any(&self, kws: u64) -> bool {
        self.words & kws != 0
    }
}

const fn bit(kw: Kw) -> u64 {
    1 << kw as u32
}

// `Seen` has one bit per keyword.
const _: () = assert!((Kw::Xa as u32) < 64);

impl<'a> Lexed<'a> {
    /// `backslash_escapes` is false when the session's sql_mode has NO_BACKSLASH_ESCAPES
    /// (status flag 0x0200).
    pub fn new(sql: &'a [u8], backslash_escapes: bool) -> Self {
        let mut toks = SmallVec::new();
        let mut seen = Seen::default();
        for token in tokens_with(sql, backslash_escapes) {
            seen.note(&token);
            toks.push(token);
        }
        Self { sql, toks, seen }
    }

    pub fn classify(&self) -> Classification {
        classify_tokens(&self.toks, self.seen)
    }

    /// See [`scope_read_query`].
    pub fn scope_read(&self) -> Option<(ScopeRead, Vec<u8>)> {
        scope_read_tokens(&self.toks)
    }

    /// See [`diagnostics_read`].
    pub fn diagnostics_read(&self) -> Option<DiagnosticsRead> {
        diagnostics_read_tokens(self.sql, &self.toks)
    }
}

/// Classifies one statement text. `backslash_escapes` is false when the session's
/// sql_mode has NO_BACKSLASH_ESCAPES (status flag 0x0200).
pub fn classify(sql: &[u8], backslash_escapes: bool) -> Classification {
    Lexed::new(sql, backslash_escapes).classify()
}

/// `seen` is of all of `toks` (a superset of each statement's): it only lets a question
/// be skipped for a statement whose answer cannot be yes.
fn classify_tokens(toks: &[Token<'_>], seen: Seen) -> Classification {
    // A COM_QUERY may hold several statements (CLIENT_MULTI_STATEMENTS): each counts.
    // A compound statement (CREATE PROCEDURE ... BEGIN ...; ...; END) is one statement
    // whose inner `;` separate nothing.
    let compound = toks.first().is_some_and(|t| t.is(Kw::Create)) && seen.any(bit(Kw::Begin));
    let mut whole = Some(toks);
    let mut split = toks.split(|t| *t == Token::Punct(b';'));
    let statements = std::iter::from_fn(|| if compound { whole.take() } else { split.next() });
    let mut class = Classification {
        diagnostics_only: true,
        ..Classification::default()
    };
    for stmt in statements {
        let Some(first) = stmt.first() else { continue };
        class.diagnostics_only &= is_diagnostics_statement(stmt);
        class.pin = class.pin.or(pin_for_tokens(stmt, seen));
        let (insert_id, diagnostics) = reads_connection_scope(stmt, seen);
        class.reads_insert_id |= insert_id;
        class.reads_diagnostics |= diagnostics;
        class.kill |= first.is(Kw::Kill);
        class.uses_tables |= uses_tables(stmt);
        class.sets_insert_id |= sets_insert_id(stmt, seen);
        class.changes_schema |= matches!(
            first,
            Token::Word(
                _,
                Kw::Create | Kw::Alter | Kw::Drop | Kw::Rename | Kw::Truncate
            )
        );
    }
    class
}

/// `LAST_INSERT_ID(` with an argument, `RETURNING`, or a `CALL`.
fn sets_insert_id(toks: &[Token<'_>], seen: Seen) -> bool {
    toks[0].is(Kw::Call)
        || seen.any(bit(Kw::Returning) | bit(Kw::LastInsertId))
            && toks.iter().enumerate().any(|(i, t)| {
                t.is(Kw::Returning)
                    || (t.is(Kw::LastInsertId)
                        && toks.get(i + 1) == Some(&Token::Punct(b'('))
                        && toks.get(i + 2).is_some_and(|n| *n != Token::Punct(b')')))
            })
}

/// `SHOW WARNINGS …`, `SHOW ERRORS …`, `SHOW COUNT(*) WARNINGS|ERRORS`, `GET [CURRENT]
/// DIAGNOSTICS …`: statements that read the diagnostics area and leave it as it was.
fn is_diagnostics_statement(toks: &[Token<'_>]) -> bool {
    let word = |i: usize, k: Kw| toks.get(i).is_some_and(|t| t.is(k));
    if word(0, Kw::Get) {
        return word(1, Kw::Diagnostics) || (word(1, Kw::Current) && word(2, Kw::Diagnostics));
    }
    if !word(0, Kw::Show) {
        return false;
    }
    let listed = if word(1, Kw::Count) { 5 } else { 1 };
    word(listed, Kw::Warnings) || word(listed, Kw::Errors)
}

/// For exactly `SELECT FOUND_ROWS() [[AS] alias]` or `SELECT ROW_COUNT() [[AS] alias]`
/// (the forms applications use): which, and the column name the server would give the
/// result (the alias, or the call as written). Sluice answers these itself when the
/// session's values are not on the backend it holds.
pub fn scope_read_query(sql: &[u8], backslash_escapes: bool) -> Option<(ScopeRead, Vec<u8>)> {
    Lexed::new(sql, backslash_escapes).scope_read()
}

/// `toks` without one trailing `;`.
fn without_semicolon<'t, 'a>(toks: &'t [Token<'a>]) -> &'t [Token<'a>] {
    match toks.split_last() {
        Some((Token::Punct(b';'), rest)) => rest,
        _ => toks,
    }
}

fn scope_read_tokens(toks: &[Token<'_>]) -> Option<(ScopeRead, Vec<u8>)> {
    let toks = without_semicolon(toks);
    let (read, call, alias) = match toks {
        [select, Token::Word(f, kw), Token::Punct(b'('), Token::Punct(b')'), alias @ ..]
            if select.is(Kw::Select) =>
        {
            let read = match kw {
                Kw::FoundRows => ScopeRead::FoundRows,
                Kw::RowCount => ScopeRead::RowCount,
                _ => return None,
            };
            (read, f, alias)
        }
        _ => return None,
    };
    let name = |t: &Token<'_>| match t {
        Token::Word(w, _) | Token::Quoted(w) => Some(w.to_vec()),
        _ => None,
    };
    let column = match alias {
        [] => Some([*call, b"()"].concat()),
        [a] => name(a),
        [kw, a] if kw.is(Kw::As) => name(a),
        _ => None,
    }?;
    Some((read, column))
}

/// Exactly `SHOW WARNINGS`, `SHOW ERRORS`, `SELECT @@warning_count` or
/// `SELECT @@error_count`, which Sluice can answer with the diagnostics it kept.
pub fn diagnostics_read(sql: &[u8], backslash_escapes: bool) -> Option<DiagnosticsRead> {
    Lexed::new(sql, backslash_escapes).diagnostics_read()
}

fn diagnostics_read_tokens(sql: &[u8], toks: &[Token<'_>]) -> Option<DiagnosticsRead> {
    match without_semicolon(toks) {
        [show, what] if show.is(Kw::Show) && what.is(Kw::Warnings) => {
            Some(DiagnosticsRead::ShowWarnings)
        }
        [show, what] if show.is(Kw::Show) && what.is(Kw::Errors) => {
            Some(DiagnosticsRead::ShowErrors)
        }
        // `@@name` unqualified: the column is named as written.
        [select, Token::SysVar(name)] if select.is(Kw::Select) && !sql.contains(&b'.') => {
            let column = [&b"@@"[..], name].concat();
            if name.eq_ignore_ascii_case(b"warning_count") {
                Some(DiagnosticsRead::WarningCount(column))
            } else if name.eq_ignore_ascii_case(b"error_count") {
                Some(DiagnosticsRead::ErrorCount(column))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether a statement names a table or holds more than one query block (a subquery,
/// a UNION): what makes the server clear the diagnostics of the previous statement.
fn uses_tables(toks: &[Token<'_>]) -> bool {
    let mut selects = 0;
    for (i, t) in toks.iter().enumerate() {
        let next = toks.get(i + 1);
        let Token::Word(_, kw) = t else { continue };
        let named_table = match kw {
            Kw::From => !next.is_some_and(|n| n.is(Kw::Dual)),
            // `SELECT ... INTO @var` names no table.
            Kw::Into => !matches!(next, Some(Token::UserVar) | None),
            Kw::Update | Kw::Join | Kw::Table | Kw::Union => true,
            Kw::Select => {
                selects += 1;
                false
            }
            _ => false,
        };
        if named_table {
            return true;
        }
    }
    selects > 1
}

/// The pin a statement needs before it runs, if any.
pub fn pin_for(sql: &[u8], backslash_escapes: bool) -> Option<PinReason> {
    classify(sql, backslash_escapes).pin
}

/// (reads the last insert id, reads the previous statement's diagnostics)
fn reads_connection_scope(toks: &[Token<'_>], seen: Seen) -> (bool, bool) {
    let (first, second) = (&toks[0], toks.get(1));
    let mut diagnostics = (first.is(Kw::Show)
        && second
            .is_some_and(|t| matches!(t, Token::Word(_, Kw::Warnings | Kw::Errors | Kw::Count))))
        || (first.is(Kw::Get) && toks.iter().take(4).any(|t| t.is(Kw::Diagnostics)));
    let mut insert_id = false;
    let calls = bit(Kw::LastInsertId) | bit(Kw::RowCount) | bit(Kw::FoundRows);
    if !seen.sys_vars && !seen.any(calls) {
        return (insert_id, diagnostics);
    }
    for (i, t) in toks.iter().enumerate() {
        let called = || toks.get(i + 1) == Some(&Token::Punct(b'('));
        match t {
            Token::Word(_, Kw::LastInsertId) => insert_id |= called(),
            Token::Word(_, Kw::RowCount | Kw::FoundRows) => diagnostics |= called(),
            Token::SysVar(v) => {
                let named =
                    |names: [&str; 2]| names.iter().any(|n| v.eq_ignore_ascii_case(n.as_bytes()));
                insert_id |= named(["identity", "last_insert_id"]);
                diagnostics |= named(["warning_count", "error_count"]);
            }
            _ => {}
        }
    }
    (insert_id, diagnostics)
}

fn pin_for_tokens(toks: &[Token<'_>], seen: Seen) -> Option<PinReason> {
    let first = toks.first()?;
    let second = toks.get(1);
    let second_is = |k: Kw| second.is_some_and(|t| t.is(k));

    // Statement-level effects, decided by the leading keywords.
    let Token::Word(_, lead) = first else {
        return pin_anywhere(toks, seen, false);
    };
    match lead {
        Kw::Lock => return Some(PinReason::TableLock),
        Kw::Flush
            if toks.windows(2).any(|w| {
                (w[0].is(Kw::Read) && w[1].is(Kw::Lock))
                    || (w[0].is(Kw::For) && w[1].is(Kw::Export))
            }) =>
        {
            return Some(PinReason::TableLock)
        }
        Kw::Handler => return Some(PinReason::Handler),
        Kw::Xa => return Some(PinReason::Xa),
        Kw::Prepare | Kw::Execute | Kw::Deallocate => return Some(PinReason::SqlPrepare),
        Kw::Create if second_is(Kw::Temporary) => return Some(PinReason::TemporaryTable),
        Kw::Set if second_is(Kw::Transaction) => return Some(PinReason::NextTransaction),
        _ => {}
    }
    pin_anywhere(toks, seen, *lead == Kw::Set)
}

/// Effects anywhere in the statement. Reading a user variable is harmless (backends
/// never carry another client's: pinned ones are reset); assigning one pins.
fn pin_anywhere(toks: &[Token<'_>], seen: Seen, is_set: bool) -> Option<PinReason> {
    let pinning = bit(Kw::SqlCalcFoundRows) | bit(Kw::GetLock) | bit(Kw::ReleaseLock);
    if !seen.user_vars && !seen.any(pinning) {
        return None;
    }
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::UserVar if assigns_user_variable(toks, i, is_set) => {
                return Some(PinReason::UserVariable)
            }
            Token::Word(_, Kw::SqlCalcFoundRows) => return Some(PinReason::FoundRows),
            Token::Word(_, Kw::GetLock | Kw::ReleaseLock)
                if toks.get(i + 1) == Some(&Token::Punct(b'(')) =>
            {
                return Some(PinReason::NamedLock)
            }
            _ => {}
        }
    }
    None
}

/// Whether the user variable at `toks[i]` is assigned: `SET @x = …`, `@x := …` or
/// `INTO @a, @x`.
fn assigns_user_variable(toks: &[Token<'_>], i: usize, is_set: bool) -> bool {
    is_set
        || (toks.get(i + 1) == Some(&Token::Punct(b':'))
            && toks.get(i + 2) == Some(&Token::Punct(b'=')))
        || toks[..i]
            .iter()
            .rev()
            .find(|t| !matches!(t, Token::UserVar | Token::Punct(b',')))
            .is_some_and(|t| t.is(Kw::Into))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_clear_the_previous_diagnostics() {
        let clears = |s: &str| classify(s.as_bytes(), true).clears_diagnostics(Flavor::MariaDb);
        for sql in [
            "SELECT COUNT(*) FROM menus",
            "update menus set price = 1",
            "INSERT INTO t VALUES (1)",
            "SELECT (SELECT 1)",
            "SELECT 1 UNION SELECT 2",
            "TRUNCATE TABLE t",
            "SELECT 1; SELECT * FROM t",
        ] {
            assert!(clears(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "SELECT 1 FROM DUAL",
            "DO 1",
            "SET @a = 1",
            "SELECT 1 INTO @a",
            "SET NAMES utf8mb4",
            "SELECT 'FROM t'",
            "BEGIN",
        ] {
            assert!(!clears(sql), "{sql}");
        }
    }

    /// As measured on MySQL 9.7: only the diagnostics statements keep the list.
    #[test]
    fn on_mysql_every_statement_but_the_diagnostics_ones_clears() {
        let clears = |s: &str| classify(s.as_bytes(), true).clears_diagnostics(Flavor::MySql);
        for sql in [
            "SELECT 1",
            "DO 1",
            "SET @a = 1",
            "SELECT @@warning_count",
            "BEGIN",
            "SHOW VARIABLES LIKE 'x'",
            "SHOW WARNINGS; SELECT 1",
        ] {
            assert!(clears(sql), "{sql}");
        }
        for sql in [
            "SHOW WARNINGS",
            "show errors limit 1",
            "SHOW COUNT(*) WARNINGS",
            "GET DIAGNOSTICS @n = NUMBER",
            "GET CURRENT DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
        ] {
            assert!(!clears(sql), "{sql}");
        }
    }

    #[test]
    fn recognises_plain_diagnostics_reads() {
        let d = |s: &str| diagnostics_read(s.as_bytes(), true);
        assert_eq!(d("SHOW WARNINGS"), Some(DiagnosticsRead::ShowWarnings));
        assert_eq!(
            d("show /* x */ warnings;"),
            Some(DiagnosticsRead::ShowWarnings)
        );
        assert_eq!(d("SHOW ERRORS"), Some(DiagnosticsRead::ShowErrors));
        assert_eq!(
            d("select @@Warning_Count"),
            Some(DiagnosticsRead::WarningCount(b"@@Warning_Count".to_vec()))
        );
        assert_eq!(
            d("SELECT @@error_count"),
            Some(DiagnosticsRead::ErrorCount(b"@@error_count".to_vec()))
        );
        for other in [
            "SHOW WARNINGS LIMIT 1",
            "SHOW COUNT(*) WARNINGS",
            "SELECT @@session.warning_count",
            "SELECT @@warning_count + 1",
            "SELECT @@sql_mode",
        ] {
            assert_eq!(d(other), None, "{other}");
        }
    }

    #[test]
    fn recognises_select_found_rows_and_its_column_name() {
        let q = |s: &str| {
            scope_read_query(s.as_bytes(), true).map(|(_, n)| String::from_utf8(n).unwrap())
        };
        assert_eq!(
            scope_read_query(b"SELECT ROW_COUNT() n", true),
            Some((ScopeRead::RowCount, b"n".to_vec()))
        );
        assert_eq!(q("SELECT FOUND_ROWS()").as_deref(), Some("FOUND_ROWS()"));
        assert_eq!(q("select found_rows() ;").as_deref(), Some("found_rows()"));
        assert_eq!(q("SELECT FOUND_ROWS() AS total").as_deref(), Some("total"));
        assert_eq!(
            q("SELECT /* n */ FOUND_ROWS() `all rows`").as_deref(),
            Some("all rows")
        );
        for other in [
            "SELECT FOUND_ROWS() + 1",
            "SELECT FOUND_ROWS(), 1",
            "SELECT FOUND_ROWS() AS 'x'",
            "SELECT * FROM t WHERE FOUND_ROWS() = 1",
            "SELECT LAST_INSERT_ID()",
            "SELECT FOUND_ROWS(); SELECT 1",
        ] {
            assert_eq!(q(other), None, "{other}");
        }
    }

    #[test]
    fn kill_is_recognised() {
        assert!(classify(b" /* x */ kill query 12", true).kill);
        assert!(!classify(b"SELECT 'kill'", true).kill);
        assert!(classify(b"SELECT 1; KILL 5", true).kill);
        let proc = b"CREATE PROCEDURE p() BEGIN SELECT 1; KILL 5; END";
        assert!(!classify(proc, true).kill);
    }

    #[test]
    fn ddl_is_recognised() {
        for sql in [
            "CREATE TABLE t (a INT)",
            "alter table t add b int",
            "DROP TABLE t",
            "RENAME TABLE a TO b",
            "TRUNCATE t",
            "SELECT 1; DROP TABLE t",
        ] {
            assert!(classify(sql.as_bytes(), true).changes_schema, "{sql}");
        }
        for sql in [
            "SELECT 'DROP TABLE t'",
            "INSERT INTO t VALUES (1)",
            "/* DROP */ SELECT 1",
        ] {
            assert!(!classify(sql.as_bytes(), true).changes_schema, "{sql}");
        }
    }

    #[test]
    fn insert_id_and_diagnostics_are_told_apart() {
        let c = classify(b"SELECT LAST_INSERT_ID()", true);
        assert!(c.reads_insert_id && !c.reads_diagnostics && !c.sets_insert_id);
        for sql in [
            "SELECT LAST_INSERT_ID(42)",
            "do last_insert_id(55)",
            "INSERT INTO t (a) VALUES (1) RETURNING id",
            "UPDATE t SET id = LAST_INSERT_ID(id + 1)",
            "CALL add_item(1)",
        ] {
            assert!(classify(sql.as_bytes(), true).sets_insert_id, "{sql}");
        }
        for sql in [
            "SELECT 'LAST_INSERT_ID(1)'",
            "INSERT INTO t VALUES (1)",
            "SELECT 1",
        ] {
            assert!(!classify(sql.as_bytes(), true).sets_insert_id, "{sql}");
        }
        let c = classify(b"SHOW WARNINGS", true);
        assert!(!c.reads_insert_id && c.reads_diagnostics);
    }

    #[test]
    fn connection_scope_reads() {
        for sql in [
            "SELECT LAST_INSERT_ID()",
            "select row_count()",
            "SELECT FOUND_ROWS()",
            "SELECT @@identity",
            "SELECT @@session.warning_count",
            "SHOW WARNINGS",
            "show errors limit 1",
            "SHOW COUNT(*) WARNINGS",
            "GET DIAGNOSTICS @n = NUMBER",
            "INSERT INTO t (parent) VALUES (LAST_INSERT_ID())",
        ] {
            let c = classify(sql.as_bytes(), true);
            assert!(c.reads_insert_id || c.reads_diagnostics, "{sql}");
        }
        for sql in [
            "SELECT * FROM menus",
            "SELECT 'LAST_INSERT_ID()'",
            "SHOW TABLES",
            "SELECT last_insert_id FROM t",
        ] {
            let c = classify(sql.as_bytes(), true);
            assert!(!c.reads_insert_id && !c.reads_diagnostics, "{sql}");
        }
    }

    #[test]
    fn pins_what_trackers_miss() {
        let cases: &[(&str, Option<PinReason>)] = &[
            ("SELECT * FROM menus", None),
            ("select get_lock('a', 1)", Some(PinReason::NamedLock)),
            ("SELECT 'get_lock(' FROM t", None),
            ("SELECT `get_lock` FROM t", None),
            ("/* LOCK TABLES */ SELECT 1", None),
            ("lock tables t write", Some(PinReason::TableLock)),
            ("FLUSH TABLES WITH READ LOCK", Some(PinReason::TableLock)),
            ("FLUSH TABLES t FOR EXPORT", Some(PinReason::TableLock)),
            ("FLUSH STATUS", None),
            (
                "SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1",
                Some(PinReason::FoundRows),
            ),
            ("HANDLER t OPEN", Some(PinReason::Handler)),
            ("xa start 'x'", Some(PinReason::Xa)),
            ("SET @x := 1", Some(PinReason::UserVariable)),
            ("SELECT @x", None),
            ("SELECT @x := 1", Some(PinReason::UserVariable)),
            ("SELECT 1, 2 INTO @x, @y", Some(PinReason::UserVariable)),
            ("SELECT 1 INTO @x", Some(PinReason::UserVariable)),
            ("SELECT @a = 1", None),
            ("SELECT 'a@b.c'", None),
            ("SELECT @@version", None),
            ("PREPARE s FROM 'SELECT 1'", Some(PinReason::SqlPrepare)),
            (
                "CREATE TEMPORARY TABLE t (a int)",
                Some(PinReason::TemporaryTable),
            ),
            ("CREATE TABLE t (a int)", None),
            (
                "SET TRANSACTION READ ONLY",
                Some(PinReason::NextTransaction),
            ),
            ("SET SESSION TRANSACTION READ ONLY", None),
            ("/*!40000 LOCK TABLES t READ */", Some(PinReason::TableLock)),
            ("SELECT 1; LOCK TABLES t READ", Some(PinReason::TableLock)),
            ("SELECT ';'; SET @x = 1", Some(PinReason::UserVariable)),
            ("SELECT 1;", None),
            ("", None),
        ];
        for (sql, want) in cases {
            assert_eq!(pin_for(sql.as_bytes(), true), *want, "{sql}");
        }
    }
}
