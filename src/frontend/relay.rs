//! Relays one backend response to the client: frames are passed through in batches,
//! without copying, as they arrive; only OK packets are inspected (and rewritten for
//! clients without `CLIENT_SESSION_TRACK`). Clients without `CLIENT_DEPRECATE_EOF` get
//! the EOF packets they expect (`protocol::classic_eof`).

use std::time::Duration;

use bytes::BytesMut;

use crate::backend::conn::BackendConn;
use crate::multiplex::connection_scope::Ran;
use crate::multiplex::tracking::{observe, Observation};
use crate::net::{MaybeTls, PacketStream};
use crate::protocol::classic_eof::{self, Action, ClassicEof, ClientForm};
use crate::protocol::packet::{Frame, PacketReader, MAX_PAYLOAD};
use crate::protocol::response::{Expect, OkPacket, PlainOk, Seen, Tracker};
use crate::protocol::{caps, status, ProtocolError};

/// What a relayed response told about the session.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Status flags of the last OK or EOF packet, if the response had one.
    pub status: Option<u16>,
    pub observation: Observation,
    /// The response was (or ended with) an ERR packet: its error code.
    pub error: Option<u16>,
    /// The last auto-generated id an OK packet reported (0: none).
    pub last_insert_id: u64,
    /// Rows of the last result set, if the response had one (what FOUND_ROWS() reports
    /// next, for a statement without SQL_CALC_FOUND_ROWS).
    pub result_rows: Option<u64>,
    /// ROW_COUNT() after the statement: -1 after a result set or an error, else the
    /// affected rows of its last OK packet.
    pub row_count: Option<i64>,
    /// The statement left warnings or an error (what SHOW WARNINGS lists next).
    pub diagnostics: bool,
    /// The statement left values a next statement may ask the connection for: warnings
    /// or an error (SHOW WARNINGS), affected rows (ROW_COUNT()), an insert id.
    pub leaves_connection_scope: bool,
}

impl Outcome {
    /// What the statement left that the session's connection-scoped values follow.
    pub fn ran(&self) -> Ran {
        Ran {
            last_insert_id: self.last_insert_id,
            leaves_connection_scope: self.leaves_connection_scope,
            diagnostics: self.diagnostics,
            result_rows: self.result_rows,
            row_count: self.row_count,
        }
    }
}

/// Why a relay stopped early.
#[derive(Debug)]
pub enum RelayError {
    /// The backend failed; `sent` says whether part of the response reached the client.
    Backend { sent: bool, error: ProtocolError },
    /// Writing to the client failed.
    Client(std::io::Error),
}

/// The client side of a relay: its stream, its read buffer (a LOCAL INFILE request makes
/// the client send its file), what it negotiated, and how long it may stall.
pub struct ClientSide<'c> {
    pub io: &'c mut PacketStream,
    pub capabilities: u32,
    /// A client that takes no bytes of the response for this long is given up on.
    pub write_timeout: Duration,
    /// A client that sends no bytes of its file for this long is given up on.
    pub read_timeout: Duration,
}

/// Relays the response to the command just written to `conn`.
///
/// Not cancellation safe: a response cut short leaves the backend mid-stream, so the
/// caller must discard the connection when this returns an error.
/// A client that takes no bytes for `write_timeout` is given up on (the backend would
/// otherwise be held by a frozen reader forever).
pub async fn relay_response(
    side: ClientSide<'_>,
    conn: &mut BackendConn,
    expect: Expect,
) -> Result<Outcome, RelayError> {
    let ClientSide {
        io: client_io,
        capabilities: client_caps,
        write_timeout,
        read_timeout,
    } = side;
    let mut relay = Response::new(expect, client_caps, conn.status());
    if relay.classic.is_some() {
        relay.pending = Pending::Assembled(client_io.take_assembly());
    }
    let outcome = relay_into(&mut relay, client_io, conn, write_timeout, read_timeout).await;
    if let Pending::Assembled(buf) = relay.pending {
        client_io.keep_assembly(buf);
    }
    outcome
}

