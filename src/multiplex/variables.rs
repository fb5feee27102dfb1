//! The session-state model: the system variables a session changed, and the one `SET`
//! statement that carries a client's values to whichever backend runs its next statement.
//!
//! Values are kept exactly as the server's tracker reported them (`OFF`, `+09:00`, the
//! expanded sql_mode list), so a client and a backend that ran the same `SET` compare
//! equal. Both sides store only differences from the *baseline*: the values a fresh
//! backend connection of the same pool partition has (handshake character set,
//! `init_query`, the server's globals), read once with `SHOW SESSION VARIABLES`.

use std::collections::BTreeMap;

/// System variables that differ from the baseline, by name. Sorted, so replays are
/// deterministic and `character_set_*` come before `collation_connection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Variables {
    values: BTreeMap<Box<str>, Box<[u8]>>,
}

/// Variables whose tracked value cannot be carried to another connection: one-shot
/// values consumed by the next statement, values tied to the connection itself or to
/// replication (MySQL's binary-log applier sets these; a replay would need privileges
/// and change what the next statement logs), and the trackers Sluice relies on.
const NOT_REPLAYABLE: &[&str] = &[
    "insert_id",
    "last_insert_id",
    "identity",
    "rand_seed1",
    "rand_seed2",
    "timestamp",
    "pseudo_thread_id",
    "pseudo_slave_mode",
    "pseudo_replica_mode",
    "gtid_next",
    "gtid_seq_no",
    "original_commit_timestamp",
    "original_server_version",
    "immediate_server_version",
    "character_set_database",
    "collation_database",
];

/// Variables the tracker reports without any statement setting them, with
/// `session_track_system_variables='*'`: MySQL's `statement_id` (read-only, a new
/// number for every statement), and MariaDB's `last_gtid` (read-only, the GTID of the
/// session's last transaction, reported after each write when the binary log is on, as
/// on an RDS instance with backups or replicas). They are neither state nor an
/// explanation of a state change, and cannot be set.
const REPORTS: &[&str] = &["statement_id", "last_gtid"];

/// The connection's character set, as the handshake chose it. MySQL's
/// COM_RESET_CONNECTION puts these back to the server's defaults, not the handshake's.
pub const CONNECTION_CHARSET: &[&str] = &[
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];

/// What a tracked change of one system variable means for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// Session state, carried to whichever backend runs the client's next statement.
    Replay,
    /// A report about the statement, not state: ignored.
    Report,
    /// State that cannot be carried to another connection: the session pins.
    Pin,
}

/// The trackers' own settings, which Sluice sets on every backend connection.
const TRACKER_SETTINGS: &str = "session_track_";

