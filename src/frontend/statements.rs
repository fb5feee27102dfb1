//! Binary-protocol prepared statements for one client session, without pinning: the
//! client sees Sluice's statement ids; each command is bound to whichever backend serves
//! it, preparing the statement there first if needed (multiplex::statements).

use std::sync::Arc;

use super::relay::kept_for_client;
use super::session::{Outgoing, Session};
use super::FrontendError;
use crate::backend::conn::{BackendConn, Internal, Schema};
use crate::backend::BackendError;
use crate::multiplex::statements::{ClientStmt, StmtKey, PARSE_VARIABLES};
use crate::multiplex::{classify, Variables};
use crate::protocol::command::Command;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::prepared::{set_statement_id, statement_id, ExecuteLayout};
use crate::protocol::response::{ok_packet, Expect};

/// Where a statement is on the held backend.
enum OnBackend {
    Prepared(u32),
    /// The server refused to prepare it here; its ERR packet (sequence id 1).
    Refused(Vec<u8>),
}

impl Session<'_> {
    /// COM_STMT_PREPARE: answered from the held backend's statement if it already has the
    /// same one (no round trip), else prepared there; the client gets its own id.
    pub(super) async fn stmt_prepare(&mut self, frame: Frame) -> Result<(), FrontendError> {
        if frame.is_continued() {
            let seq = self.skip_rest(&frame).await?;
            return self
                .reply(&ErrorPacket::statement_too_large().encode(seq))
                .await;
        }
        let sql = &frame.payload()[1..];
        let class = classify::classify(sql, self.backslash_escapes());
        if class.kill {
            return self.reply(&ErrorPacket::kill_unsupported().encode(1)).await;
        }
        let key = StmtKey::new(
            self.client.schema.clone(),
            self.vars.only(PARSE_VARIABLES),
            sql.to_vec(),
        )
        .at_generation(self.ctx().pool.connector().schema_generation());
        let key = Arc::new(self.stmts.distinct(key));
        if !self.hold_backend(&frame, Expect::Prepare).await? {
            return Ok(());
        }
        let client_caps = self.client.capabilities;
        let (response, params) = match self.on_backend(&key).await {
            Ok(OnBackend::Prepared(_)) => {
                let conn = self.lease_conn();
                let status = conn.status();
                let stmt = conn
                    .statements()
                    .get_mut(&key)
                    .expect("just prepared on this backend");
                let response =
                    kept_for_client(&stmt.response, Expect::Prepare, client_caps, status);
                (response, stmt.params)
            }
            Ok(OnBackend::Refused(err)) => {
                self.ctx().metrics.query_errors.inc();
                self.reply(&err).await?;
                self.settle(false);
                return Ok(());
            }
            Err(e) => return self.backend_failed(1, &e).await,
        };
        let mut answer = match response {
            Ok(answer) => answer,
            Err(e) => return self.backend_failed(1, &BackendError::Protocol(e)).await,
        };
        let Some(id) = self.stmts.add(ClientStmt {
            key,
            params,
            class,
            types: None,
        }) else {
            self.settle(false);
            return self
                .reply(&ErrorPacket::too_many_statements().encode(1))
                .await;
        };
        // The first packet's payload starts after its 4-byte header with 0x00, then the id.
        set_statement_id(&mut answer[4..], id);
        // Warnings the previous statement left are read before the backend goes back
        // (the affinity window), as for any statement.
        self.settle(self.scope.diagnostics_pending());
        self.reply(&answer).await
    }

    /// COM_STMT_CLOSE: forgets the client's id. The server statement stays for others
    /// (the backend's bound closes it eventually), unless this session holds the backend
    /// for it (long data, an open cursor): then it is closed there at once.
    pub(super) async fn stmt_close(&mut self, frame: Frame) -> Result<(), FrontendError> {
        let Some(id) = statement_id(frame.payload()) else {
            return Ok(());
        };
        if self.stmts.get(id).is_none() {
            return Ok(());
        }
        self.forget_deferred(id);
        self.discard_held(id).await?;
        self.stmts.remove(id);
        // Its statement may have been the last thing holding the backend. (A window kept
        // open for the previous statement's warnings stays open: closing runs nothing.)
        self.settle(false);
        Ok(())
    }

    /// Drops what statement `id` holds on the held backend (long data, a cursor) by
    /// closing its server statement there; it is prepared again when next used.
    async fn discard_held(&mut self, id: u32) -> Result<(), FrontendError> {
        if !self.hold.statements_mut().is_some_and(|s| s.forget(id)) {
            return Ok(());
        }
        let Some(key) = self.stmts.get(id).map(|s| s.key.clone()) else {
            return Ok(());
        };
        if let Some(lease) = self.hold.lease_mut() {
            let conn = lease.conn();
            if let Some(server_id) = conn.statements().remove(&key) {
                if conn.close_statements(&[server_id]).await.is_err() {
                    let lost_state = self.drop_backend();
                    return Self::carry_on(lost_state);
                }
            }
        }
        Ok(())
    }

    /// Answers statement commands that need no backend: unknown ids (as MySQL does), a
    /// reset or fetch of a statement this session has nothing open for. Some(frame) when
    /// the command must go to a backend.
    pub(super) async fn stmt_precheck(
        &mut self,
        command: Command,
        frame: Frame,
    ) -> Result<Option<Frame>, FrontendError> {
        let id = statement_id(frame.payload()).unwrap_or(0);
        let known = self.stmts.get(id).is_some();
        let name = match command {
            Command::StmtExecute => "mysqld_stmt_execute",
            Command::StmtReset => "mysqld_stmt_reset",
            Command::StmtFetch => "mysqld_stmt_fetch",
            // Long data for an unknown statement is dropped, as the server does (it
            // reports the problem at execute); so is long data after a chunk that
            // failed (the execute reports that failure).
            _ if !known || self.deferred_for(id) => {
                self.skip_rest(&frame).await?;
                return Ok(None);
            }
            _ => return Ok(Some(frame)),
        };
        let seq = frame.seq().wrapping_add(1);
        if !known {
            let seq = self.skip_rest(&frame).await?;
            self.ctx().metrics.query_errors.inc();
            let e = ErrorPacket::unknown_statement(id, name);
            self.reply(&e.encode(seq)).await?;
            return Ok(None);
        }
        if command == Command::StmtExecute {
            if let Some(mut err) = self.take_deferred(id) {
                // Its long data never (all) reached a server: running it would use none,
                // and chunks that did arrive must not meet the next execute.
                self.discard_held(id).await?;
                err[3] = self.skip_rest(&frame).await?;
                self.ctx().metrics.query_errors.inc();
                self.reply(&err).await?;
                return Ok(None);
            }
            return Ok(Some(frame));
        }
        let held_here = self.hold.holds_statement(id);
        match command {
            Command::StmtReset if !held_here => {
                // Nothing of this statement is on any server: no long data, no cursor.
                self.forget_deferred(id);
                let status = self.idle_status();
                self.reply(&ok_packet(seq, status)).await?;
                Ok(None)
            }
            Command::StmtFetch if !self.hold.statements().is_some_and(|s| s.has_cursor(id)) => {
                // MySQL ends the message with a full stop, MariaDB does not.
                let stop = if self.flavor == Flavor::MySql {
                    "."
                } else {
                    ""
                };
                self.ctx().metrics.query_errors.inc();
                let e = ErrorPacket::no_cursor(id, stop);
                self.reply(&e.encode(seq)).await?;
                Ok(None)
            }
            _ => Ok(Some(frame)),
        }
    }

    /// Binds a statement command to the held backend: prepares the statement there if
    /// needed, puts the server's id in place of the client's, and sends the parameter
    /// types again if this server has not seen this client's. Other commands pass through.
    /// None when the command was answered here (the server refused to prepare).
    pub(super) async fn bind_statement(
        &mut self,
        mut first: Frame,
    ) -> Result<Option<Outgoing>, FrontendError> {
        let command = first.payload().first().map(|&b| Command::from_byte(b));
        if !matches!(
            command,
            Some(
                Command::StmtExecute
                    | Command::StmtSendLongData
                    | Command::StmtReset
                    | Command::StmtFetch
            )
        ) {
            return Ok(Some(Outgoing::Frame(first)));
        }
        let id = statement_id(first.payload()).unwrap_or(0);
        let Some(stmt) = self.stmts.get(id) else {
            return Ok(Some(Outgoing::Frame(first)));
        };
        let key = stmt.key.clone();
        let server_id = match self.on_backend(&key).await {
            Ok(OnBackend::Prepared(server_id)) => server_id,
            Ok(OnBackend::Refused(mut err)) => {
                err[3] = self.skip_rest(&first).await?;
                self.ctx().metrics.query_errors.inc();
                self.reply_error(err).await?;
                return Ok(None);
            }
            Err(e) => {
                let seq = self.skip_rest(&first).await?;
                self.backend_failed(seq, &e).await?;
                return Ok(None);
            }
        };
        if let (Some(Command::StmtSendLongData), Some(held)) = (command, self.hold.statements_mut())
        {
            held.long_data(id);
        }
        set_statement_id(first.payload_mut(), server_id);
        if command != Some(Command::StmtExecute) {
            return Ok(Some(Outgoing::Frame(first)));
        }
        let stmt = self.stmts.get_mut(id).expect("looked up above");
        let Some(layout) = ExecuteLayout::of(first.payload(), stmt.params) else {
            return Ok(Some(Outgoing::Frame(first)));
        };
        let server = self
            .hold
            .lease_mut()
            .expect("bound to the held backend")
            .conn()
            .statements()
            .get_mut(&key)
            .expect("prepared above");
        if let Some(types) = layout.types(first.payload()) {
            // Most drivers send the same types every time: copy only when they change.
            // (Should the write fail, the connection is closed with what it knew.)
            if stmt.types.as_deref() != Some(types) {
                stmt.types = Some(types.into());
            }
            if server.types.as_deref() != Some(types) {
                server.types = Some(types.into());
            }
            return Ok(Some(Outgoing::Frame(first)));
        }
        match &stmt.types {
            Some(types) if server.types.as_deref() != Some(types) => {
                let types = types.clone();
                let (payload, seq) = self.whole_payload(first).await?;
                // Only now, with the whole command read: the server gets these types
                // with it (a failed write closes the connection).
                self.lease_conn()
                    .statements()
                    .get_mut(&key)
                    .expect("prepared above")
                    .types = Some(types.clone());
                Ok(Some(Outgoing::Payload(
                    layout.with_types(&payload, &types),
                    seq,
                )))
            }
            _ => Ok(Some(Outgoing::Frame(first))),
        }
    }

    /// The server id of `key` on the held backend, preparing it there first (in the
    /// schema it was prepared in) and closing the statements the bound pushes out.
    async fn on_backend(&mut self, key: &Arc<StmtKey>) -> Result<OnBackend, BackendError> {
        let bound = self.ctx().pool.statement_bound();
        let keep: Vec<Arc<StmtKey>> = self
            .hold
            .statements()
            .into_iter()
            .flat_map(|held| held.ids())
            .filter_map(|id| self.stmts.get(id))
            .map(|s| s.key.clone())
            .collect();
        let conn = self.lease_conn();
        if let Some(stmt) = conn.statements().get_mut(key) {
            return Ok(OnBackend::Prepared(stmt.id));
        }
        // The session may have moved on since it prepared this (another schema, another
        // sql_mode or character set): prepare it as it was prepared, then put the
        // backend back as the session left it for the command about to run.
        let mut before = Vec::new();
        let mut after = Vec::new();
        if let Some(schema) = key.schema().filter(|s| !conn.schema().is(Some(s))) {
            before.push(Internal::InitDb(schema));
        }
        let schema_now = match conn.schema() {
            Schema::Known(Some(now)) if !before.is_empty() => Some(now.clone()),
            _ => None,
        };
        let parse_now = conn.vars().only(PARSE_VARIABLES);
        let escapes = conn.backslash_escapes();
        let to_key = Variables::replay(key.parse(), &parse_now, conn.baseline(), escapes);
        before.extend(to_key.as_deref().map(Internal::Query));
        run_all(conn, &before).await?;
        conn.assume_parse_vars(key.parse(), PARSE_VARIABLES);
        // The way back is quoted as the sql_mode now in force reads quotes.
        let escapes = conn.backslash_escapes();
        let back = Variables::replay(&parse_now, key.parse(), conn.baseline(), escapes);
        after.extend(schema_now.as_deref().map(Internal::InitDb));
        after.extend(back.as_deref().map(Internal::Query));
        let reply = conn.prepare(key.sql()).await?;
        run_all(conn, &after).await?;
        conn.assume_parse_vars(&parse_now, PARSE_VARIABLES);
        let Some(ok) = reply.ok else {
            return Ok(OnBackend::Refused(reply.wire));
        };
        let evicted = conn.statements().insert(
            key.clone(),
            ok.id,
            ok.params,
            reply.wire.into(),
            bound,
            &keep,
        );
        conn.close_statements(&evicted).await?;
        self.ctx().metrics.statements_prepared.inc();
        self.ctx()
            .metrics
            .statements_evicted
            .inc_by(evicted.len() as u64);
        Ok(OnBackend::Prepared(ok.id))
    }
}

/// Runs internal commands that change the session state in one round trip. Any failure
/// leaves that state unknown (StateLost: the connection is closed).
async fn run_all(conn: &mut BackendConn, batch: &[Internal<'_>]) -> Result<(), BackendError> {
    if batch.is_empty() {
        return Ok(());
    }
    let failed = match conn.pipeline(batch).await {
        Ok(results) => results.into_iter().find_map(Result::err),
        Err(e) => Some(e),
    };
    match failed {
        Some(e) => Err(BackendError::StateLost(Box::new(e))),
        None => Ok(()),
    }
}
