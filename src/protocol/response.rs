//! Server responses: OK, ERR and EOF packets, and where a response ends.

use super::errors::SqlState;
use super::result_set;
use super::wire::{put_lenenc_bytes, put_lenenc_int, Reader};
use super::{packet, status, ProtocolError};

pub use super::header::{
    EOF as EOF_HEADER, ERR as ERR_HEADER, LOCAL_INFILE as LOCAL_INFILE_HEADER, OK as OK_HEADER,
};

/// A parsed OK packet (header 0x00, or 0xFE when it ends a result set under
/// `CLIENT_DEPRECATE_EOF`). Borrowed from the packet payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkPacket<'a> {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: &'a [u8],
    /// The session-state-change block, present when the status has
    /// `SESSION_STATE_CHANGED` and the connection negotiated `CLIENT_SESSION_TRACK`.
    pub session_state: Option<&'a [u8]>,
    plain: PlainOk,
}

/// Where an OK packet's payload holds what a client without `CLIENT_SESSION_TRACK` gets:
/// that form is a prefix of the payload (no session-state block, no empty info) with
/// the state-changed flag cleared, so a relayed OK is rewritten in place, never copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainOk {
    status_at: usize,
    len: usize,
}

impl PlainOk {
    /// Rewrites `payload` (the OK this was parsed from) into that form; returns the
    /// length to keep.
    pub fn apply(self, payload: &mut [u8]) -> usize {
        let at = self.status_at;
        let status = u16::from_le_bytes([payload[at], payload[at + 1]]);
        let plain = status & !status::SESSION_STATE_CHANGED;
        payload[at..at + 2].copy_from_slice(&plain.to_le_bytes());
        self.len
    }
}

impl<'a> OkPacket<'a> {
    pub fn parse(payload: &'a [u8], session_track: bool) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        r.u8("ok header")?;
        let affected_rows = r.lenenc_int("affected rows")?;
        let last_insert_id = r.lenenc_int("last insert id")?;
        let status_at = r.position();
        let status = r.u16("status flags")?;
        let warnings = r.u16("warnings")?;
        let mut plain_len = r.position();
        let (info, session_state) = if session_track {
            let info = if r.is_empty() {
                &[][..]
            } else {
                r.lenenc_bytes("info")?
            };
            if !info.is_empty() {
                plain_len = r.position();
            }
            let state = if status & status::SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                Some(r.lenenc_bytes("session state")?)
            } else {
                None
            };
            (info, state)
        } else {
            plain_len = payload.len();
            (r.rest(), None)
        };
        Ok(Self {
            affected_rows,
            last_insert_id,
            status,
            warnings,
            info,
            session_state,
            plain: PlainOk {
                status_at,
                len: plain_len,
            },
        })
    }

    /// How to rewrite this OK's payload in place into what a client without
    /// `CLIENT_SESSION_TRACK` gets (the bytes [`Self::encode_without_session_track`]
    /// builds).
    pub fn plain(&self) -> PlainOk {
        self.plain
    }

    /// The same OK as a server sends it to a client without `CLIENT_SESSION_TRACK`: no
    /// session-state block and no state-changed flag. The info stays length-encoded:
    /// MySQL and MariaDB both send it so (whatever the protocol docs say), and clients
    /// must see exactly what a direct connection shows them.
    pub fn encode_without_session_track(&self, header: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.info.len());
        out.push(header);
        put_lenenc_int(&mut out, self.affected_rows);
        put_lenenc_int(&mut out, self.last_insert_id);
        out.extend_from_slice(&(self.status & !status::SESSION_STATE_CHANGED).to_le_bytes());
        out.extend_from_slice(&self.warnings.to_le_bytes());
        if !self.info.is_empty() {
            put_lenenc_bytes(&mut out, self.info);
        }
        out
    }
}

/// A parsed ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    pub code: u16,
    pub sql_state: SqlState,
    pub message: &'a [u8],
}

impl<'a> ErrPacket<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("err header")? != ERR_HEADER {
            return Err(ProtocolError::Malformed("not an ERR packet"));
        }
        let code = r.u16("error code")?;
        let mut sql_state = SqlState::GENERAL;
        if r.remaining() >= 6 && payload[3] == b'#' {
            r.skip(1, "sql state marker")?;
            sql_state = SqlState::from_bytes(r.bytes(5, "sql state")?)
                .ok_or(ProtocolError::Malformed("sql state"))?;
        }
        Ok(Self {
            code,
            sql_state,
            message: r.rest(),
        })
    }

    pub fn message_lossy(&self) -> String {
        String::from_utf8_lossy(self.message).into_owned()
    }
}