/// How a tracked change of `name` is handled.
pub fn classify(name: &str) -> Tracked {
    // Without lowering a copy: MySQL reports statement_id after every statement.
    let is = |list: &[&str]| list.iter().any(|v| v.eq_ignore_ascii_case(name));
    let tracker_setting = name
        .get(..TRACKER_SETTINGS.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(TRACKER_SETTINGS));
    if is(REPORTS) {
        Tracked::Report
    } else if is_identifier(name) && !tracker_setting && !is(NOT_REPLAYABLE) {
        Tracked::Replay
    } else {
        Tracked::Pin
    }
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Variables {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(|v| &**v)
    }

    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// The differences among `names` only.
    pub fn only(&self, names: &[&str]) -> Variables {
        let values = names
            .iter()
            .filter_map(|n| Some((Box::from(*n), self.values.get(*n)?.clone())))
            .collect();
        Variables { values }
    }

    /// Takes `from`'s value (or the baseline, when `from` has none) for each of `names`.
    pub fn assign(&mut self, from: &Variables, names: &[&str]) {
        for name in names {
            match from.values.get(*name) {
                Some(v) => self.values.insert((*name).into(), v.clone()),
                None => self.values.remove(*name),
            };
        }
    }

    /// Records that `name` is now `value`: kept as a difference, or dropped when the
    /// baseline has the same value.
    pub fn record(&mut self, name: &str, value: &[u8], baseline: &Variables) {
        let name = name.to_ascii_lowercase();
        if baseline.get(&name) == Some(value) {
            self.values.remove(name.as_str());
        } else {
            self.values.insert(name.into(), value.into());
        }
    }

    /// The value for `session_track_system_variables` that reports a change of any of
    /// these variables (a baseline: every variable the server has) except the reports.
    ///
    /// Not `'*'`: under `'*'` MySQL reports `statement_id` after every statement, and
    /// building that report is per-statement server work on the critical path of every
    /// query. A variable missing from the list (a plugin's, installed later) is still
    /// noticed: its change comes as a bare state change, which pins. Names are only
    /// identifiers, so the list needs no quoting.
    pub fn tracking_list(&self) -> String {
        let mut list = String::with_capacity(self.values.len() * 24);
        let names = self
            .values
            .keys()
            .filter(|name| is_identifier(name) && classify(name) != Tracked::Report);
        for name in names {
            if !list.is_empty() {
                list.push(',');
            }
            list.push_str(name);
        }
        list
    }

    /// Builds the baseline from `SHOW SESSION VARIABLES` rows (name, value).
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let values = rows
            .into_iter()
            .filter_map(|(name, value)| {
                let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
                Some((name.into_boxed_str(), value.into()))
            })
            .collect();
        Self { values }
    }

    /// The statement that turns a backend in state `backend` into `wanted` (both relative
    /// to `baseline`), or None when they already agree. `backslash_escapes` is false when
    /// the backend's sql_mode has NO_BACKSLASH_ESCAPES (it decides how quotes parse).
    pub fn replay(
        wanted: &Variables,
        backend: &Variables,
        baseline: &Variables,
        backslash_escapes: bool,
    ) -> Option<String> {
        let mut names: Vec<&str> = wanted
            .values
            .keys()
            .chain(backend.values.keys())
            .map(|k| &**k)
            .filter(|name| wanted.get(name) != backend.get(name))
            .collect();
        if names.is_empty() {
            return None;
        }
        names.sort_unstable();
        names.dedup();
        // Setting character_set_connection also resets collation_connection to that
        // character set's default, so the collation is always restated after it.
        if names.contains(&"character_set_connection") && !names.contains(&"collation_connection") {
            names.push("collation_connection");
        }
        let mut sql = String::from("SET SESSION ");
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(name);
            sql.push_str(" = ");
            match wanted.get(name).or_else(|| baseline.get(name)) {
                Some(value) => push_value(&mut sql, name, value, backslash_escapes),
                // Not in the baseline: the server's own default is the baseline.
                None => sql.push_str("DEFAULT"),
            }
        }
        Some(sql)
    }
}

/// Writes a tracked value as SQL: numbers bare (integer variables reject strings), the
/// empty character_set_results as NULL (that is how NULL is reported), anything else as
/// a quoted string.
fn push_value(sql: &mut String, name: &str, value: &[u8], backslash_escapes: bool) {
    let text = String::from_utf8_lossy(value);
    if value.is_empty() && name == "character_set_results" {
        sql.push_str("NULL");
    } else if is_number(&text) {
        sql.push_str(&text);
    } else {
        sql.push('\'');
        for c in text.chars() {
            match c {
                '\'' => sql.push_str("''"),
                '\\' if backslash_escapes => sql.push_str("\\\\"),
                c => sql.push(c),
            }
        }
        sql.push('\'');
    }
}

