//! The command loop of one authenticated client: classify each command, lease a backend
//! (or keep the pinned one), relay, then keep or release the backend.

use std::time::Instant;

use super::handshake::Client;
use super::relay::{relay_response, ClientSide, RelayError};
use super::{Context, FrontendError};
use crate::backend::{BackendError, Lease, PartitionKey};
use crate::multiplex::connection_scope::{ConnectionScope, Ran};
use crate::multiplex::hold::{Hold, Left, Taken};
use crate::multiplex::statements::ClientStatements;
use crate::multiplex::{classify, PinReason, Variables};
use crate::protocol::command::Command;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::{Frame, MAX_PAYLOAD};
use crate::protocol::prepared::statement_id;
use crate::protocol::response::{ok_packet, Expect};
use crate::protocol::{status, ProtocolError};

pub struct Session<'a> {
    pub(super) ctx: &'a Context,
    pub(super) client: Client,
    pub(super) key: PartitionKey,
    /// The backend the session holds, and why.
    pub(super) hold: Hold<Lease>,
    /// Status flags of the last OK or EOF the backend sent this session.
    pub(super) status_flags: u16,
    /// The session's prepared statements, by the ids Sluice gave it.
    pub(super) stmts: ClientStatements,
    /// Errors of COM_STMT_SEND_LONG_DATA (which has no response), by client statement
    /// id, for its execute to report.
    deferred: Vec<(u32, Vec<u8>)>,
    /// The command being handled is COM_STMT_SEND_LONG_DATA for this statement: errors
    /// are deferred, not sent.
    silent: Option<u32>,
    /// LAST_INSERT_ID(), warnings, ROW_COUNT(), FOUND_ROWS(): the session's, and whose
    /// the held backend has.
    pub(super) scope: ConnectionScope,
    /// System variables the session changed (relative to its partition's baseline),
    /// replayed on whichever backend runs its next statement.
    pub(super) vars: Variables,
    /// What the handshake chose (character set, IGNORE_SPACE, INTERACTIVE) is still to be
    /// recorded as session state (at the first borrow, when the baseline is known).
    pub(super) handshake_state_pending: bool,
    /// The server family of the backends (known from the capacity probe at start, and
    /// from each backend the session holds); it decides which statements clear the
    /// kept warnings and how Sluice's own answers look.
    pub(super) flavor: Flavor,
}

/// A command on its way to the backend: the client's frame (possibly rewritten in place,
/// with its continuation packets still to come), or a rebuilt whole payload.
pub(super) enum Outgoing {
    Frame(Frame),
    /// With the sequence id the reply must carry.
    Payload(Vec<u8>, u8),
}

/// Where the continuation packets of a command go.
pub(super) enum Rest<'b> {
    Skip,
    Relay,
    Collect(&'b mut Vec<u8>),
}

