//! The commands on a prepared statement that run on a backend: COM_STMT_EXECUTE,
//! COM_STMT_SEND_LONG_DATA, COM_STMT_RESET and COM_STMT_FETCH. Each is checked first:
//! what needs no backend (an unknown id, a reset or fetch of a statement with nothing
//! open, an execute whose long data failed) is answered here, as a server would.

use super::dispatch::{Handled, Run};
use super::session::{Relay, Session};
use super::FrontendError;
use crate::protocol::command::Command;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::prepared::statement_id;
use crate::protocol::response::{ok_packet, Expect};

impl Session<'_> {
    /// Runs with what the statement's text said at prepare time.
    pub(super) async fn stmt_execute(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        let class = statement_id(frame.payload())
            .and_then(|id| self.stmts.get(id))
            .map(|s| s.class)
            .unwrap_or_default();
        Ok(
            match self.stmt_precheck(Command::StmtExecute, frame).await? {
                Some(frame) => Handled::Run(frame, Run::statement(class, self.flavor)),
                None => Handled::Answered,
            },
        )
    }

    /// COM_STMT_SEND_LONG_DATA (no response: its errors wait for the execute),
    /// COM_STMT_RESET and COM_STMT_FETCH.
    pub(super) async fn stmt_command(
        &mut self,
        command: Command,
        frame: Frame,
    ) -> Result<Handled, FrontendError> {
        let run = match command {
            Command::StmtSendLongData => Run {
                silent: statement_id(frame.payload()),
                ..Run::relay(Relay::NoResponse)
            },
            Command::StmtFetch => Run::respond(Expect::Fetch),
            _ => Run::respond(Expect::Results),
        };
        Ok(match self.stmt_precheck(command, frame).await? {
            Some(frame) => Handled::Run(frame, run),
            None => Handled::Answered,
        })
    }

    /// Drops what statement `id` holds on the held backend (long data, a cursor) by
    /// closing its server statement there; it is prepared again when next used.
    pub(super) async fn discard_held(&mut self, id: u32) -> Result<(), FrontendError> {
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
    async fn stmt_precheck(
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
            _ if !known || self.deferred.has(id) => {
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
            if let Some(mut err) = self.deferred.take(id) {
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
                self.deferred.forget(id);
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
}