fn is_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(items: &[(&str, &str)]) -> Variables {
        Variables::from_rows(items.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[test]
    fn tracking_list_names_every_variable_but_the_reports() {
        let base = vars(&[
            ("time_zone", "SYSTEM"),
            ("Statement_ID", "7"),
            ("autocommit", "ON"),
            ("last_gtid", ""),
            ("odd name", "x"),
            ("insert_id", "0"),
        ]);
        assert_eq!(base.tracking_list(), "autocommit,insert_id,time_zone");
        assert_eq!(Variables::default().tracking_list(), "");
    }

    #[test]
    fn equal_states_need_no_replay() {
        let base = vars(&[("autocommit", "ON")]);
        let a = vars(&[("time_zone", "+09:00")]);
        assert_eq!(Variables::replay(&a, &a.clone(), &base, true), None);
    }

    #[test]
    fn replays_differences_and_restores_the_baseline() {
        let base = vars(&[("autocommit", "ON"), ("sql_mode", "STRICT_TRANS_TABLES")]);
        let wanted = vars(&[("autocommit", "OFF"), ("wait_timeout", "28800")]);
        let backend = vars(&[("sql_mode", "ANSI"), ("wait_timeout", "28800")]);
        assert_eq!(
            Variables::replay(&wanted, &backend, &base, true).unwrap(),
            "SET SESSION autocommit = 'OFF', sql_mode = 'STRICT_TRANS_TABLES'"
        );
    }

    #[test]
    fn unknown_baseline_restores_the_server_default() {
        let backend = vars(&[("tx_isolation", "SERIALIZABLE")]);
        assert_eq!(
            Variables::replay(&Variables::default(), &backend, &Variables::default(), true)
                .unwrap(),
            "SET SESSION tx_isolation = DEFAULT"
        );
    }

    #[test]
    fn collation_follows_a_character_set_change() {
        let base = vars(&[
            ("character_set_connection", "utf8mb4"),
            ("collation_connection", "utf8mb4_bin"),
        ]);
        let backend = vars(&[("character_set_connection", "latin1")]);
        assert_eq!(
            Variables::replay(&Variables::default(), &backend, &base, true).unwrap(),
            "SET SESSION character_set_connection = 'utf8mb4', collation_connection = 'utf8mb4_bin'"
        );
    }

    #[test]
    fn values_are_quoted_safely() {
        let wanted = vars(&[
            ("character_set_results", ""),
            ("sql_mode", ""),
            ("init_connect", "a'b\\c"),
            ("sql_select_limit", "18446744073709551615"),
            ("long_query_time", "1.500000"),
            ("time_zone", "-05:00"),
        ]);
        let sql =
            Variables::replay(&wanted, &Variables::default(), &Variables::default(), true).unwrap();
        assert_eq!(
            sql,
            "SET SESSION character_set_results = NULL, init_connect = 'a''b\\\\c', \
             long_query_time = 1.500000, sql_mode = '', sql_select_limit = 18446744073709551615, \
             time_zone = '-05:00'"
        );
        let no_escapes =
            Variables::replay(&wanted, &Variables::default(), &Variables::default(), false)
                .unwrap();
        assert!(no_escapes.contains("'a''b\\c'"));
    }

    #[test]
    fn recording_the_baseline_value_removes_the_difference() {
        let base = vars(&[("autocommit", "ON")]);
        let mut v = Variables::default();
        v.record("AUTOCOMMIT", b"OFF", &base);
        assert_eq!(v.get("autocommit"), Some(&b"OFF"[..]));
        v.record("autocommit", b"ON", &base);
        assert!(v.is_empty());
    }

    #[test]
    fn one_shot_and_tracker_variables_are_not_replayable() {
        for name in [
            "insert_id",
            "TIMESTAMP",
            "session_track_schema",
            "rand_seed1",
            "original_commit_timestamp",
            "a b",
        ] {
            assert_eq!(classify(name), Tracked::Pin, "{name}");
        }
        for name in [
            "autocommit",
            "sql_mode",
            "tx_isolation",
            "transaction_isolation",
            "transaction_read_only",
            "wait_timeout",
        ] {
            assert_eq!(classify(name), Tracked::Replay, "{name}");
        }
        assert_eq!(classify("statement_id"), Tracked::Report);
        assert_eq!(classify("last_gtid"), Tracked::Report);
    }

    #[test]
    fn numbers() {
        for n in ["0", "-1", "28800", "1.5"] {
            assert!(is_number(n), "{n}");
        }
        for n in ["", "-", "1.", ".5", "1e5", "+09:00", "ON", "1.2.3"] {
            assert!(!is_number(n), "{n}");
        }
    }
}
