//! COM_SET_OPTION: the client switches multi-statements on or off for its connection.
//!
//! A server records the switch in the connection's capabilities (COM_RESET_CONNECTION
//! keeps it) and answers with an EOF. Sluice does the same to the session's
//! capabilities, without a backend: before each command it relays, the backend is
//! switched to what the session has (`Internal::MultiStatements`), so a client that
//! switched still shares the pool with every other.

use super::dispatch::Handled;
use super::session::Session;
use super::FrontendError;
use crate::backend::conn::{MULTI_STATEMENTS_OFF, MULTI_STATEMENTS_ON};
use crate::protocol::caps;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::result_set;

impl Session<'_> {
    pub(super) async fn set_option(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        let seq = frame.seq().wrapping_add(1);
        let option = frame
            .payload()
            .get(1..3)
            .map(|o| u16::from_le_bytes([o[0], o[1]]));
        match option {
            Some(MULTI_STATEMENTS_ON) => self.client.capabilities |= caps::MULTI_STATEMENTS,
            Some(MULTI_STATEMENTS_OFF) => self.client.capabilities &= !caps::MULTI_STATEMENTS,
            // What both servers answer for an option they do not know.
            _ => {
                self.reply(&ErrorPacket::unknown_command().encode(seq))
                    .await?;
                return Ok(Handled::Answered);
            }
        }
        // The server's EOF counts the previous statement's warnings: Sluice knows the
        // count of those it kept, and says 0 while a backend still holds them.
        let mut answer = Vec::with_capacity(11);
        result_set::push_end(&mut answer, seq, self.answer_ending(self.kept_warnings()));
        self.reply(&answer).await?;
        Ok(Handled::Answered)
    }
}
