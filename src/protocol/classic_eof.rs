//! Responses for clients without `CLIENT_DEPRECATE_EOF`, from backend connections that
//! negotiated it.
//!
//! Every backend connection negotiates DEPRECATE_EOF, so that clients of both kinds
//! share the pool (and so that a result set's end carries session state for Sluice to
//! see). Such a server omits the EOF after column definitions (of a result set, and of
//! each block of a COM_STMT_PREPARE response) and ends rows with an OK packet whose
//! header is 0xFE. A classic client expects those EOFs, and an EOF (warnings and status)
//! where rows end. [`ClassicEof`] puts the omitted EOFs back, turns each packet that
//! ends rows into an EOF, and renumbers the packets after an insertion.
//!
//! The server's EOF after column definitions has the status the rows end with (the
//! flags a statement sets, such as NO_INDEX_USED or MORE_RESULTS_EXISTS, are set before
//! its rows are sent): an inserted EOF takes it from the packet that ends the rows when
//! that packet has already been read, as it has for any result that fits in one read.
//! For a longer result it takes the last status the connection reported, which can
//! differ only in such flags; the client reads them again where the rows end. The one
//! flag a client acts on there, CURSOR_EXISTS, is never guessed: a cursor's response
//! ends right after its column definitions, and the packet that ends it becomes that
//! EOF.
//!
//! Responses Sluice keeps whole and sends later get the same treatment ([`for_client`]).

use bytes::BufMut;

use super::packet::{self, parse_header, HEADER_LEN, MAX_PAYLOAD};
use super::response::{eof_status, Expect, OkPacket, OmittedEof, Seen, Tracker, EOF_HEADER};
use super::{status, ProtocolError};

/// What becomes of a backend packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Relayed, with the sequence id [`ClassicEof::seq`] gives it.
    Relay,
    /// Dropped: the EOF written in its place stands for it.
    Replaced,
}

/// Warnings and status of a packet that ends rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowsEnd {
    pub warnings: u16,
    pub status: u16,
}

impl RowsEnd {
    /// For a packet the tracker saw end rows (a 0xFE OK, or a classic EOF); None for
    /// every other packet, including an OK that is a whole response (header 0x00).
    pub fn of(seen: Seen, payload: &[u8]) -> Result<Option<Self>, ProtocolError> {
        if payload.first() != Some(&EOF_HEADER) {
            return Ok(None);
        }
        Ok(match seen {
            Seen::Ok => {
                let ok = OkPacket::parse(payload, true)?;
                Some(Self {
                    warnings: ok.warnings,
                    status: ok.status,
                })
            }
            Seen::Eof => Some(Self {
                warnings: payload
                    .get(1..3)
                    .map_or(0, |w| u16::from_le_bytes([w[0], w[1]])),
                status: eof_status(payload)?,
            }),
            _ => None,
        })
    }
}

/// Follows one response for a classic client.
#[derive(Debug)]
pub struct ClassicEof {
    /// EOFs put in so far: what every later packet's sequence id moves by.
    shift: u8,
    /// A result set's column definitions ended: its EOF goes before the next packet.
    owed: bool,
    /// Status flags for an inserted EOF.
    status: u16,
}

impl ClassicEof {
    /// `status`: the connection's status before the command.
    pub fn new(status: u16) -> Self {
        Self {
            shift: 0,
            owed: false,
            status: status & !status::SESSION_STATE_CHANGED,
        }
    }

    /// How many EOFs were put in so far.
    pub fn inserted(&self) -> u8 {
        self.shift
    }

    /// The client's sequence id for a backend packet's.
    pub fn seq(&self, backend_seq: u8) -> u8 {
        backend_seq.wrapping_add(self.shift)
    }

