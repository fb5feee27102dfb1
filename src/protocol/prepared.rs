//! Binary-protocol prepared statements on the wire: the COM_STMT_PREPARE OK header, and the
//! parts of COM_STMT_EXECUTE a proxy must rewrite (statement id, parameter types).

use super::wire::Reader;
use super::ProtocolError;

/// The first packet of a successful COM_STMT_PREPARE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    pub id: u32,
    pub columns: u16,
    pub params: u16,
}

impl PrepareOk {
    pub fn parse(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("prepare ok header")? != 0 {
            return Err(ProtocolError::Malformed("not a prepare OK"));
        }
        Ok(Self {
            id: r.u32("statement id")?,
            columns: r.u16("column count")?,
            params: r.u16("parameter count")?,
        })
    }
}

/// The statement id of COM_STMT_EXECUTE / SEND_LONG_DATA / RESET / CLOSE / FETCH: the
/// four bytes after the command byte.
pub fn statement_id(payload: &[u8]) -> Option<u32> {
    let id = payload.get(1..5)?;
    Some(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// Replaces the statement id in such a payload (same length, in place).
pub fn set_statement_id(payload: &mut [u8], id: u32) {
    if let Some(slot) = payload.get_mut(1..5) {
        slot.copy_from_slice(&id.to_le_bytes());
    }
}

/// Whether a COM_STMT_EXECUTE asks for a cursor: a cursor type in its flags byte (read
/// only, for update, scrollable; MariaDB's PARAMETER_COUNT_AVAILABLE, 0x08, is not one).
pub fn opens_cursor(payload: &[u8]) -> bool {
    payload.get(5).is_some_and(|flags| flags & 0x07 != 0)
}

/// Where the parameter part of a COM_STMT_EXECUTE for `params` parameters sits:
/// `[0x17][id:4][flags:1][iterations:4][null bitmap][new-params-bound:1][types 2×n]…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteLayout {
    /// Offset of the new-params-bound flag.
    pub bound_flag: usize,
    pub params: usize,
}

impl ExecuteLayout {
    /// None when the statement has no parameters (nothing to rewrite) or the payload is
    /// too short to hold the flag.
    pub fn of(payload: &[u8], params: u16) -> Option<Self> {
        let params = usize::from(params);
        if params == 0 {
            return None;
        }
        let bound_flag = 1 + 4 + 1 + 4 + params.div_ceil(8);
        (payload.len() > bound_flag).then_some(Self { bound_flag, params })
    }

    /// The parameter types this execute carries, if it sends them (flag 1).
    pub fn types<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        if payload[self.bound_flag] != 1 {
            return None;
        }
        payload.get(self.bound_flag + 1..self.bound_flag + 1 + 2 * self.params)
    }

    /// The same execute with `types` bound (flag 1), for a server that has not seen this
    /// client's types: the client sends them only once, the server keeps the last ones.
    pub fn with_types(&self, payload: &[u8], types: &[u8]) -> Vec<u8> {
        let rest = &payload[self.bound_flag + 1..];
        let mut out = Vec::with_capacity(payload.len() + types.len());
        out.extend_from_slice(&payload[..self.bound_flag]);
        out.push(1);
        out.extend_from_slice(types);
        out.extend_from_slice(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_types_open_a_cursor_and_the_parameter_count_flag_does_not() {
        let execute = |flags: u8| [0x17, 1, 0, 0, 0, flags, 1, 0, 0, 0];
        assert!(!opens_cursor(&execute(0)));
        assert!(!opens_cursor(&execute(0x08)));
        for flags in [1, 2, 4, 0x09] {
            assert!(opens_cursor(&execute(flags)), "{flags}");
        }
        assert!(!opens_cursor(&[0x17, 1, 0, 0, 0]));
    }

    #[test]
    fn parses_a_prepare_ok() {
        // id 7, 2 columns, 3 params, filler, 0 warnings (MariaDB 10.11).
        let p = [0, 7, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0];
        assert_eq!(
            PrepareOk::parse(&p).unwrap(),
            PrepareOk {
                id: 7,
                columns: 2,
                params: 3
            }
        );
        assert!(PrepareOk::parse(&[0, 1]).is_err());
        assert!(PrepareOk::parse(&[0xff, 1, 2, 3, 4, 5, 6, 7, 8]).is_err());
    }

    #[test]
    fn rewrites_the_statement_id_in_place() {
        let mut p = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        assert_eq!(statement_id(&p), Some(1));
        set_statement_id(&mut p, 0x0102_0304);
        assert_eq!(statement_id(&p), Some(0x0102_0304));
        assert_eq!(p.len(), 10);
        assert_eq!(statement_id(&[0x19, 1]), None);
    }

    #[test]
    fn finds_and_inserts_parameter_types() {
        // Two params: null bitmap 1 byte, then the flag.
        let head = [0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0b10];
        let mut with = head.to_vec();
        with.extend_from_slice(&[1, 3, 0, 0xfe, 0]);
        with.extend_from_slice(&[42, 0, 0, 0]);
        let layout = ExecuteLayout::of(&with, 2).unwrap();
        assert_eq!(layout.types(&with), Some(&[3, 0, 0xfe, 0][..]));

        let mut without = head.to_vec();
        without.push(0);
        without.extend_from_slice(&[42, 0, 0, 0]);
        let layout = ExecuteLayout::of(&without, 2).unwrap();
        assert_eq!(layout.types(&without), None);
        assert_eq!(layout.with_types(&without, &[3, 0, 0xfe, 0]), with);

        assert_eq!(ExecuteLayout::of(&with, 0), None);
        assert_eq!(ExecuteLayout::of(&head, 2), None);
    }
}
