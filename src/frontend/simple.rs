//! The small commands: COM_PING, COM_RESET_CONNECTION, COM_CHANGE_USER, and the ones
//! Sluice refuses. (COM_INIT_DB, COM_FIELD_LIST and COM_STATISTICS run on a backend as
//! they are: `dispatch` says how.)

use super::dispatch::{Handled, Run};
use super::session::Session;
use super::FrontendError;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::response::{ok_packet, Expect};

impl Session<'_> {
    /// Answered here unless the session holds a backend, which is then the one asked
    /// (a pinned client pinging checks its own connection).
    pub(super) async fn ping(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        if self.hold.is_held() {
            return Ok(Handled::Run(frame, Run::respond(Expect::Results)));
        }
        let seq = frame.seq().wrapping_add(1);
        self.reply(&ok_packet(seq, self.idle_status())).await?;
        Ok(Handled::Answered)
    }

    /// A fresh session on the same login, as a server does it; the backend (reset if
    /// the session left anything on it) goes back to the pool.
    pub(super) async fn reset_connection(
        &mut self,
        frame: &Frame,
    ) -> Result<Handled, FrontendError> {
        self.give_back().await;
        let seq = frame.seq().wrapping_add(1);
        self.reply(&ok_packet(seq, self.idle_status())).await?;
        Ok(Handled::Answered)
    }

    /// Re-authentication as another (or the same) user, then a fresh session. It reads
    /// from the client, so it is bounded like a handshake.
    pub(super) async fn change_user(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        self.give_back().await;
        let limit = self.ctx.config.server.handshake_timeout.get();
        // Boxed: the re-authentication's future would otherwise be part of every
        // session's state machine, in memory for each client connection.
        let change = Box::pin(super::change_user::change_user(
            self.ctx,
            &mut self.client,
            frame,
        ));
        match crate::clock::timeout(limit, change).await {
            Ok(result) => {
                result?;
                self.key = self.client.partition_key();
                self.state.schema = self.client.schema.take();
                Ok(Handled::Answered)
            }
            Err(_) => Ok(Handled::Ended),
        }
    }

    /// Commands Sluice does not relay (COM_PROCESS_KILL, replication, debugging), and an
    /// empty packet: what a server answers for a command it does not know.
    pub(super) async fn unknown_command(
        &mut self,
        frame: &Frame,
    ) -> Result<Handled, FrontendError> {
        let seq = frame.seq().wrapping_add(1);
        self.reply(&ErrorPacket::unknown_command().encode(seq))
            .await?;
        Ok(Handled::Answered)
    }
}