    /// Called for the first physical packet of each logical one, after the tracker was
    /// fed it (`seen`) and before it is relayed: writes to `out` the EOF owed before it
    /// and, when it ends rows, the EOF that replaces it. `ahead`: the bytes already read
    /// after this packet.
    pub fn before(
        &mut self,
        backend_seq: u8,
        seen: Seen,
        payload: &[u8],
        ahead: &[u8],
        out: &mut impl BufMut,
    ) -> Result<Action, ProtocolError> {
        let end = RowsEnd::of(seen, payload)?;
        if std::mem::take(&mut self.owed) {
            let status = match end {
                Some(end) if end.status & status::CURSOR_EXISTS != 0 => None,
                Some(end) => Some(end.status),
                // A row: the rows' end may be among the bytes read behind it.
                None if seen == Seen::Data => {
                    Some(rows_end_ahead(ahead).map_or(self.status, |e| e.status))
                }
                None => Some(self.status),
            };
            if let Some(status) = status {
                self.insert(backend_seq, status, out);
            }
        }
        let Some(end) = end else {
            return Ok(Action::Relay);
        };
        let status = end.status & !status::SESSION_STATE_CHANGED;
        eof(out, self.seq(backend_seq), end.warnings, status);
        // A next result set's inserted EOF (MORE_RESULTS_EXISTS included).
        self.status = status;
        Ok(Action::Replaced)
    }

    /// Called after that packet was relayed: `omitted` is what the tracker said of it.
    pub fn after(&mut self, backend_seq: u8, omitted: Option<OmittedEof>, out: &mut impl BufMut) {
        match omitted {
            Some(OmittedEof::ResultColumns) => self.owed = true,
            Some(OmittedEof::PrepareBlock) => {
                self.insert(backend_seq.wrapping_add(1), self.status, out);
            }
            None => {}
        }
    }

    fn insert(&mut self, backend_seq: u8, status: u16, out: &mut impl BufMut) {
        let status = status & !status::SESSION_STATE_CHANGED;
        eof(out, self.seq(backend_seq), 0, status);
        self.shift = self.shift.wrapping_add(1);
    }
}

/// The end of the rows among `ahead`, packets that follow a row: the first packet that
/// ends rows, found by headers alone. None when the bytes run out first, or when an ERR
/// ends the rows.
fn rows_end_ahead(mut ahead: &[u8]) -> Option<RowsEnd> {
    let mut continued = false;
    while ahead.len() >= HEADER_LEN {
        let (len, _) = parse_header(ahead);
        let payload = ahead.get(HEADER_LEN..HEADER_LEN + len)?;
        if !continued {
            match payload.first() {
                Some(&EOF_HEADER) if len < MAX_PAYLOAD => {
                    return RowsEnd::of(Seen::Ok, payload).ok().flatten();
                }
                Some(&super::response::ERR_HEADER) => return None,
                _ => {}
            }
        }
        continued = len == MAX_PAYLOAD;
        ahead = &ahead[HEADER_LEN + len..];
    }
    None
}

fn eof(out: &mut impl BufMut, seq: u8, warnings: u16, status: u16) {
    let [w0, w1] = warnings.to_le_bytes();
    let [s0, s1] = status.to_le_bytes();
    packet::push_packet(out, seq, &[EOF_HEADER, w0, w1, s0, s1]);
}

/// What a client negotiated that changes how a response looks.
#[derive(Debug, Clone, Copy)]
pub struct ClientForm {
    pub deprecate_eof: bool,
    pub session_track: bool,
}

