//! Binding a prepared-statement command to the held backend: the statement is prepared
//! there first if it is not yet (as it was prepared: in its schema, with its parse-time
//! variables), the server's id replaces the client's, and parameter types the server
//! has not seen from this client are sent again.

use std::sync::Arc;

use super::session::{Outgoing, Session};
use super::FrontendError;
use crate::backend::conn::{BackendConn, Internal, Schema};
use crate::backend::{BackendError, ConnectionError};
use crate::multiplex::statements::{StmtKey, PARSE_VARIABLES};
use crate::multiplex::Variables;
use crate::protocol::command::Command;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::prepared::{opens_cursor, set_statement_id, statement_id, ExecuteLayout};

/// Where a statement is on the held backend.
pub(super) enum OnBackend {
    Prepared(u32),
    /// The server refused to prepare it here; its ERR packet (sequence id 1).
    Refused(Vec<u8>),
}

impl Session<'_> {
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
        let cursor = command == Some(Command::StmtExecute) && opens_cursor(first.payload());
        let bound = match self.retire_spent(command, id, &key).await {
            Ok(()) => self.on_backend(&key).await,
            Err(e) => Err(e.into()),
        };
        let server_id = match bound {
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
        if cursor {
            if let Some(server) = self.lease_conn().statements().get_mut(&key) {
                server.cursor_opened = true;
            }
        }
        set_statement_id(first.payload_mut(), server_id);
        if command != Some(Command::StmtExecute) {
            return Ok(Some(Outgoing::Frame(first)));
        }
        self.bind_types(first, id, &key).await
    }

    /// Before an execute on MySQL: closes the server statement if a cursor was ever
    /// opened on it (`ServerStmt::cursor_opened`), so that it is prepared again. Kept
    /// when the session sent it long data, which lives in that statement (the execute
    /// then gets what the server gives).
    async fn retire_spent(
        &mut self,
        command: Option<Command>,
        id: u32,
        key: &StmtKey,
    ) -> Result<(), ConnectionError> {
        let long_data = self.hold.statements().is_some_and(|s| s.has_long_data(id));
        let conn = self.lease_conn();
        if command != Some(Command::StmtExecute) || long_data || conn.flavor() != Flavor::MySql {
            return Ok(());
        }
        if !conn
            .statements()
            .get_mut(key)
            .is_some_and(|s| s.cursor_opened)
        {
            return Ok(());
        }
        match conn.statements().remove(key) {
            Some(server_id) => conn.close_statements(&[server_id]).await,
            None => Ok(()),
        }
    }

    /// COM_STMT_EXECUTE's parameter types: remembered when the client sends them, and
    /// sent again when the server has not seen this client's (another backend, or
    /// another client's types last). Drivers send them once, then never again.
    async fn bind_types(
        &mut self,
        first: Frame,
        id: u32,
        key: &Arc<StmtKey>,
    ) -> Result<Option<Outgoing>, FrontendError> {
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
            .get_mut(key)
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
                    .get_mut(key)
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
    pub(super) async fn on_backend(
        &mut self,
        key: &Arc<StmtKey>,
    ) -> Result<OnBackend, BackendError> {
        // The bound of the pool the backend came from (a replica's is its own).
        let bound = match self.hold.lease_mut() {
            Some(lease) => lease.statement_bound(),
            None => self.ctx().pool.statement_bound(),
        };
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
async fn run_all(conn: &mut BackendConn, batch: &[Internal<'_>]) -> Result<(), ConnectionError> {
    if batch.is_empty() {
        return Ok(());
    }
    let failed = match conn.pipeline(batch).await {
        Ok(results) => results.into_iter().find_map(Result::err),
        Err(e) => Some(e),
    };
    match failed {
        Some(e) => Err(ConnectionError::StateLost(Box::new(e))),
        None => Ok(()),
    }
}
