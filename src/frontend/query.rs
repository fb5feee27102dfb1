//! COM_QUERY: a statement in text. Its text is lexed once, for every question asked of
//! it: is it a read of a connection-scoped value Sluice can answer itself, a read of the
//! diagnostics, a KILL, and else what it does to the session (`multiplex::classify`).

use super::dispatch::{Handled, Run};
use super::session::Session;
use super::FrontendError;
use crate::multiplex::classify::{self, Classification};
use crate::multiplex::scope::{DiagnosticsRead, ScopeRead};
use crate::multiplex::PinReason;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::response::Expect;

/// What a statement's text says Sluice does with it.
enum Plan {
    /// `SELECT FOUND_ROWS()` / `ROW_COUNT()` answered with the session's value (the
    /// column name as the client wrote it).
    AnswerScopeRead(ScopeRead, Vec<u8>, i64),
    /// `SHOW WARNINGS` and the like.
    ReadDiagnostics(DiagnosticsRead),
    Kill,
    Run(Classification),
}

impl Session<'_> {
    pub(super) async fn query(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        if frame.is_continued() {
            // 16 MiB or more: relayed unread, so whatever it does stays on its backend.
            let run = Run {
                pin: Some(PinReason::LargeStatement),
                ..Run::respond(Expect::Results)
            };
            return Ok(Handled::Run(frame, run));
        }
        match self.plan(&frame.payload()[1..]) {
            Plan::AnswerScopeRead(read, column, value) => {
                self.answer_scope_read(read, &column, value).await?;
                Ok(Handled::Answered)
            }
            Plan::ReadDiagnostics(read) => {
                self.read_diagnostics(frame, read).await?;
                Ok(Handled::Answered)
            }
            Plan::Kill => {
                let seq = frame.seq().wrapping_add(1);
                self.reply(&ErrorPacket::kill_unsupported().encode(seq))
                    .await?;
                Ok(Handled::Answered)
            }
            Plan::Run(class) => Ok(Handled::Run(frame, Run::statement(class, self.flavor))),
        }
    }

    /// Reads the statement's tokens once; they are gone before anything waits, so they
    /// never take room in the session's state between commands.
    fn plan(&mut self, sql: &[u8]) -> Plan {
        let sql = classify::Lexed::new(sql, self.backslash_escapes());
        let reads_scope = match sql.scope_read() {
            Some((read, column)) => {
                if let Some(value) = self.state.scope.values.answer(read, self.hold.is_held()) {
                    return Plan::AnswerScopeRead(read, column, value);
                }
                true
            }
            None => false,
        };
        if let Some(read) = sql.diagnostics_read() {
            return Plan::ReadDiagnostics(read);
        }
        let mut class = sql.classify();
        if reads_scope {
            // The held backend ran the statement whose value is asked: nothing to
            // restore (a reset would clobber it).
            class.reads_diagnostics = false;
        }
        if class.kill {
            return Plan::Kill;
        }
        Plan::Run(class)
    }
}