/// A whole response kept as wire bytes from a backend connection (a prepare's, the
/// kept `SHOW WARNINGS`), as a client of `form` must get it: with classic EOFs, and
/// with OK packets stripped of their session state for a client without
/// CLIENT_SESSION_TRACK (as the relay does). `status`: the connection's status before it.
pub fn for_client(
    wire: &[u8],
    expect: Expect,
    form: ClientForm,
    status: u16,
) -> Result<Vec<u8>, ProtocolError> {
    let mut tracker = Tracker::new(expect, true);
    let mut classic = (!form.deprecate_eof).then(|| ClassicEof::new(status));
    let mut out = Vec::with_capacity(wire.len() + 16);
    let mut rest = wire;
    let mut continuing = false;
    while !rest.is_empty() {
        let header = rest
            .get(..HEADER_LEN)
            .ok_or(ProtocolError::Truncated("kept response"))?;
        let (len, seq) = parse_header(header);
        let payload = rest
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or(ProtocolError::Truncated("kept response"))?;
        rest = &rest[HEADER_LEN + len..];
        let first = !continuing;
        continuing = len == MAX_PAYLOAD;
        let client_seq =
            |classic: &Option<ClassicEof>| classic.as_ref().map_or(seq, |c| c.seq(seq));
        if first {
            let seen = tracker.feed(payload, len)?;
            if let Some(classic) = classic.as_mut() {
                if classic.before(seq, seen, payload, rest, &mut out)? == Action::Replaced {
                    continue;
                }
            }
            if seen == Seen::Ok && !form.session_track {
                let ok = OkPacket::parse(payload, true)?;
                let plain = ok.encode_without_session_track(payload[0]);
                packet::push_packet(&mut out, client_seq(&classic), &plain);
                continue;
            }
        }
        out.extend_from_slice(&header[..3]);
        out.push(client_seq(&classic));
        out.extend_from_slice(payload);
        if let (true, Some(classic)) = (first, classic.as_mut()) {
            classic.after(seq, tracker.omitted_eof(), &mut out);
        }
    }
    Ok(out)
}