async fn relay_into(
    relay: &mut Response,
    client_io: &mut PacketStream,
    conn: &mut BackendConn,
    write_timeout: Duration,
    read_timeout: Duration,
) -> Result<Outcome, RelayError> {
    let client_caps = relay.client_caps;
    let (client, client_reader) = client_io.parts();
    let mut continuing = false;
    let (backend, reader) = conn.io();
    loop {
        let frame = match reader.next_buffered(MAX_PAYLOAD) {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                relay.flush(client, write_timeout).await?;
                if let Err(error) = reader.fill(backend).await {
                    return Err(relay.backend_failed(error));
                }
                continue;
            }
            Err(error) => return Err(relay.backend_failed(error)),
        };
        let was_continuing = continuing;
        continuing = frame.is_continued();
        if was_continuing {
            // The rest of a packet of 16 MiB or more: passed on as it is.
            relay.pass(frame);
        } else {
            let in_rows = relay.tracker.in_rows();
            let seen = relay.feed(frame.payload())?;
            let rewritten = match seen {
                Seen::Ok => relay.take_in_ok(frame.payload(), in_rows)?,
                Seen::Eof => relay.take_in_eof(frame.payload()),
                Seen::Err => relay.take_in_err(frame.payload()),
                Seen::LocalInfile if client_caps & caps::LOCAL_FILES != 0 => {
                    // The request goes to the client, its file back to the server, then
                    // the server's answer follows as for any statement.
                    relay.flush_with(frame, client, write_timeout).await?;
                    let shift = relay.inserted();
                    send_file(client, client_reader, backend, read_timeout, shift).await?;
                    relay.tracker.file_sent();
                    continue;
                }
                Seen::LocalInfile => {
                    // Never negotiated, so a server that asks anyway is not followed.
                    let error = ProtocolError::Malformed("unexpected LOCAL INFILE request");
                    return Err(relay.backend_failed(error));
                }
                Seen::Data | Seen::PrepareOk => None,
            };
            relay.queue(frame, seen, rewritten, reader.buffered())?;
        }
        if relay.tracker.is_done() && !continuing {
            relay.flush(client, write_timeout).await?;
            break;
        }
    }
    conn.relayed(relay.schema_change.take(), relay.outcome.status);
    Ok(std::mem::take(&mut relay.outcome))
}

/// The frames queued for the client's next write.
enum Pending {
    /// Frames as they were split off the backend's read buffer, joined without copying
    /// (they are contiguous there).
    Frames(BytesMut),
    /// Frames copied into the client stream's assembly buffer: for a response Sluice
    /// changes as it goes (the EOFs a classic client expects are put in between the
    /// frames), where joining views would allocate and copy on every response anyway.
    Assembled(BytesMut),
}

impl Pending {
    #[inline]
    fn push(&mut self, frame: Frame) {
        match self {
            Self::Frames(buf) => buf.unsplit(frame.into_bytes()),
            Self::Assembled(buf) => buf.extend_from_slice(frame.as_wire()),
        }
    }

    fn buf(&mut self) -> &mut BytesMut {
        match self {
            Self::Frames(buf) | Self::Assembled(buf) => buf,
        }
    }

    /// After a write: frames are dropped so the read buffer can reclaim their memory; the
    /// assembly buffer keeps its own.
    fn written(&mut self) {
        match self {
            Self::Frames(buf) => *buf = BytesMut::new(),
            Self::Assembled(buf) => buf.clear(),
        }
    }
}

/// One response on its way from the backend to the client: what it has said so far,
/// and the frames queued to go out in one write.
struct Response {
    tracker: Tracker,
    /// For a client without DEPRECATE_EOF (backend connections all negotiate it), the
    /// EOFs it expects are put back in.
    classic: Option<ClassicEof>,
    /// The client lacks SESSION_TRACK: OK packets lose their session-state part.
    rewrite_ok: bool,
    outcome: Outcome,
    client_caps: u32,
    pending: Pending,
    /// Part of the response reached the client.
    sent: bool,
    /// Rows of the result set being relayed.
    rows: u64,
    schema_change: Option<Option<Vec<u8>>>,
}