/// Status flags of a classic EOF packet (`0xFE`, warnings, status).
pub fn eof_status(payload: &[u8]) -> Result<u16, ProtocolError> {
    let mut r = Reader::new(payload);
    r.skip(3, "eof packet")?;
    r.u16("eof status")
}

/// A one-row, one-column text result set of a BIGINT, as the server sends for
/// `SELECT FOUND_ROWS()` or `SELECT ROW_COUNT()`, with `warnings` in its final EOF.
pub fn bigint_result(column: &[u8], value: i64, end: result_set::Ending) -> Vec<u8> {
    let def = result_set::Column {
        name: column,
        kind: result_set::TYPE_LONGLONG,
        collation: 63,
        length: 21,
        flags: result_set::NOT_NULL | result_set::BINARY,
    };
    let text = value.to_string();
    result_set::text_result(&[def], &[&[Some(text.as_bytes())]], end)
}

/// A plain OK packet for commands Sluice answers itself.
pub fn ok_packet(seq: u8, status_flags: u16) -> Vec<u8> {
    packet::packet(
        seq,
        &[
            OK_HEADER,
            0,
            0,
            status_flags as u8,
            (status_flags >> 8) as u8,
            0,
            0,
        ],
    )
}

/// What a command's response looks like, so the relay knows where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR or one or more result sets: COM_QUERY, COM_STMT_EXECUTE and most others.
    Results,
    /// COM_FIELD_LIST: column definitions up to an EOF, or an ERR.
    FieldList,
    /// COM_STATISTICS: one string packet.
    Single,
    /// COM_STMT_PREPARE: a prepare-OK followed by parameter and column definitions.
    Prepare,
    /// COM_STMT_FETCH: rows up to an EOF, or an ERR.
    Fetch,
}

/// What one packet of a response was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Column definitions, rows, and other packets relayed without a look inside.
    Data,
    /// An OK packet (header 0x00, or a 0xFE result-set terminator under DEPRECATE_EOF).
    Ok,
    /// A classic EOF packet.
    Eof,
    /// The first packet of a COM_STMT_PREPARE response (statement id and counts).
    PrepareOk,
    Err,
    /// A LOCAL INFILE request, which Sluice never enables.
    LocalInfile,
}

/// A block of definitions that a connection with `CLIENT_DEPRECATE_EOF` ends without the
/// EOF packet a classic client expects (`protocol::classic_eof` puts it back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmittedEof {
    /// A result set's column definitions: rows, or the packet that ends them, follow.
    ResultColumns,
    /// The parameter or the column definitions of a COM_STMT_PREPARE response.
    PrepareBlock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    First,
    Columns { left: u64 },
    ColumnsEof,
    Rows,
    PrepareParams { left: u16, columns: u16 },
    PrepareParamsEof { columns: u16 },
    PrepareColumns { left: u16 },
    PrepareColumnsEof,
    Done,
}

/// Follows a response packet by packet and says when it is complete.
///
/// Only the first physical packet of each logical packet is fed; continuation packets
/// are relayed as data by the caller.
#[derive(Debug, Clone)]
pub struct Tracker {
    expect: Expect,
    state: State,
    deprecate_eof: bool,
    status: u16,
    /// The packet fed last was the final definition of a block whose EOF is omitted.
    omitted: Option<OmittedEof>,
}