/// [`for_client`] for a classic client with session tracking.
#[cfg(test)]
fn translate(wire: &[u8], expect: Expect, status: u16) -> Result<Vec<u8>, ProtocolError> {
    let form = ClientForm {
        deprecate_eof: false,
        session_track: true,
    };
    for_client(wire, expect, form, status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(packets: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            packet::push_packet(&mut out, i as u8 + 1, p);
        }
        out
    }

    // Column definition of `SELECT 1` (MariaDB 10.11).
    const DEF: &[u8] =
        b"\x03def\x00\x00\x00\x011\x00\x0c\x3f\x00\x01\x00\x00\x00\x08\x81\x00\x00\x00\x00";

    #[test]
    fn a_result_set_gets_both_eofs_and_renumbered_rows() {
        // 1 column, one row, then the 0xFE OK with AUTOCOMMIT and one warning.
        let deprecated = wire(&[b"\x01", DEF, b"\x011", b"\xfe\x00\x00\x02\x00\x01\x00"]);
        let classic = translate(&deprecated, Expect::Results, status::AUTOCOMMIT).unwrap();
        let expected = wire(&[
            b"\x01",
            DEF,
            b"\xfe\x00\x00\x02\x00",
            b"\x011",
            b"\xfe\x01\x00\x02\x00",
        ]);
        assert_eq!(classic, expected);
    }

    #[test]
    fn an_empty_result_set_gets_two_eofs() {
        let deprecated = wire(&[b"\x01", DEF, b"\xfe\x00\x00\x22\x00\x00\x00"]);
        let classic = translate(&deprecated, Expect::Results, status::AUTOCOMMIT).unwrap();
        // Both with the status the rows end with (here NO_INDEX_USED too).
        let expected = wire(&[
            b"\x01",
            DEF,
            b"\xfe\x00\x00\x22\x00",
            b"\xfe\x00\x00\x22\x00",
        ]);
        assert_eq!(classic, expected);
    }

    #[test]
    fn a_cursor_ends_with_one_eof_that_says_so() {
        let cursor = status::AUTOCOMMIT | status::CURSOR_EXISTS;
        let [c0, c1] = cursor.to_le_bytes();
        let end = [0xfe, 0, 0, c0, c1, 0, 0];
        let deprecated = wire(&[b"\x01", DEF, &end]);
        let classic = translate(&deprecated, Expect::Results, status::AUTOCOMMIT).unwrap();
        assert_eq!(classic, wire(&[b"\x01", DEF, &[0xfe, 0, 0, c0, c1]]));
    }

    #[test]
    fn session_state_and_more_results_in_multi_statements() {
        // A result set whose end has MORE_RESULTS and session state, then an OK.
        let end = b"\xfe\x00\x00\x0a\x40\x00\x00\x00\x05\x02\x03\x02\x01\x31";
        let ok = b"\x00\x00\x00\x02\x00\x00\x00";
        let deprecated = wire(&[b"\x01", DEF, b"\x011", end, ok]);
        let classic = translate(&deprecated, Expect::Results, status::AUTOCOMMIT).unwrap();
        let expected = wire(&[
            b"\x01",
            DEF,
            b"\xfe\x00\x00\x0a\x00",
            b"\x011",
            b"\xfe\x00\x00\x0a\x00",
            ok,
        ]);
        assert_eq!(classic, expected);
    }

    #[test]
    fn rows_not_yet_read_get_the_last_status_known() {
        let mut classic = ClassicEof::new(status::AUTOCOMMIT | status::SESSION_STATE_CHANGED);
        let mut out = Vec::new();
        classic.after(2, Some(OmittedEof::ResultColumns), &mut out);
        assert!(out.is_empty());
        // The first row, with only part of the next row read behind it.
        let row = b"\x011";
        let action = classic.before(3, Seen::Data, row, b"\x05\x00\x00\x04\x01", &mut out);
        assert_eq!(action.unwrap(), Action::Relay);
        assert_eq!(out, wire(&[b"", b"", b"\xfe\x00\x00\x02\x00"])[8..]);
        assert_eq!(classic.seq(3), 4);
    }

    #[test]
    fn a_prepare_gets_an_eof_after_each_block() {
        // Statement 1, 1 column, 2 parameters.
        let ok: &[u8] = b"\x00\x01\x00\x00\x00\x01\x00\x02\x00\x00\x00\x00";
        let deprecated = wire(&[ok, DEF, DEF, DEF]);
        let classic = translate(&deprecated, Expect::Prepare, status::AUTOCOMMIT).unwrap();
        let eof: &[u8] = b"\xfe\x00\x00\x02\x00";
        assert_eq!(classic, wire(&[ok, DEF, DEF, eof, DEF, eof]));
    }

    #[test]
    fn an_error_after_rows_follows_an_eof() {
        let err: &[u8] = b"\xff\x15\x04#HY000boom";
        let deprecated = wire(&[b"\x01", DEF, err]);
        let classic = translate(&deprecated, Expect::Results, status::AUTOCOMMIT).unwrap();
        assert_eq!(classic, wire(&[b"\x01", DEF, b"\xfe\x00\x00\x02\x00", err]));
    }

    #[test]
    fn a_plain_ok_is_left_alone() {
        let ok = wire(&[b"\x00\x01\x00\x02\x40\x00\x00\x00\x03\x02\x01\x31"]);
        assert_eq!(translate(&ok, Expect::Results, 0).unwrap(), ok);
    }

    #[test]
    fn kept_oks_lose_their_session_state_for_clients_without_tracking() {
        // A row, then the 0xFE OK of a DEPRECATE_EOF client, with a statement_id item.
        let end: &[u8] = b"\xfe\x00\x00\x02\x40\x00\x00\x00\x05\x00\x03\x01\x31\x00";
        let kept = wire(&[b"\x01", DEF, b"\x011", end]);
        let form = ClientForm {
            deprecate_eof: true,
            session_track: false,
        };
        let plain = for_client(&kept, Expect::Results, form, 0).unwrap();
        assert_eq!(
            plain,
            wire(&[b"\x01", DEF, b"\x011", b"\xfe\x00\x00\x02\x00\x00\x00"])
        );
        let tracked = ClientForm {
            session_track: true,
            ..form
        };
        assert_eq!(
            for_client(&kept, Expect::Results, tracked, 0).unwrap(),
            kept
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let deprecated = wire(&[b"\x01", DEF, b"\x011"]);
        for cut in 0..deprecated.len() {
            let _ = translate(&deprecated[..cut], Expect::Results, 0);
        }
        assert!(translate(&deprecated[..3], Expect::Results, 0).is_err());
    }
}