impl Response {
    fn new(expect: Expect, client_caps: u32, backend_status: u16) -> Self {
        Self {
            tracker: Tracker::new(expect, true),
            classic: (client_caps & caps::DEPRECATE_EOF == 0)
                .then(|| ClassicEof::new(backend_status)),
            rewrite_ok: client_caps & caps::SESSION_TRACK == 0,
            outcome: Outcome::default(),
            client_caps,
            pending: Pending::Frames(BytesMut::new()),
            sent: false,
            rows: 0,
            schema_change: None,
        }
    }

    fn backend_failed(&self, error: ProtocolError) -> RelayError {
        RelayError::Backend {
            sent: self.sent,
            error,
        }
    }

    /// What the first packet of a frame is, counted for FOUND_ROWS() and ROW_COUNT().
    #[inline]
    fn feed(&mut self, payload: &[u8]) -> Result<Seen, RelayError> {
        let in_rows = self.tracker.in_rows();
        let seen = self
            .tracker
            .feed(payload, payload.len())
            .map_err(|error| self.backend_failed(error))?;
        match seen {
            Seen::Data if in_rows => self.rows += 1,
            Seen::Ok | Seen::Eof if in_rows => {
                self.outcome.result_rows = Some(std::mem::take(&mut self.rows));
                self.outcome.row_count = Some(-1);
            }
            Seen::Err => self.outcome.row_count = Some(-1),
            _ => {}
        }
        Ok(seen)
    }

    /// An OK packet: its status, insert id, affected rows, warnings and session state.
    /// How it is rewritten for the client, if it must be.
    #[inline]
    fn take_in_ok(&mut self, payload: &[u8], in_rows: bool) -> Result<Option<PlainOk>, RelayError> {
        let ok = OkPacket::parse(payload, true).map_err(|error| self.backend_failed(error))?;
        let outcome = &mut self.outcome;
        outcome.status = Some(ok.status);
        if !in_rows {
            outcome.row_count = Some(i64::try_from(ok.affected_rows).unwrap_or(-1));
        }
        if ok.last_insert_id != 0 {
            outcome.last_insert_id = ok.last_insert_id;
        }
        outcome.diagnostics = ok.warnings > 0;
        outcome.leaves_connection_scope =
            ok.warnings > 0 || ok.affected_rows > 0 || ok.last_insert_id != 0;
        let obs = observe(ok.status, ok.session_state);
        if obs.schema.is_some() {
            self.schema_change = obs.schema.clone();
            outcome.observation.schema = obs.schema;
        }
        if outcome.observation.pin.is_none() {
            outcome.observation.pin = obs.pin;
        }
        outcome.observation.variables.extend(obs.variables);
        let trailing = ok.status & status::SESSION_STATE_CHANGED != 0 || !ok.info.is_empty();
        Ok((self.rewrite_ok && trailing).then(|| ok.plain()))
    }

    #[inline]
    fn take_in_eof(&mut self, payload: &[u8]) -> Option<PlainOk> {
        self.outcome.status = Some(self.tracker.status());
        let warnings = payload
            .get(1..3)
            .map_or(0, |w| u16::from_le_bytes([w[0], w[1]]));
        self.outcome.diagnostics = warnings > 0;
        self.outcome.leaves_connection_scope = warnings > 0;
        None
    }

    #[inline]
    fn take_in_err(&mut self, payload: &[u8]) -> Option<PlainOk> {
        // 0xff, then the code (a malformed packet's is 0: still an error).
        let code = match payload {
            [_, lo, hi, ..] => u16::from_le_bytes([*lo, *hi]),
            _ => 0,
        };
        self.outcome.error = Some(code);
        self.outcome.diagnostics = true;
        self.outcome.leaves_connection_scope = true;
        None
    }

    /// EOFs Sluice put in the response so far.
    fn inserted(&self) -> u8 {
        self.classic.as_ref().map_or(0, ClassicEof::inserted)
    }

    /// Queues a frame that continues a packet of 16 MiB or more.
    #[inline]
    fn pass(&mut self, mut frame: Frame) {
        if let Some(classic) = &self.classic {
            frame.set_seq(classic.seq(frame.seq()));
        }
        self.pending.push(frame);
    }

