//! Reads what the server's session trackers reported in an OK packet and decides what it
//! means for the client session: a new schema, system variables to record (and replay
//! elsewhere), or state that pins.

use super::variables::{classify, Tracked};
use super::PinReason;
use crate::protocol::session_track::{changes, Change};
use crate::protocol::status;

/// What one OK packet says about the session.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// The default schema changed (None inside: no schema).
    pub schema: Option<Option<Vec<u8>>>,
    /// System variables the statement set, with their new values, in the order reported.
    pub variables: Vec<(Box<str>, Box<[u8]>)>,
    /// State the proxy cannot carry to another connection.
    pub pin: Option<PinReason>,
}

/// Interprets the session-state block of an OK packet with the given status flags.
pub fn observe(status_flags: u16, block: Option<&[u8]>) -> Observation {
    let mut obs = Observation::default();
    let Some(block) = block else { return obs };
    if only_statement_id(block) {
        return obs;
    }
    let mut state_changed = false;
    let mut explained = false;
    for change in changes(block) {
        match change {
            Ok(Change::Schema(s)) => {
                obs.schema = Some(Some(s.to_vec()).filter(|s| !s.is_empty()));
                explained = true;
            }
            Ok(Change::SystemVariable { name, value }) => {
                let name = std::str::from_utf8(name).unwrap_or("");
                match classify(name) {
                    Tracked::Replay => obs.variables.push((name.into(), value.into())),
                    // A report explains nothing: `SET @x := 1` on MySQL comes with
                    // statement_id and a bare state change, and must still pin.
                    Tracked::Report => continue,
                    Tracked::Pin => {
                        obs.pin.get_or_insert(PinReason::SystemVariable);
                    }
                }
                explained = true;
            }
            Ok(Change::StateChange) => state_changed = true,
            Ok(Change::TransactionCharacteristics(c)) => {
                // Outside a transaction, characteristics apply to the next one only.
                if !c.is_empty() && status_flags & status::IN_TRANS == 0 {
                    obs.pin.get_or_insert(PinReason::NextTransaction);
                }
            }
            Ok(Change::TransactionState(_) | Change::Gtids | Change::Other(_)) => {}
            Err(_) => {
                obs.pin.get_or_insert(PinReason::UnexplainedState);
            }
        }
    }
    if state_changed && !explained {
        obs.pin.get_or_insert(PinReason::UnexplainedState);
    }
    obs
}

/// The block is one system-variable item, MySQL's `statement_id`, and nothing else:
/// what MySQL sends after nearly every statement (a report, neither state nor an
/// explanation of any), told from its bytes before anything is parsed.
fn only_statement_id(block: &[u8]) -> bool {
    // Type 0 (system variables), the item's length, the name, the value's length: each
    // length fits one byte here.
    const NAME: &[u8] = b"\x0cstatement_id";
    let [0x00, item_len, item @ ..] = block else {
        return false;
    };
    let Some((&value_len, value)) = item.strip_prefix(NAME).and_then(<[u8]>::split_first) else {
        return false;
    };
    usize::from(*item_len) == item.len()
        && usize::from(value_len) == value.len()
        && *item_len < 0xFB
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHANGED: u16 = status::SESSION_STATE_CHANGED | status::AUTOCOMMIT;

    #[test]
    fn schema_change_is_explained() {
        let o = observe(CHANGED, Some(b"\x01\x05\x04shop\x02\x02\x011"));
        assert_eq!(o.schema, Some(Some(b"shop".to_vec())));
        assert_eq!(o.pin, None);
    }

    #[test]
    fn bare_state_change_pins() {
        // `SET @x := 1`, `CREATE TEMPORARY TABLE`, `PREPARE` on MariaDB 10.11: type 2 only.
        let o = observe(CHANGED, Some(b"\x02\x02\x011"));
        assert_eq!(o.pin, Some(PinReason::UnexplainedState));
    }

    #[test]
    fn system_variables_are_recorded_not_pinned() {
        let o = observe(
            CHANGED,
            Some(b"\x00\x11\x09time_zone\x06+09:00\x02\x02\x011"),
        );
        assert_eq!(o.pin, None);
        assert_eq!(
            o.variables,
            vec![("time_zone".into(), b"+09:00"[..].into())]
        );
    }

    #[test]
    fn one_shot_variables_pin() {
        let o = observe(CHANGED, Some(b"\x00\x0c\x09insert_id\x015\x02\x02\x011"));
        assert_eq!(o.pin, Some(PinReason::SystemVariable));
        assert!(o.variables.is_empty());
    }

    #[test]
    fn mysql_statement_id_is_neither_state_nor_an_explanation() {
        // MySQL 9.7 with session_track_system_variables='*': `DO 1`, then `SET @x := 1`.
        let id = b"\x00\x10\x0cstatement_id\x0213";
        assert!(only_statement_id(id));
        let o = observe(CHANGED, Some(id));
        assert_eq!(o, Observation::default());
        // Anything else with it, or a length that does not add up, is parsed.
        for other in [
            &b"\x00\x10\x0cstatement_id\x0313"[..],
            b"\x00\x11\x0cstatement_id\x0213",
            b"\x00\x10\x0cstatement_ie\x0213",
            b"\x00\x10\x0cstatement_id\x0213\x02\x02\x011",
            b"\x01\x10\x0cstatement_id\x0213",
        ] {
            assert!(!only_statement_id(other), "{other:?}");
        }
        let user_variable = [&id[..], b"\x02\x02\x011"].concat();
        let o = observe(CHANGED, Some(&user_variable));
        assert_eq!(o.pin, Some(PinReason::UnexplainedState));
        assert!(o.variables.is_empty());
        let time_zone = [
            &b"\x00\x11\x09time_zone\x06+09:00"[..],
            id,
            b"\x02\x02\x011",
        ]
        .concat();
        let o = observe(CHANGED, Some(&time_zone));
        assert_eq!(o.pin, None);
        assert_eq!(o.variables.len(), 1);
    }

    #[test]
    fn begin_and_commit_do_not_pin() {
        let begin = b"\x05\x09\x08T_______\x04\x13\x12START TRANSACTION;";
        assert_eq!(observe(CHANGED | status::IN_TRANS, Some(begin)).pin, None);
        assert_eq!(observe(CHANGED, Some(b"\x05\x09\x08________")).pin, None);
        assert_eq!(observe(CHANGED, Some(b"\x04\x01\x00")).pin, None);
    }

    #[test]
    fn next_transaction_characteristics_pin() {
        let o = observe(CHANGED, Some(b"\x04\x1b\x1aSET TRANSACTION READ ONLY;"));
        assert_eq!(o.pin, Some(PinReason::NextTransaction));
    }

    #[test]
    fn malformed_block_pins() {
        assert_eq!(
            observe(CHANGED, Some(b"\x00\x09")).pin,
            Some(PinReason::UnexplainedState)
        );
    }
}
