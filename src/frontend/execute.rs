//! Running one command on the held backend: forward it, relay the response, and take in
//! what the response said (transaction status, statements, schema, variables, pins,
//! connection-scoped values) before the hold settles.

use super::relay::{relay_response, ClientSide, Outcome, RelayError};
use super::session::{Relay, Session};
use super::{Endpoint, FrontendError};
use crate::backend::ConnectionError;
use crate::multiplex::PinReason;
use crate::protocol::command::Command;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::prepared::statement_id;
use crate::protocol::response::Expect;
use crate::protocol::status;

/// 1290: "The MySQL server is running with the --read-only option so it cannot
/// execute this statement" (also --super-read-only).
const ER_OPTION_PREVENTS_STATEMENT: u16 = 1290;
/// 1836: "Running in read-only mode" (InnoDB read-only, as an Aurora reader is).
const ER_READ_ONLY_MODE: u16 = 1836;

/// The prepared statement a command is about, before its id is rewritten: execute,
/// fetch and reset act on what the statement holds on its backend.
type StatementCommand = Option<(Command, u32)>;

fn statement_command(first: &Frame) -> StatementCommand {
    let command = Command::from_byte(*first.payload().first()?);
    match command {
        Command::StmtExecute | Command::StmtFetch | Command::StmtReset => {
            Some((command, statement_id(first.payload())?))
        }
        _ => None,
    }
}

impl Session<'_> {
    /// Runs a command on a backend (the held one, else one borrowed now; pinned to it
    /// with `pin`) and relays its response.
    pub(super) async fn execute(
        &mut self,
        first: Frame,
        relay: Relay,
        pin: Option<PinReason>,
    ) -> Result<(), FrontendError> {
        if !self.hold_backend_for(&first, relay, pin).await? {
            return Ok(());
        }
        let statement = statement_command(&first);
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
        if self.ctx.config.backend.query_timeout.is_some() && !self.answer_started().await {
            return self.no_answer(current, reply_seq).await;
        }
        match self.relay_to_client(expect).await {
            Ok(outcome) => self.take_in(outcome, statement).await,
            Err(RelayError::Client(e)) => {
                // The client is gone mid-response; the backend is mid-stream: close it.
                self.lose_backend_during(current);
                Err(FrontendError::Protocol(e.into()))
            }
            Err(RelayError::Backend { sent, error }) => {
                tracing::warn!(error = %error, "backend connection lost mid-statement");
                self.ctx.pool.connector().topology().suspect();
                let lost_state = self.lose_backend_during(current);
                if !sent {
                    let lost = ErrorPacket::lost_connection().encode(reply_seq);
                    self.reply(&lost).await?;
                }
                // Half a response was relayed: the client cannot read on. Otherwise it
                // got the error, and goes on unless state died with the backend.
                if sent || lost_state {
                    return Err(ConnectionError::Protocol(error).into());
                }
                Ok(())
            }
        }
    }

    /// Waits up to `backend.query_timeout` for the first bytes of the backend's answer.
    /// Boxed: the timer is part of a session's state only where it is configured.
    fn answer_started(
        &mut self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        let limit = self.query_timeout();
        let conn = self.lease_conn();
        // A failed read is the relay's to report, as without a timeout.
        Box::pin(async move {
            crate::clock::timeout(limit, conn.answer_started())
                .await
                .is_ok()
        })
    }

    /// The backend sent nothing within `backend.query_timeout`: its connection is closed,
    /// the client gets 3024 and goes on (nothing of an answer reached it), unless state
    /// died with the connection (a transaction, a pin): then its connection ends too.
    async fn no_answer(
        &mut self,
        current: Option<u32>,
        reply_seq: u8,
    ) -> Result<(), FrontendError> {
        let secs = self.query_timeout().as_secs_f64();
        tracing::warn!(
            limit = secs,
            "no answer from the database within query_timeout; closing its connection"
        );
        let lost_state = self.lose_backend_during(current);
        self.ctx.metrics.query_errors.inc();
        self.reply(&ErrorPacket::query_timeout(secs).encode(reply_seq))
            .await?;
        Self::carry_on(lost_state)
    }

    fn query_timeout(&self) -> std::time::Duration {
        let limit = self.ctx.config.backend.query_timeout;
        limit.map_or(std::time::Duration::ZERO, |t| t.get())
    }

    async fn relay_to_client(&mut self, expect: Expect) -> Result<Outcome, RelayError> {
        let lease = self.hold.lease_mut().expect("held while executing");
        let server = &self.ctx.config.server;
        let side = ClientSide {
            io: &mut self.client.io,
            capabilities: self.client.capabilities,
            write_timeout: server.client_write_timeout.get(),
            read_timeout: server.idle_client_timeout.get(),
        };
        relay_response(side, lease.conn(), expect).await
    }

    /// What a relayed response says about the session, then the hold settles.
    async fn take_in(
        &mut self,
        mut outcome: Outcome,
        statement: StatementCommand,
    ) -> Result<(), FrontendError> {
        if let Some(code) = outcome.error {
            self.ctx.metrics.query_errors.inc();
            let read_only = matches!(code, ER_OPTION_PREVENTS_STATEMENT | ER_READ_ONLY_MODE);
            // A writer turned read-only: the topology monitor looks now rather than at
            // its next round. On a reader session it is the replica's own answer.
            if read_only && self.client.endpoint == Endpoint::Writer {
                self.ctx.pool.connector().topology().suspect();
            }
        }
        if let Some(flags) = outcome.status {
            self.hold.transaction_status(flags & status::IN_TRANS != 0);
            self.status_flags = flags;
        }
        if let Some((command, id)) = statement {
            self.statement_ran(command, id, outcome.status.unwrap_or(0));
        }
        if let Some(schema) = outcome.observation.schema.take() {
            self.state.schema = schema;
        }
        if let Some(reason) = outcome.observation.pin {
            self.pin(reason);
        }
        if !outcome.observation.variables.is_empty() {
            if let Err(e) = self.record_variables(&outcome.observation.variables).await {
                tracing::warn!(error = %e, "backend lost after a SET");
                let lost_state = self.drop_backend();
                Self::carry_on(lost_state)?;
            }
        }
        let keep = self.state.scope.ran(outcome.ran(), self.hold.is_held());
        self.settle(keep);
        Ok(())
    }

    /// What an execute, fetch or reset of statement `id` left on the backend, as the
    /// response's status flags say.
    fn statement_ran(&mut self, command: Command, id: u32, flags: u16) {
        let cursor = flags & status::CURSOR_EXISTS != 0;
        if let Some(held) = self.hold.statements_mut() {
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
        if command == Command::StmtReset {
            self.deferred.forget(id);
        }
    }
}