    /// Queues the frame (renumbered for EOFs put in, or replaced by its rewritten form
    /// or by the EOF a classic client expects), with any EOF that goes after it.
    #[inline]
    fn queue(
        &mut self,
        mut frame: Frame,
        seen: Seen,
        rewrite: Option<PlainOk>,
        ahead: &[u8],
    ) -> Result<(), RelayError> {
        let backend_seq = frame.seq();
        let mut replaced = false;
        if let Some(classic) = self.classic.as_mut() {
            replaced = classic
                .before(
                    backend_seq,
                    seen,
                    frame.payload(),
                    ahead,
                    self.pending.buf(),
                )
                .map_err(|error| RelayError::Backend {
                    sent: self.sent,
                    error,
                })?
                == Action::Replaced;
        }
        if let Some(plain) = rewrite.filter(|_| !replaced) {
            // In place (on MySQL every OK carries session state, so this is every
            // statement's OK for such clients): a shorter frame still joins the frames
            // before it without a copy.
            let len = plain.apply(frame.payload_mut());
            frame.truncate_payload(len);
            if let Some(classic) = &self.classic {
                frame.set_seq(classic.seq(backend_seq));
            }
            self.pending.push(frame);
            return Ok(());
        }
        if !replaced {
            if let Some(classic) = &self.classic {
                frame.set_seq(classic.seq(backend_seq));
            }
            self.pending.push(frame);
            if let Some(classic) = self.classic.as_mut() {
                classic.after(backend_seq, self.tracker.omitted_eof(), self.pending.buf());
            }
        }
        Ok(())
    }

    /// Sends what is queued, then `request` (a LOCAL INFILE request), numbered past the
    /// EOFs put in before it (an earlier result of a multi-statement): the client's file
    /// packets follow that numbering, the server's count is shifted back.
    async fn flush_with(
        &mut self,
        mut request: Frame,
        client: &mut MaybeTls,
        write_timeout: Duration,
    ) -> Result<(), RelayError> {
        request.set_seq(request.seq().wrapping_add(self.inserted()));
        self.pending.push(request);
        self.flush(client, write_timeout).await
    }

    #[inline]
    async fn flush(
        &mut self,
        client: &mut MaybeTls,
        write_timeout: Duration,
    ) -> Result<(), RelayError> {
        let pending = self.pending.buf();
        if pending.is_empty() {
            return Ok(());
        }
        client
            .send_within(pending, write_timeout)
            .await
            .map_err(RelayError::Client)?;
        self.sent = true;
        self.pending.written();
        Ok(())
    }
}

/// A whole backend response kept as wire bytes (a prepare's, shared by clients of
/// every kind; kept diagnostics), as this client must get it. `status`: the backend's
/// status when it sent the response.
pub fn kept_for_client(
    wire: &[u8],
    expect: Expect,
    client_caps: u32,
    status: u16,
) -> Result<Vec<u8>, ProtocolError> {
    let form = ClientForm {
        deprecate_eof: client_caps & caps::DEPRECATE_EOF != 0,
        session_track: client_caps & caps::SESSION_TRACK != 0,
    };
    if form.deprecate_eof && form.session_track {
        return Ok(wire.to_vec());
    }
    classic_eof::for_client(wire, expect, form, status)
}

/// Passes the client's file packets to the server, up to and including the empty packet
/// that ends the file (sent at once when the client has no such file), numbered as the
/// server counts (`shift`: packets Sluice put in the response before the request).
async fn send_file(
    client: &mut MaybeTls,
    reader: &mut PacketReader,
    backend: &mut MaybeTls,
    read_timeout: Duration,
    shift: u8,
) -> Result<(), RelayError> {
    loop {
        let frame =
            match crate::clock::timeout(read_timeout, reader.read(client, MAX_PAYLOAD)).await {
                Ok(Ok(frame)) => frame,
                Ok(Err(e)) => return Err(RelayError::Client(std::io::Error::other(e))),
                Err(_) => {
                    let stalled = std::io::ErrorKind::TimedOut;
                    return Err(RelayError::Client(stalled.into()));
                }
            };
        let last = frame.payload().is_empty();
        let mut frame = frame;
        frame.set_seq(frame.seq().wrapping_sub(shift));
        backend
            .send(&frame.into_bytes())
            .await
            .map_err(|e| RelayError::Backend {
                sent: true,
                error: e.into(),
            })?;
        if last {
            return Ok(());
        }
    }
}
