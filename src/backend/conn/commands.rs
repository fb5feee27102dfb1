//! Commands Sluice runs on a backend connection itself: small queries, prepares,
//! pipelined internal batches, statement closes, COM_RESET_CONNECTION and COM_QUIT.
//! None of them counts as a use of the connection: only a client's borrow coming back
//! does (the pool's release), so the pool's own checks never keep an idle connection
//! from expiring.

use std::sync::Arc;
use std::time::Duration;

use super::login::stream_write;
use super::{
    narrow_tracking, session_tracking, BackendConn, Internal, Rows, Schema, Target, WireReply,
    MULTI_STATEMENTS_OFF, MULTI_STATEMENTS_ON, SHOW_VARIABLES,
};
use crate::backend::ConnectionError;
use crate::multiplex::variables::{classify, Tracked, Variables, CONNECTION_CHARSET};
use crate::net::MaybeTls;
use crate::protocol::command::{
    COM_INIT_DB, COM_PING, COM_QUERY, COM_QUIT, COM_RESET_CONNECTION, COM_SET_OPTION,
    COM_STMT_CLOSE, COM_STMT_PREPARE,
};
use crate::protocol::packet::{self, PacketReader, MAX_PAYLOAD};
use crate::protocol::prepared::PrepareOk;
use crate::protocol::response::{Expect, OkPacket, Seen, Tracker};
use crate::protocol::result_set::column_name;
use crate::protocol::session_track::{self, Change};
use crate::protocol::wire::Reader;
use crate::protocol::ProtocolError;

impl BackendConn {
    /// COM_QUIT, then waits (briefly) for the server to close its end, plus a moment:
    /// the server counts a connection out only after closing its socket, and the pool
    /// reuses this connection's slot once this returns.
    pub async fn quit(mut self) {
        let _ = crate::clock::timeout(Duration::from_secs(1), async {
            if self.write(&packet::packet(0, &[COM_QUIT])).await.is_ok() {
                // Anything still arriving (the rest of an abandoned result) is dropped
                // as it comes, so this never buffers more than one read.
                let (stream, reader) = self.io.parts();
                while reader.fill(stream).await.is_ok() {
                    reader.discard();
                }
            }
        })
        .await;
        crate::clock::sleep(Duration::from_millis(5)).await;
    }

