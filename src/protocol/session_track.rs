//! Session-state-change information carried by OK packets (`CLIENT_SESSION_TRACK`).

use super::wire::Reader;
use super::ProtocolError;

/// One tracked change, borrowed from the OK packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<'a> {
    /// Type 0: a system variable and its new value.
    SystemVariable { name: &'a [u8], value: &'a [u8] },
    /// Type 1: the new default schema.
    Schema(&'a [u8]),
    /// Type 2: "some session state changed" with no detail.
    StateChange,
    /// Type 3: GTIDs.
    Gtids,
    /// Type 4: transaction characteristics, as the SQL that would recreate them.
    TransactionCharacteristics(&'a [u8]),
    /// Type 5: transaction state, eight characters such as `T_______`.
    TransactionState(&'a [u8]),
    /// A type this version does not know; skipped.
    Other(u8),
}

/// Iterates over the items of a session-state block.
pub struct Changes<'a> {
    r: Reader<'a>,
}

pub fn changes(block: &[u8]) -> Changes<'_> {
    Changes {
        r: Reader::new(block),
    }
}

impl<'a> Iterator for Changes<'a> {
    type Item = Result<Change<'a>, ProtocolError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let item = (|| {
            let kind = self.r.u8("session track type")?;
            let data = self.r.lenenc_bytes("session track data")?;
            let mut d = Reader::new(data);
            Ok(match kind {
                0 => Change::SystemVariable {
                    name: d.lenenc_bytes("variable name")?,
                    value: d.lenenc_bytes("variable value")?,
                },
                1 => Change::Schema(d.lenenc_bytes("schema")?),
                2 => Change::StateChange,
                3 => Change::Gtids,
                4 => Change::TransactionCharacteristics(d.lenenc_bytes("characteristics")?),
                5 => Change::TransactionState(d.lenenc_bytes("transaction state")?),
                other => Change::Other(other),
            })
        })();
        if item.is_err() {
            // Stop after a malformed item; the caller treats the block as unexplained.
            self.r.rest();
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_items_mariadb_sends_for_set_names() {
        // `SET NAMES latin1` on MariaDB 10.11: three variables and type 2.
        let mut block = Vec::new();
        for name in [
            "character_set_client",
            "character_set_connection",
            "character_set_results",
        ] {
            let mut data = vec![name.len() as u8];
            data.extend_from_slice(name.as_bytes());
            data.push(6);
            data.extend_from_slice(b"latin1");
            block.push(0);
            block.push(data.len() as u8);
            block.extend(data);
        }
        block.extend_from_slice(b"\x02\x02\x011");
        let items: Vec<_> = changes(&block).collect::<Result<_, _>>().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0],
            Change::SystemVariable {
                name: b"character_set_client",
                value: b"latin1"
            }
        );
        assert_eq!(items[3], Change::StateChange);
    }

    #[test]
    fn transaction_items_and_schema() {
        let block = b"\x05\x09\x08T_______\x04\x13\x12START TRANSACTION;\x01\x03\x02db";
        let items: Vec<_> = changes(block).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            items,
            [
                Change::TransactionState(b"T_______"),
                Change::TransactionCharacteristics(b"START TRANSACTION;"),
                Change::Schema(b"db"),
            ]
        );
    }

    #[test]
    fn truncated_block_yields_an_error_then_stops() {
        let items: Vec<_> = changes(b"\x00\x09\x03ab").collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].is_err());
    }
}