/// How a command is relayed.
#[derive(Clone, Copy)]
pub(super) enum Relay {
    Respond(Expect),
    /// A statement that reads connection-scoped values: the last insert id, and/or the
    /// previous statement's diagnostics (warnings, ROW_COUNT(), FOUND_ROWS()).
    RespondReadingScope {
        insert_id: bool,
        diagnostics: bool,
    },
    /// COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA: the server sends nothing back.
    NoResponse,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a Context, client: Client) -> Self {
        let key = client.partition_key();
        Self {
            ctx,
            client,
            key,
            hold: Hold::Free,
            vars: Variables::default(),
            stmts: ClientStatements::default(),
            deferred: Vec::new(),
            silent: None,
            scope: ConnectionScope::default(),
            status_flags: ctx
                .pool
                .connector()
                .server_status()
                .unwrap_or(status::AUTOCOMMIT),
            flavor: ctx.pool.connector().flavor(),
            handshake_state_pending: true,
        }
    }

    pub async fn run(mut self) -> Result<(), FrontendError> {
        let result = self.command_loop().await;
        self.give_back().await;
        result
    }

    async fn command_loop(&mut self) -> Result<(), FrontendError> {
        let idle = self.ctx.config.server.idle_client_timeout.get();
        let max_first = self.ctx.config.server.max_packet_size.min(MAX_PAYLOAD);
        // One timer and one shutdown future for the whole session, not one per command:
        // both register with shared runtime structures, which would cost every statement
        // a trip through a lock. The timer only moves when it fires early.
        let mut last_activity = Instant::now();
        let idle_in_transaction = self
            .ctx
            .config
            .server
            .idle_transaction_timeout
            .map(|t| t.get());
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        let mut armed_limit = idle;
        let mut shutdown = self.ctx.shutdown.clone();
        let stop = async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        };
        tokio::pin!(stop);
        let mut stopping = false;
        let affinity_timer = tokio::time::sleep(idle);
        tokio::pin!(affinity_timer);
        let mut affinity_armed: Option<Instant> = None;
        loop {
            let affinity_until = self.hold.affinity_deadline();
            if affinity_until != affinity_armed {
                if let Some(deadline) = affinity_until {
                    affinity_timer.as_mut().reset(deadline.into());
                }
                affinity_armed = affinity_until;
            }
            if stopping && !self.hold.in_transaction() {
                return Ok(());
            }
            // Inside a transaction a shorter limit may apply (a frozen Lambda must not
            // hold its backend and locks for the whole idle_client_timeout).
            let limit = match idle_in_transaction {
                Some(t) if self.hold.in_transaction() => t.min(idle),
                _ => idle,
            };
            if limit != armed_limit {
                idle_timer.as_mut().reset((last_activity + limit).into());
                armed_limit = limit;
            }
            let read = tokio::select! {
                biased;
                // Cancellation safe: PacketReader keeps partial reads.
                r = self.client.io.read(max_first) => r,
                () = &mut idle_timer => {
                    let deadline = last_activity + limit;
                    if Instant::now() >= deadline {
                        if limit < idle {
                            // MySQL 8's code for a server-side inactivity disconnect, sent
                            // unsolicited as MySQL does; the client reads it next.
                            tracing::debug!(peer = %self.client.peer, "idle in transaction; rolling back");
                            let e = ErrorPacket::idle_transaction_timeout();
                            let _ = self.reply(&e.encode(0)).await;
                        } else {
                            tracing::debug!(peer = %self.client.peer, "idle client timeout");
                        }
                        return Ok(());
                    }
                    idle_timer.as_mut().reset(deadline.into());
                    continue;
                }
                () = &mut stop, if !stopping => {
                    stopping = true;
                    continue;
                }
                () = &mut affinity_timer, if affinity_until.is_some() => {
                    self.end_affinity().await;
                    continue;
                }
            };
            last_activity = Instant::now();
            let frame = match read {
                Ok(frame) => frame,
                Err(ProtocolError::Closed) => return Ok(()),
                Err(e @ ProtocolError::TooLarge { .. }) => {
                    let _ = self.reply(&ErrorPacket::packet_too_large().encode(1)).await;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            };
            if !self.dispatch(frame).await? {
                return Ok(());
            }
        }
    }

    /// Handles one command; false when the client quit.
    async fn dispatch(&mut self, frame: Frame) -> Result<bool, FrontendError> {
        let seq = frame.seq().wrapping_add(1);
        let Some(&byte) = frame.payload().first() else {
            self.reply(&ErrorPacket::unknown_command().encode(seq))
                .await?;
            return Ok(true);
        };
        let command = Command::from_byte(byte);
        // The statement clears the previous one's diagnostics even if it leaves none.
        let mut clears_diagnostics = false;
        let flavor = self.flavor;
        let mut changes_schema = false;
        let mut pin = None;
        let relay = match command {
            Command::Quit => return Ok(false),
            Command::Ping if !self.hold.is_held() => {
                self.reply(&ok_packet(seq, self.idle_status())).await?;
                return Ok(true);
            }
            Command::ResetConnection => {
                self.give_back().await;
                self.reply(&ok_packet(seq, self.idle_status())).await?;
                return Ok(true);
            }
            Command::ChangeUser => {
                self.give_back().await;
                // Re-authentication reads from the client: bounded like a handshake.
                let limit = self.ctx.config.server.handshake_timeout.get();
                let change = super::change_user::change_user(self.ctx, &mut self.client, frame);
                return match tokio::time::timeout(limit, change).await {
                    Ok(result) => {
                        result?;
                        self.key = self.client.partition_key();
                        Ok(true)
                    }
                    Err(_) => Ok(false),
                };
            }
            Command::StmtPrepare => {
                self.ctx.metrics.queries.inc();
                return self.stmt_prepare(frame).await.map(|()| true);
            }
            Command::StmtClose => return self.stmt_close(frame).await.map(|()| true),
            Command::Unsupported(_) | Command::ProcessKill => {
                self.reply(&ErrorPacket::unknown_command().encode(seq))
                    .await?;
                return Ok(true);
            }
            Command::Query if frame.is_continued() => {
                pin = Some(PinReason::LargeStatement);
                Relay::Respond(Expect::Results)
            }
            Command::Query => {
                // Lexed once for every question below.
                let sql = classify::Lexed::new(&frame.payload()[1..], self.backslash_escapes());
                let scope_read = sql.scope_read();
                if let Some((read, column)) = scope_read.as_ref() {
                    if let Some(value) = self.scope.values.answer(*read, self.hold.is_held()) {
                        return self
                            .answer_scope_read(*read, column, value)
                            .await
                            .map(|()| true);
                    }
                }
                if let Some(read) = sql.diagnostics_read() {
                    return self.read_diagnostics(frame, read).await.map(|()| true);
                }
                let mut class = sql.classify();
                if scope_read.is_some() {
                    // The held backend ran the statement whose value is asked: nothing
                    // to restore (a reset would clobber it).
                    class.reads_diagnostics = false;
                }
                if class.kill {
                    self.reply(&ErrorPacket::kill_unsupported().encode(seq))
                        .await?;
                    return Ok(true);
                }
                clears_diagnostics = class.clears_diagnostics(flavor);
                self.scope.running(class.sets_insert_id);
                changes_schema = class.changes_schema;
                pin = class.pin;
                Self::relay_for(class)
            }
            Command::SetOption => return self.set_option(frame).await.map(|()| true),
            Command::FieldList => Relay::Respond(Expect::FieldList),
            Command::Statistics => Relay::Respond(Expect::Single),
            Command::StmtFetch => Relay::Respond(Expect::Fetch),
            Command::StmtSendLongData => Relay::NoResponse,
            Command::StmtExecute => {
                // What the statement's text said at prepare time applies to each run.
                let class = statement_id(frame.payload())
                    .and_then(|id| self.stmts.get(id))
                    .map(|s| s.class)
                    .unwrap_or_default();
                clears_diagnostics = class.clears_diagnostics(flavor);
                self.scope.running(class.sets_insert_id);
                changes_schema = class.changes_schema;
                // Its pin applies once the execute runs on a backend (after the checks).
                pin = class.pin;
                Self::relay_for(class)
            }
            Command::InitDb | Command::Ping | Command::StmtReset => Relay::Respond(Expect::Results),
        };
        let frame = match command {
            Command::StmtExecute
            | Command::StmtSendLongData
            | Command::StmtReset
            | Command::StmtFetch => match self.stmt_precheck(command, frame).await? {
                Some(frame) => frame,
                None => return Ok(true),
            },
            _ => frame,
        };
        self.ctx.metrics.queries.inc();
        self.silent = match command {
            Command::StmtSendLongData => statement_id(frame.payload()),
            _ => None,
        };
        let result = self.execute(frame, relay, pin).await;
        self.silent = None;
        self.scope.finished();
        if changes_schema {
            // Whether or not it succeeded: a new generation only costs fresh prepares.
            self.ctx.pool.connector().schema_changed();
        }
        if clears_diagnostics || self.scope.diagnostics_pending() {
            // What Sluice kept is no longer the session's list: the backend that ran this
            // statement holds the right one (and is read before it goes back).
            self.scope.kept = None;
        }
        result.map(|()| true)
    }

    /// How to relay a statement: restoring the connection-scoped values it reads.
    fn relay_for(class: classify::Classification) -> Relay {
        if class.reads_insert_id || class.reads_diagnostics {
            Relay::RespondReadingScope {
                insert_id: class.reads_insert_id,
                diagnostics: class.reads_diagnostics,
            }
        } else {
            Relay::Respond(Expect::Results)
        }
    }

    /// Leases a backend if the session holds none and brings it to the session's state.
    /// False when that failed and the client got the error (the command is consumed).
    pub(super) async fn hold_backend(
        &mut self,
        first: &Frame,
        expect: Expect,
    ) -> Result<bool, FrontendError> {
        self.hold_backend_for(first, Relay::Respond(expect), None)
            .await
    }

    /// As `hold_backend`, pinning the session to the backend (with `pin`) before it is
    /// brought to the session's state.
    async fn hold_backend_for(
        &mut self,
        first: &Frame,
        relay: Relay,
        pin: Option<PinReason>,
    ) -> Result<bool, FrontendError> {
        if !self.hold.begin() {
            match self.borrow().await {
                Ok(mut lease) => {
                    self.flavor = lease.conn().flavor();
                    if self.handshake_state_pending {
                        self.apply_handshake_state(lease.conn());
                    }
                    self.hold.obtained(lease);
                    self.scope.borrowed();
                }
                Err(e) => {
                    let seq = self.skip_rest(first).await?;
                    self.reply_backend_error(seq, &e).await?;
                    return Ok(false);
                }
            }
        }
        if let Some(reason) = pin {
            self.pin(reason);
        }
        if let Err(e) = self.prepare_backend(relay).await {
            let seq = self.skip_rest(first).await?;
            self.backend_failed(seq, &e).await?;
            self.settle(false);
            return Ok(false);
        }
        Ok(true)
    }

    /// Reports a backend failure to the client; a connection that failed other than by
    /// an ERR packet is in an unknown state and is dropped.
    pub(super) async fn backend_failed(
        &mut self,
        seq: u8,
        e: &BackendError,
    ) -> Result<(), FrontendError> {
        if e.server_code().is_some() {
            return self.reply_backend_error(seq, e).await;
        }
        let lost_state = self.drop_backend();
        self.reply_backend_error(seq, e).await?;
        Self::carry_on(lost_state)
    }

    /// After the backend failed: an open transaction or pinned state died with it.
    /// Carrying on would let the client's next statements autocommit elsewhere, so the
    /// client loses its connection too (after any error), as with a direct one.
    pub(super) fn carry_on(lost_state: bool) -> Result<(), FrontendError> {
        if lost_state {
            return Err(FrontendError::SessionStateLost);
        }
        Ok(())
    }

    /// The backend failed while running the command of statement `current` (execute,
    /// fetch or reset): that statement's long data was being consumed, so only the
    /// session's other statements get a deferred error.
    fn lose_backend_during(&mut self, current: Option<u32>) -> bool {
        if let (Some(id), Some(statements)) = (current, self.hold.statements_mut()) {
            statements.forget(id);
        }
        self.drop_backend()
    }

    /// Closes the held backend after a failure; true when state that existed only there
    /// (a transaction, a pin) died with it. Long data the session had sent there is
    /// lost: the statements' executes report it instead of running without it.
    pub(super) fn drop_backend(&mut self) -> bool {
        let taken = self.let_go();
        if taken.lease.is_none() {
            return false;
        }
        self.scope.backend_lost();
        for id in taken.statements.ids() {
            if !taken.statements.has_cursor(id) {
                self.defer(id, ErrorPacket::lost_connection().encode(1));
            }
        }
        taken.state_lost()
    }

    /// Lets go of the backend, whatever held it, for the caller to release, reset or
    /// close (by dropping it).
    fn let_go(&mut self) -> Taken<Lease> {
        let taken = self.hold.take();
        if taken.pin.is_some() {
            self.ctx.metrics.database_connections_pinned.dec();
        }
        taken
    }

    /// Sends an error for the command being handled, or keeps it for the statement's
    /// execute when the command has no response (COM_STMT_SEND_LONG_DATA).
    pub(super) async fn reply_error(&mut self, packet: Vec<u8>) -> Result<(), FrontendError> {
        match self.silent {
            Some(id) => {
                self.defer(id, packet);
                Ok(())
            }
            None => self.reply(&packet).await,
        }
    }

    fn defer(&mut self, id: u32, packet: Vec<u8>) {
        self.forget_deferred(id);
        self.deferred.push((id, packet));
    }

    pub(super) fn deferred_for(&self, id: u32) -> bool {
        self.deferred.iter().any(|(i, _)| *i == id)
    }

    /// The deferred error of statement `id`, if any, to send now.
    pub(super) fn take_deferred(&mut self, id: u32) -> Option<Vec<u8>> {
        let at = self.deferred.iter().position(|(i, _)| *i == id)?;
        Some(self.deferred.swap_remove(at).1)
    }

    pub(super) fn forget_deferred(&mut self, id: u32) {
        self.deferred.retain(|(i, _)| *i != id);
    }

    /// The held backend connection.
    pub(super) fn lease_conn(&mut self) -> &mut crate::backend::conn::BackendConn {
        self.hold.lease_mut().expect("a backend is held").conn()
    }

    /// Runs a command on a backend and relays its response.
    pub(super) async fn execute(
        &mut self,
        first: Frame,
        relay: Relay,
        pin: Option<PinReason>,
    ) -> Result<(), FrontendError> {
        if !self.hold_backend_for(&first, relay, pin).await? {
            return Ok(());
        }
        // Which client statement this is about, before its id is rewritten.
        let statement = first
            .payload()
            .first()
            .map(|&b| Command::from_byte(b))
            .filter(|c| {
                matches!(
                    c,
                    Command::StmtExecute | Command::StmtFetch | Command::StmtReset
                )
            })
            .zip(statement_id(first.payload()));
        let Some(first) = self.bind_statement(first).await? else {
            self.settle(false);
            return Ok(());
        };
        // Should the backend fail now, this statement's own long data and cursor are gone
        // with the command that used them: nothing to report at a later execute.
        let current = statement.map(|(_, id)| id);
        let reply_seq = match self.forward(first).await {
            Ok(seq) => seq,
            Err(e) => {
                self.lose_backend_during(current);
                return Err(e);
            }
        };
        let expect = match relay {
            Relay::Respond(expect) => expect,
            Relay::RespondReadingScope { .. } => Expect::Results,
            Relay::NoResponse => {
                self.settle(false);
                return Ok(());
            }
        };
        let lease = self.hold.lease_mut().expect("held above");
        let server = &self.ctx.config.server;
        let side = ClientSide {
            io: &mut self.client.io,
            capabilities: self.client.capabilities,
            write_timeout: server.client_write_timeout.get(),
            read_timeout: server.idle_client_timeout.get(),
        };
        match relay_response(side, lease.conn(), expect).await {
            Ok(outcome) => {
                if outcome.error {
                    self.ctx.metrics.query_errors.inc();
                }
                if let Some(flags) = outcome.status {
                    self.hold.transaction_status(flags & status::IN_TRANS != 0);
                    self.status_flags = flags;
                }
                let flags = outcome.status.unwrap_or(0);
                let cursor = flags & status::CURSOR_EXISTS != 0;
                if let (Some((command, id)), Some(held)) = (statement, self.hold.statements_mut()) {
                    match command {
                        Command::StmtExecute => held.executed(id, cursor),
                        Command::StmtFetch => {
                            held.fetched(id, cursor && flags & status::LAST_ROW_SENT == 0);
                        }
                        _ => {
                            held.forget(id);
                        }
                    }
                }
                if let Some((Command::StmtReset, id)) = statement {
                    self.forget_deferred(id);
                }
                if let Some(schema) = outcome.observation.schema {
                    self.client.schema = schema;
                }
                if let Some(reason) = outcome.observation.pin {
                    self.pin(reason);
                }
                if !outcome.observation.variables.is_empty() {
                    if let Err(e) = self.record_variables(&outcome.observation.variables).await {
                        // The backend failed between statements: nothing is lost but it.
                        tracing::warn!(error = %e, "backend lost after a SET");
                        let lost_state = self.drop_backend();
                        Self::carry_on(lost_state)?;
                    }
                }
                let ran = Ran {
                    last_insert_id: outcome.last_insert_id,
                    leaves_connection_scope: outcome.leaves_connection_scope,
                    diagnostics: outcome.diagnostics,
                    result_rows: outcome.result_rows,
                    row_count: outcome.row_count,
                };
                let keep = self.scope.ran(ran, self.hold.is_held());
                self.settle(keep);
                Ok(())
            }
            Err(RelayError::Client(e)) => {
                // The client is gone mid-response; the backend is mid-stream: close it.
                self.lose_backend_during(current);
                Err(FrontendError::Protocol(e.into()))
            }
            Err(RelayError::Backend { sent, error }) => {
                tracing::warn!(error = %error, "backend connection lost mid-statement");
                let lost_state = self.lose_backend_during(current);
                if !sent {
                    let lost = ErrorPacket::lost_connection().encode(reply_seq);
                    self.reply(&lost).await?;
                }
                // Half a response was relayed: the client cannot read on. Otherwise it
                // got the error, and goes on unless state died with the backend.
                if sent || lost_state {
                    return Err(BackendError::Protocol(error).into());
                }
                Ok(())
            }
        }
    }

    async fn borrow(&mut self) -> Result<Lease, BackendError> {
        let schema = self.client.schema.as_deref();
        self.ctx.pool.borrow(&self.key, schema, &self.vars).await
    }

    /// Status flags for an OK Sluice answers itself: the session's autocommit and
    /// NO_BACKSLASH_ESCAPES as of its last statement.
    pub(super) fn idle_status(&self) -> u16 {
        self.status_flags & (status::AUTOCOMMIT | status::NO_BACKSLASH_ESCAPES)
    }

    pub(super) fn backslash_escapes(&self) -> bool {
        self.status_flags & status::NO_BACKSLASH_ESCAPES == 0
    }

    /// Releases the backend when nothing ties the session to it. With `affinity`, the
    /// statement left connection-scoped values (warnings, affected rows, an insert id),
    /// so the backend is kept for a short window in case the next statement asks.
    pub(super) fn settle(&mut self, affinity: bool) {
        let left = match affinity {
            false => Left::Nothing,
            // Values Sluice reads itself before the backend goes back (the warnings).
            true if self.scope.pending() => Left::ValuesToRead,
            true => Left::Values,
        };
        let window = self.ctx.config.backend.affinity_window.get();
        if let Some(lease) = self.hold.finish(left, window, Instant::now) {
            lease.release();
        }
    }

    fn pin(&mut self, reason: PinReason) {
        if self.hold.pin_with(reason) {
            self.ctx
                .metrics
                .pins
                .with_label_values(&[reason.as_str()])
                .inc();
            self.ctx.metrics.database_connections_pinned.inc();
            tracing::debug!(peer = %self.client.peer, reason = reason.as_str(), "session pinned");
        }
    }

    /// Returns the backend at the end of a session, COM_RESET_CONNECTION or
    /// COM_CHANGE_USER: reset first if the session left state or a transaction on it.
    pub(super) async fn give_back(&mut self) {
        self.scope.reset();
        self.vars.clear();
        self.handshake_state_pending = true;
        self.stmts.clear();
        self.status_flags = self
            .ctx
            .pool
            .connector()
            .server_status()
            .unwrap_or(status::AUTOCOMMIT);
        self.deferred.clear();
        let taken = self.let_go();
        // A transaction, pinned state, or long data or a cursor on a statement.
        let dirty = taken.dirty();
        if let Some(lease) = taken.lease {
            if dirty {
                lease.reset_and_release().await;
            } else {
                lease.release();
            }
        }
    }

    pub(super) fn ctx(&self) -> &'a Context {
        self.ctx
    }

    /// Sends Sluice's own answer. Bounded like relayed results: the session may hold a
    /// backend (pinned, in a transaction, affinity) while it waits for the client.
    pub(super) async fn reply(&mut self, bytes: &[u8]) -> Result<(), FrontendError> {
        let limit = self.ctx.config.server.client_write_timeout.get();
        Ok(self.client.io.send_within(bytes, limit).await?)
    }

    async fn reply_backend_error(
        &mut self,
        seq: u8,
        e: &BackendError,
    ) -> Result<(), FrontendError> {
        self.ctx.metrics.query_errors.inc();
        let mut e = e;
        while let BackendError::StateLost(inner) = e {
            e = inner;
        }
        let error = match e {
            BackendError::BorrowTimeout => ErrorPacket::borrow_timeout(),
            BackendError::Server {
                code,
                sql_state,
                message,
            } => ErrorPacket::from_server(*code, *sql_state, message.clone()),
            BackendError::Credentials(e) => {
                // The details (secret names, Sluice's role) stay in the log.
                tracing::warn!(error = %e, "no backend login");
                ErrorPacket::cannot_connect("backend credentials unavailable; try again")
            }
            other => {
                tracing::warn!(error = %other, "cannot get a backend connection");
                ErrorPacket::cannot_connect(&other.to_string())
            }
        };
        self.reply_error(error.encode(seq)).await
    }
}
