//! COM_QUERY: a statement in text. Its text is lexed once, for every question asked of
//! it: is it a read of a connection-scoped value Sluice can answer itself, a read of the
//! diagnostics, a KILL, and else what it does to the session (`multiplex::classify`).

use super::dispatch::{Handled, Run};
use super::session::Session;
use super::FrontendError;
use crate::multiplex::{classify, PinReason};
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::response::Expect;

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
        let sql = classify::Lexed::new(&frame.payload()[1..], self.backslash_escapes());
        let scope_read = sql.scope_read();
        if let Some((read, column)) = scope_read.as_ref() {
            if let Some(value) = self.state.scope.values.answer(*read, self.hold.is_held()) {
                self.answer_scope_read(*read, column, value).await?;
                return Ok(Handled::Answered);
            }
        }
        if let Some(read) = sql.diagnostics_read() {
            self.read_diagnostics(frame, read).await?;
            return Ok(Handled::Answered);
        }
        let mut class = sql.classify();
        if scope_read.is_some() {
            // The held backend ran the statement whose value is asked: nothing to
            // restore (a reset would clobber it).
            class.reads_diagnostics = false;
        }
        if class.kill {
            let seq = frame.seq().wrapping_add(1);
            self.reply(&ErrorPacket::kill_unsupported().encode(seq))
                .await?;
            return Ok(Handled::Answered);
        }
        Ok(Handled::Run(frame, Run::statement(class, self.flavor)))
    }
}