    #[inline]
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        stream_write(self.io.parts().0, bytes).await
    }

    /// Returns once the answer to the command just sent has started: bytes of it are
    /// buffered (or reading failed, which the relay then reports).
    pub async fn answer_started(&mut self) {
        let (stream, reader) = self.io.parts();
        if reader.buffered().is_empty() {
            let _ = reader.fill(stream).await;
        }
    }

    /// The stream and its read buffer, for relaying client commands.
    #[inline]
    pub fn io(&mut self) -> (&mut MaybeTls, &mut PacketReader) {
        self.io.parts()
    }

    /// COM_PING: the server answers (a health check).
    pub async fn ping(&mut self) -> Result<(), ConnectionError> {
        self.command(&[COM_PING]).await.map(drop)
    }

    /// Runs one SQL statement and returns its text rows (empty for OK).
    pub async fn query(&mut self, sql: &str) -> Result<Rows, ConnectionError> {
        self.command(&com_query(sql)).await
    }

    /// Prepares `sql` on this connection and reads the whole response.
    pub async fn prepare(&mut self, sql: &[u8]) -> Result<WireReply, ConnectionError> {
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(COM_STMT_PREPARE);
        payload.extend_from_slice(sql);
        self.command_wire(&payload, Expect::Prepare).await
    }

    /// Runs `sql` and returns its whole response as wire bytes (sequence ids from 1),
    /// for Sluice to send a client later.
    pub async fn query_wire(&mut self, sql: &str) -> Result<WireReply, ConnectionError> {
        self.command_wire(&com_query(sql), Expect::Results).await
    }

    /// Sends a command and keeps its whole response as wire bytes.
    async fn command_wire(
        &mut self,
        payload: &[u8],
        expect: Expect,
    ) -> Result<WireReply, ConnectionError> {
        self.write_payload(payload).await?;
        let mut tracker = Tracker::new(expect, true);
        let mut reply = WireReply {
            wire: Vec::new(),
            ok: None,
            rows: 0,
        };
        while !tracker.is_done() {
            let frame = self.io.read(MAX_PAYLOAD).await?;
            let p = frame.payload();
            let in_rows = tracker.in_rows();
            match tracker.feed(p, p.len())? {
                Seen::Data if in_rows => reply.rows += 1,
                Seen::PrepareOk => reply.ok = Some(PrepareOk::parse(p)?),
                Seen::Ok => self.status = OkPacket::parse(p, true)?.status,
                Seen::Eof => self.status = tracker.status(),
                _ => {}
            }
            reply.wire.extend_from_slice(frame.as_wire());
        }
        Ok(reply)
    }

    /// Closes server statements (COM_STMT_CLOSE has no response).
    pub async fn close_statements(&mut self, ids: &[u32]) -> Result<(), ConnectionError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(9 * ids.len());
        for id in ids {
            let mut payload = [COM_STMT_CLOSE, 0, 0, 0, 0];
            payload[1..].copy_from_slice(&id.to_le_bytes());
            packet::push_packet(&mut batch, 0, &payload);
        }
        self.write(&batch).await
    }

    /// Writes one command payload of any length, split into 16 MiB packets as needed.
    #[inline]
    pub async fn write_payload(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        let mut wire = Vec::with_capacity(payload.len() + 4 * (1 + payload.len() / MAX_PAYLOAD));
        packet::push_command(&mut wire, payload);
        self.write(&wire).await
    }

    /// Sends several internal commands in one write and reads their responses in order:
    /// one round trip. A server error answers its own command only; any other error
    /// leaves the connection out of step and ends the batch.
    pub async fn pipeline(
        &mut self,
        commands: &[Internal<'_>],
    ) -> Result<Vec<Result<Rows, ConnectionError>>, ConnectionError> {
        let mut batch = Vec::with_capacity(128);
        for command in commands {
            let payload = match command {
                Internal::InitDb(schema) => [&[COM_INIT_DB][..], schema].concat(),
                Internal::Query(sql) => com_query(sql),
                Internal::MultiStatements(on) => {
                    let option = if *on {
                        MULTI_STATEMENTS_ON
                    } else {
                        MULTI_STATEMENTS_OFF
                    };
                    let [o0, o1] = option.to_le_bytes();
                    vec![COM_SET_OPTION, o0, o1]
                }
            };
            packet::push_packet(&mut batch, 0, &payload);
        }
        self.write(&batch).await?;
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            match self.read_response().await {
                Err(e) if e.server_code().is_none() => return Err(e),
                result => {
                    match (&result, command) {
                        (Ok(_), Internal::InitDb(schema)) => {
                            self.schema = Schema::Known(Some(schema.to_vec()));
                        }
                        (Ok(_), Internal::MultiStatements(on)) => self.multi_statements = *on,
                        _ => {}
                    }
                    results.push(result);
                }
            }
        }
        Ok(results)
    }

    /// COM_RESET_CONNECTION, then the session set-up again: what a pinned session left
    /// behind (variables, temporary tables, locks, open transaction) is gone.
    pub async fn reset(&mut self, target: &Target) -> Result<(), ConnectionError> {
        self.schema = Schema::Unknown;
        self.statements.clear();
        self.set_up_session(target, true, false).await
    }

    /// Session tracking and init_query (after COM_RESET_CONNECTION when `reset`), then
    /// `SHOW SESSION VARIABLES` when `learn` (the partition's baseline), sent pipelined:
    /// one round trip however many statements. The server answers commands in order, so
    /// reading the responses one after another is enough.
    pub(super) async fn set_up_session(
        &mut self,
        target: &Target,
        reset: bool,
        learn: bool,
    ) -> Result<(), ConnectionError> {
        let mut batch = Vec::with_capacity(256);
        let mut commands = 0;
        if reset {
            packet::push_packet(&mut batch, 0, &[COM_RESET_CONNECTION]);
            commands += 1;
        }
        let show = if learn { SHOW_VARIABLES } else { "" };
        // MySQL's reset puts the character set back to the server's default (MariaDB
        // keeps the handshake's): restate this partition's, as a fresh connection has it.
        let charset = reset
            .then(|| {
                let wanted = self.baseline.only(CONNECTION_CHARSET);
                Variables::replay(&wanted, &Variables::default(), &self.baseline, true)
            })
            .flatten()
            .unwrap_or_default();
        let tracking = session_tracking(&self.baseline);
        for sql in [
            tracking.as_str(),
            charset.as_str(),
            target.init_query.as_str(),
            show,
        ] {
            if !sql.is_empty() {
                packet::push_packet(&mut batch, 0, &com_query(sql));
                commands += 1;
            }
        }
        self.write(&batch).await?;
        // Read every response even after an error, so the connection stays in step.
        let mut first_error = None;
        let mut rows = Rows::new();
        for _ in 0..commands {
            match self.read_response().await {
                Ok(r) => rows = r,
                Err(e) if e.server_code().is_some() => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if learn {
            self.learn_baseline(&rows).await?;
        }
        // Whatever the set-up changed is, by definition, this partition's baseline.
        self.vars.clear();
        Ok(())
    }

    /// Keeps `SHOW SESSION VARIABLES`' rows as the partition's baseline, then narrows
    /// the system-variable tracker to their names, as later connections start. A round
    /// trip of its own (the list is what SHOW just returned), once per partition. The
    /// trackers are Sluice's to set: an init_query that changes them breaks multiplexing.
    async fn learn_baseline(&mut self, rows: &Rows) -> Result<(), ConnectionError> {
        self.baseline = Arc::new(Variables::from_rows(rows.iter().filter_map(|row| {
            Some((
                row.first()?.as_deref()?,
                row.get(1)?.as_deref().unwrap_or(b""),
            ))
        })));
        self.command(&com_query(&narrow_tracking(&self.baseline)))
            .await?;
        Ok(())
    }

    /// Sends a command and reads its whole response; an ERR becomes `ConnectionError::Server`.
    async fn command(&mut self, payload: &[u8]) -> Result<Rows, ConnectionError> {
        self.write(&packet::packet(0, payload)).await?;
        self.read_response().await
    }

    /// Runs one SQL statement and returns its column names and text rows (a statement
    /// whose columns differ by server, such as `SHOW REPLICA STATUS`).
    pub async fn query_named(
        &mut self,
        sql: &str,
    ) -> Result<(Vec<Vec<u8>>, Rows), ConnectionError> {
        self.write(&packet::packet(0, &com_query(sql))).await?;
        let mut names = Vec::new();
        let rows = self.read_response_into(Some(&mut names)).await?;
        Ok((names, rows))
    }

    /// Reads one whole response to an internal command.
    async fn read_response(&mut self) -> Result<Rows, ConnectionError> {
        self.read_response_into(None).await
    }

    /// [`Self::read_response`], keeping the column names in `names` when given.
    async fn read_response_into(
        &mut self,
        mut names: Option<&mut Vec<Vec<u8>>>,
    ) -> Result<Rows, ConnectionError> {
        let mut tracker = Tracker::new(Expect::Results, true);
        let mut rows = Rows::new();
        let mut error = None;
        // The first packet of a result set is its column count; definitions follow.
        let mut counted = false;
        while !tracker.is_done() {
            let frame = self.io.read(MAX_PAYLOAD).await?;
            let p = frame.payload();
            let is_row = tracker.in_rows();
            match tracker.feed(p, p.len())? {
                Seen::Err => error = Some(ConnectionError::from_err_packet(p)),
                Seen::Ok => {
                    let ok = OkPacket::parse(p, true)?;
                    self.track(&ok);
                }
                Seen::Eof => self.status = tracker.status(),
                Seen::LocalInfile => {
                    return Err(ProtocolError::Malformed("LOCAL INFILE request").into())
                }
                Seen::PrepareOk => {}
                Seen::Data if is_row => rows.push(parse_text_row(p)?),
                Seen::Data => {
                    if let Some(names) = names.as_deref_mut() {
                        if counted {
                            names.push(column_name(p)?.to_vec());
                        }
                    }
                    counted = true;
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Records what an OK packet of an internal command says about this connection: its
    /// status, a schema change, replayable system variables.
    fn track(&mut self, ok: &OkPacket<'_>) {
        self.status = ok.status;
        let Some(block) = ok.session_state else {
            return;
        };
        for change in session_track::changes(block).flatten() {
            match change {
                Change::Schema(s) => {
                    self.schema = Schema::Known(Some(s.to_vec()).filter(|s| !s.is_empty()));
                }
                Change::SystemVariable { name, value } => {
                    if let Ok(name) = std::str::from_utf8(name) {
                        if classify(name) == Tracked::Replay {
                            self.vars.record(name, value, &self.baseline);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Records system variables a relayed statement changed on this connection.
    pub fn record_variables(&mut self, changes: &[(Box<str>, Box<[u8]>)]) {
        for (name, value) in changes {
            self.vars.record(name, value, &self.baseline);
        }
    }
}

/// The payload of a COM_QUERY for `sql`.
fn com_query(sql: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + sql.len());
    payload.push(COM_QUERY);
    payload.extend_from_slice(sql.as_bytes());
    payload
}

fn parse_text_row(p: &[u8]) -> Result<Vec<Option<Vec<u8>>>, ProtocolError> {
    let mut r = Reader::new(p);
    let mut row = Vec::new();
    while !r.is_empty() {
        if p[r.position()] == 0xFB {
            r.skip(1, "null")?;
            row.push(None);
        } else {
            row.push(Some(r.lenenc_bytes("column value")?.to_vec()));
        }
    }
    Ok(row)
}
