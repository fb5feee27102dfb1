//! Text result sets Sluice builds itself, for statements it answers without a backend
//! (`SELECT FOUND_ROWS()`, `SHOW WARNINGS`, …): column count, definitions, [EOF], rows,
//! and the final EOF (or OK when the client negotiated CLIENT_DEPRECATE_EOF). Sequence
//! ids from 1.

use super::header::EOF as EOF_HEADER;
use super::packet;
use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};
use super::ProtocolError;

/// One column definition, as the server describes it.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    pub name: &'a [u8],
    /// `MYSQL_TYPE_*`.
    pub kind: u8,
    /// Collation id (63 = binary).
    pub collation: u16,
    pub length: u32,
    pub flags: u16,
}

pub const TYPE_LONG: u8 = 0x03;
pub const TYPE_LONGLONG: u8 = 0x08;
pub const TYPE_VAR_STRING: u8 = 0xfd;
pub const NOT_NULL: u16 = 0x0001;
pub const UNSIGNED: u16 = 0x0020;
pub const BINARY: u16 = 0x0080;

/// How the result set ends: the session's status flags and the warning count.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    pub deprecate_eof: bool,
    pub status: u16,
    pub warnings: u16,
}

/// The whole result set, wire bytes.
pub fn text_result(columns: &[Column<'_>], rows: &[&[Option<&[u8]>]], end: Ending) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * (columns.len() + rows.len() + 2));
    let mut seq = 1u8;
    let mut push = |out: &mut Vec<u8>, payload: &[u8]| {
        packet::push_packet(out, seq, payload);
        seq = seq.wrapping_add(1);
    };
    let mut buf = Vec::with_capacity(64);
    put_lenenc_int(&mut buf, columns.len() as u64);
    push(&mut out, &buf);
    for c in columns {
        buf.clear();
        for part in [&b"def"[..], b"", b"", b"", c.name, b""] {
            put_lenenc_bytes(&mut buf, part);
        }
        put_lenenc_int(&mut buf, 0x0c);
        buf.extend_from_slice(&c.collation.to_le_bytes());
        buf.extend_from_slice(&c.length.to_le_bytes());
        buf.push(c.kind);
        buf.extend_from_slice(&c.flags.to_le_bytes());
        buf.extend_from_slice(&[0, 0, 0]); // decimals, filler
        push(&mut out, &buf);
    }
    let [lo, hi] = end.status.to_le_bytes();
    if !end.deprecate_eof {
        push(&mut out, &[EOF_HEADER, 0, 0, lo, hi]);
    }
    for row in rows {
        buf.clear();
        for value in row.iter() {
            match value {
                Some(v) => put_lenenc_bytes(&mut buf, v),
                None => buf.push(0xfb),
            }
        }
        push(&mut out, &buf);
    }
    push_end(&mut out, seq, end);
    out
}

/// The packet that ends a result set (and answers COM_SET_OPTION): an EOF, or for a
/// client with CLIENT_DEPRECATE_EOF an OK with the EOF header (affected rows and insert
/// id 0, status, warnings).
pub fn push_end(out: &mut impl bytes::BufMut, seq: u8, end: Ending) {
    let [lo, hi] = end.status.to_le_bytes();
    let [w0, w1] = end.warnings.to_le_bytes();
    if end.deprecate_eof {
        packet::push_packet(out, seq, &[EOF_HEADER, 0, 0, lo, hi, w0, w1]);
    } else {
        packet::push_packet(out, seq, &[EOF_HEADER, w0, w1, lo, hi]);
    }
}

/// The name of the column a column-definition packet (protocol 4.1) describes: after
/// the catalog, schema, table and original table, each a length-encoded string.
pub fn column_name(definition: &[u8]) -> Result<&[u8], ProtocolError> {
    let mut r = Reader::new(definition);
    for what in ["catalog", "schema", "table", "original table"] {
        r.lenenc_bytes(what)?;
    }
    r.lenenc_bytes("column name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_definitions_name_is_read() {
        // `SELECT 1 AS Seconds_Behind_Source` as MySQL 9.7 describes the column.
        let mut def = b"\x03def\x00\x00\x00\x15Seconds_Behind_Source\x00".to_vec();
        def.extend_from_slice(b"\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00");
        assert_eq!(column_name(&def).unwrap(), b"Seconds_Behind_Source");
        assert!(column_name(b"\x03def\x00").is_err());
        assert!(column_name(b"").is_err());
    }

    /// `SELECT FOUND_ROWS()` as MySQL 9.7 answered it (classic EOF), column definition
    /// trimmed to what Sluice sends: one row "1", one warning.
    #[test]
    fn one_bigint_row_with_a_warning() {
        let column = Column {
            name: b"FOUND_ROWS()",
            kind: TYPE_LONGLONG,
            collation: 63,
            length: 21,
            flags: NOT_NULL | BINARY,
        };
        let end = Ending {
            deprecate_eof: false,
            status: 0x0002,
            warnings: 1,
        };
        let wire = text_result(&[column], &[&[Some(b"1")]], end);
        let packets: Vec<&[u8]> = split(&wire);
        assert_eq!(packets.len(), 5);
        assert_eq!(packets[0], b"\x01");
        assert_eq!(packets[2], b"\xfe\x00\x00\x02\x00");
        assert_eq!(packets[3], b"\x011");
        assert_eq!(packets[4], b"\xfe\x01\x00\x02\x00");
        let ok = text_result(
            &[column],
            &[&[None]],
            Ending {
                deprecate_eof: true,
                ..end
            },
        );
        let packets = split(&ok);
        assert_eq!(packets.len(), 4);
        assert_eq!(packets[2], b"\xfb");
        assert_eq!(packets[3], b"\xfe\x00\x00\x02\x00\x01\x00");
    }

    fn split(mut wire: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut seq = 1;
        while !wire.is_empty() {
            let n = usize::from(wire[0]) | usize::from(wire[1]) << 8 | usize::from(wire[2]) << 16;
            assert_eq!(wire[3], seq);
            seq += 1;
            out.push(&wire[4..4 + n]);
            wire = &wire[4 + n..];
        }
        out
    }
}