impl Tracker {
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::Fetch => State::Rows,
            _ => State::First,
        };
        Self {
            expect,
            state,
            deprecate_eof,
            status: 0,
            omitted: None,
        }
    }

    /// Whether the packet fed last ended a block of definitions without an EOF after it
    /// (only ever on a connection with `CLIENT_DEPRECATE_EOF`).
    pub fn omitted_eof(&self) -> Option<OmittedEof> {
        self.omitted
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True while rows are expected: the next data packet is a row.
    pub fn in_rows(&self) -> bool {
        self.state == State::Rows
    }

    /// Status flags of the last OK or EOF packet seen.
    pub fn status(&self) -> u16 {
        self.status
    }

    fn is_terminator(&self, first: u8, len: usize) -> bool {
        first == EOF_HEADER
            && if self.deprecate_eof {
                len < packet::MAX_PAYLOAD
            } else {
                len < 9
            }
    }

    /// Whether the caller must pass the whole payload of a packet starting with `first`
    /// and `len` bytes long (OK, ERR, EOF and counts), or just its first byte (rows).
    pub fn needs_whole(&self, first: u8, len: usize) -> bool {
        match self.state {
            State::First => true,
            State::Rows | State::ColumnsEof | State::PrepareParamsEof { .. } => {
                first == ERR_HEADER || self.is_terminator(first, len)
            }
            State::PrepareColumnsEof => true,
            _ => self.expect == Expect::FieldList && (first == ERR_HEADER || first == EOF_HEADER),
        }
    }

    /// Feeds the first physical packet of a logical packet of `len` payload bytes.
    /// `payload` holds the whole payload when [`Self::needs_whole`] said so, otherwise at
    /// least its first byte (or nothing for an empty packet).
    pub fn feed(&mut self, payload: &[u8], len: usize) -> Result<Seen, ProtocolError> {
        let first = payload.first().copied().unwrap_or(0);
        self.omitted = None;
        match self.state {
            State::Done => Err(ProtocolError::Malformed(
                "packet after the end of a response",
            )),
            State::First => self.first(payload, len),
            State::Columns { left } => Ok(self.column(left)),
            State::ColumnsEof => self.columns_eof(first, payload),
            State::Rows => {
                if first == ERR_HEADER {
                    self.state = State::Done;
                    Ok(Seen::Err)
                } else if self.is_terminator(first, len) {
                    self.terminate(payload)
                } else {
                    Ok(Seen::Data)
                }
            }
            State::PrepareParams { left, columns } => Ok(self.prepare_param(left, columns)),
            State::PrepareParamsEof { columns } => {
                self.status = eof_status(payload)?;
                self.state = Self::prepare_columns(columns);
                Ok(Seen::Eof)
            }
            State::PrepareColumns { left } => Ok(self.prepare_column(left)),
            State::PrepareColumnsEof => {
                self.status = eof_status(payload)?;
                self.state = State::Done;
                Ok(Seen::Eof)
            }
        }
    }

    /// A column definition of a result set, `left` of them still to come with it.
    #[inline]
    fn column(&mut self, left: u64) -> Seen {
        self.state = if left > 1 {
            State::Columns { left: left - 1 }
        } else if self.deprecate_eof {
            self.omitted = Some(OmittedEof::ResultColumns);
            State::Rows
        } else {
            State::ColumnsEof
        };
        Seen::Data
    }

    /// After the column definitions without DEPRECATE_EOF: their EOF (or an error).
    #[inline]
    fn columns_eof(&mut self, first: u8, payload: &[u8]) -> Result<Seen, ProtocolError> {
        if first == ERR_HEADER {
            self.state = State::Done;
            return Ok(Seen::Err);
        }
        if first != EOF_HEADER {
            return Err(ProtocolError::Malformed(
                "missing EOF after column definitions",
            ));
        }
        self.status = eof_status(payload)?;
        self.state = if self.status & status::CURSOR_EXISTS != 0 {
            State::Done
        } else {
            State::Rows
        };
        Ok(Seen::Eof)
    }

    /// A parameter definition of a prepare's answer, `left` of them with it.
    fn prepare_param(&mut self, left: u16, columns: u16) -> Seen {
        self.state = if left > 1 {
            State::PrepareParams {
                left: left - 1,
                columns,
            }
        } else if self.deprecate_eof {
            self.omitted = Some(OmittedEof::PrepareBlock);
            Self::prepare_columns(columns)
        } else {
            State::PrepareParamsEof { columns }
        };
        Seen::Data
    }

    /// A column definition of a prepare's answer, `left` of them with it.
    fn prepare_column(&mut self, left: u16) -> Seen {
        self.state = if left > 1 {
            State::PrepareColumns { left: left - 1 }
        } else if self.deprecate_eof {
            self.omitted = Some(OmittedEof::PrepareBlock);
            State::Done
        } else {
            State::PrepareColumnsEof
        };
        Seen::Data
    }

    fn prepare_columns(columns: u16) -> State {
        if columns == 0 {
            State::Done
        } else {
            State::PrepareColumns { left: columns }
        }
    }

    fn first(&mut self, payload: &[u8], len: usize) -> Result<Seen, ProtocolError> {
        let first = *payload
            .first()
            .ok_or(ProtocolError::Malformed("empty response packet"))?;
        if first == ERR_HEADER {
            self.state = State::Done;
            return Ok(Seen::Err);
        }
        match self.expect {
            Expect::Single => {
                self.state = State::Done;
                Ok(Seen::Data)
            }
            Expect::FieldList => {
                if first == EOF_HEADER && len < packet::MAX_PAYLOAD {
                    self.terminate(payload)
                } else {
                    Ok(Seen::Data)
                }
            }
            Expect::Prepare => {
                if first != OK_HEADER {
                    return Err(ProtocolError::Malformed("bad prepare response"));
                }
                let mut r = Reader::new(payload);
                r.skip(5, "statement id")?;
                let columns = r.u16("column count")?;
                let params = r.u16("param count")?;
                self.state = if params > 0 {
                    State::PrepareParams {
                        left: params,
                        columns,
                    }
                } else {
                    Self::prepare_columns(columns)
                };
                Ok(Seen::PrepareOk)
            }
            Expect::Results | Expect::Fetch => match first {
                OK_HEADER => self.terminate(payload),
                EOF_HEADER if len < packet::MAX_PAYLOAD => self.terminate(payload),
                LOCAL_INFILE_HEADER => {
                    self.state = State::Done;
                    Ok(Seen::LocalInfile)
                }
                _ => {
                    let count = Reader::new(payload).lenenc_int("column count")?;
                    if count == 0 {
                        return Err(ProtocolError::Malformed("zero column count"));
                    }
                    self.state = State::Columns { left: count };
                    Ok(Seen::Data)
                }
            },
        }
    }

    /// The client's file was sent after a LOCAL INFILE request: the server answers
    /// with an OK or ERR (and, in a multi-statement, the results after it).
    pub fn file_sent(&mut self) {
        self.state = State::First;
    }

    /// An OK or EOF that ends a result (or the whole response).
    fn terminate(&mut self, payload: &[u8]) -> Result<Seen, ProtocolError> {
        let is_ok = payload[0] == OK_HEADER || (self.deprecate_eof && payload.len() > 5);
        self.status = if is_ok {
            OkPacket::parse(payload, true)?.status
        } else {
            eof_status(payload)?
        };
        let more = self.status & status::MORE_RESULTS_EXISTS != 0;
        self.state = match self.expect {
            Expect::Results if more => State::First,
            _ => State::Done,
        };
        Ok(if is_ok { Seen::Ok } else { Seen::Eof })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds whole payloads, as the relay does for small packets.
    fn run(t: &mut Tracker, packets: &[&[u8]]) -> Vec<Seen> {
        packets
            .iter()
            .map(|p| t.feed(p, p.len()).unwrap())
            .collect()
    }

    // Captured from MariaDB 10.11: `SELECT 1` without DEPRECATE_EOF.
    const COLUMN_DEF: &[u8] =
        b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";
    const EOF: &[u8] = b"\xfe\x00\x00\x02\x00";

    #[test]
    fn text_result_set_with_classic_eof() {
        let mut t = Tracker::new(Expect::Results, false);
        let seen = run(&mut t, &[b"\x01", COLUMN_DEF, EOF, b"\x011", EOF]);
        assert_eq!(
            seen,
            [Seen::Data, Seen::Data, Seen::Eof, Seen::Data, Seen::Eof]
        );
        assert!(t.is_done());
        assert_eq!(t.status(), status::AUTOCOMMIT);
    }

    #[test]
    fn multi_statement_results_continue_until_no_more_results() {
        let mut t = Tracker::new(Expect::Results, true);
        // OK with MORE_RESULTS_EXISTS, then a one-row result closed by a 0xFE OK.
        run(&mut t, &[b"\x00\x00\x00\x0a\x00\x00\x00"]);
        assert!(!t.is_done());
        run(&mut t, &[b"\x01", COLUMN_DEF, b"\x011"]);
        assert!(!t.is_done());
        run(&mut t, &[b"\xfe\x00\x00\x02\x00\x00\x00"]);
        assert!(t.is_done());
    }

    #[test]
    fn error_in_the_middle_of_rows_ends_the_response() {
        let mut t = Tracker::new(Expect::Results, true);
        run(&mut t, &[b"\x01", COLUMN_DEF, b"\x011"]);
        assert_eq!(t.feed(b"\xff\x15\x04#HY000x", 10).unwrap(), Seen::Err);
        assert!(t.is_done());
    }

    #[test]
    fn a_big_row_starting_with_0xfe_is_data() {
        let mut t = Tracker::new(Expect::Results, true);
        run(&mut t, &[b"\x01", COLUMN_DEF]);
        assert!(!t.needs_whole(0xFE, packet::MAX_PAYLOAD));
        assert_eq!(t.feed(b"\xfe", packet::MAX_PAYLOAD).unwrap(), Seen::Data);
        assert!(!t.is_done());
    }

    #[test]
    fn prepare_response_with_params_and_columns() {
        let mut t = Tracker::new(Expect::Prepare, false);
        let ok = b"\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00";
        let seen = run(&mut t, &[ok, COLUMN_DEF, COLUMN_DEF, EOF, COLUMN_DEF, EOF]);
        assert_eq!(seen.last(), Some(&Seen::Eof));
        assert!(t.is_done());
    }

    #[test]
    fn ok_with_session_state_parses_and_strips() {
        // `USE test` on MariaDB 10.11: schema item and state-change item.
        let payload = b"\x00\x00\x00\x02\x40\x00\x00\x00\x0b\x01\x05\x04test\x02\x02\x011";
        let ok = OkPacket::parse(payload, true).unwrap();
        assert_eq!(ok.status, 0x4002);
        assert_eq!(
            ok.session_state,
            Some(&b"\x01\x05\x04test\x02\x02\x011"[..])
        );
        let plain = ok.encode_without_session_track(OK_HEADER);
        assert_eq!(plain, b"\x00\x00\x00\x02\x00\x00\x00");
    }

    #[test]
    fn the_plain_form_in_place_is_the_encoded_one() {
        let payloads: [&[u8]; 5] = [
            // `USE test` on MariaDB 10.11: no info, session state.
            b"\x00\x00\x00\x02\x40\x00\x00\x00\x0b\x01\x05\x04test\x02\x02\x011",
            // MySQL's statement_id after a SELECT, at the end of a result set (0xFE).
            b"\xfe\x00\x00\x22\x40\x00\x00\x00\x11\x00\x0f\x0cstatement_id\x0142",
            // An UPDATE: two-byte affected rows, a large insert id, info and state.
            b"\x00\xfc\x2c\x01\xfd\x01\x00\x01\x02\x40\x01\x00\x05Rows!\x04\x02\x01\x31\x00",
            // Info and no state (the flag is not set).
            b"\x00\x01\x00\x02\x00\x00\x00\x03abc",
            // Nothing after the warnings.
            b"\x00\x00\x00\x02\x00\x00\x00",
        ];
        for payload in payloads {
            let ok = OkPacket::parse(payload, true).unwrap();
            let encoded = ok.encode_without_session_track(payload[0]);
            let plain = ok.plain();
            let mut in_place = payload.to_vec();
            let len = plain.apply(&mut in_place);
            in_place.truncate(len);
            assert_eq!(in_place, encoded, "{payload:x?}");
        }
    }

    #[test]
    fn err_packet_round_trip() {
        let wire = crate::protocol::errors::ErrorPacket::borrow_timeout().encode(2);
        let e = ErrPacket::parse(&wire[4..]).unwrap();
        assert_eq!((e.code, e.sql_state), (9501, SqlState::GENERAL));
        assert_eq!(wire[3], 2);
        // A pre-4.1 ERR has no SQLSTATE: the general one stands in.
        let old = ErrPacket::parse(b"\xff\x15\x04Access denied").unwrap();
        assert_eq!((old.code, old.sql_state), (1045, SqlState::GENERAL));
        assert_eq!(old.message, b"Access denied");
    }

    #[test]
    fn garbage_never_panics() {
        for bytes in [
            &b""[..],
            b"\x00",
            b"\xfe",
            b"\xff",
            b"\xfc\x01",
            b"\x00\xfe",
        ] {
            for expect in [
                Expect::Results,
                Expect::Prepare,
                Expect::FieldList,
                Expect::Fetch,
            ] {
                let mut t = Tracker::new(expect, true);
                let _ = t.feed(bytes, bytes.len());
            }
            let _ = OkPacket::parse(bytes, true);
            let _ = ErrPacket::parse(bytes);
        }
    }
}
