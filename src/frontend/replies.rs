//! Sluice's own answers to the client: sent within the client write timeout, or, for a
//! command that has no response, kept for the statement's execute; and the client's
//! view of a backend error.

use super::session::Session;
use super::FrontendError;
use crate::backend::{BackendError, ConnectionError, PoolError};
use crate::protocol::errors::ErrorPacket;

impl Session<'_> {
    /// Sends Sluice's own answer. Bounded like relayed results: the session may hold a
    /// backend (pinned, in a transaction, affinity) while it waits for the client.
    pub(super) async fn reply(&mut self, bytes: &[u8]) -> Result<(), FrontendError> {
        let limit = self.ctx.config.server.client_write_timeout.get();
        Ok(self.client.io.send_within(bytes, limit).await?)
    }

    /// Sends an error for the command being handled, or keeps it for the statement's
    /// execute when the command has no response (COM_STMT_SEND_LONG_DATA).
    pub(super) async fn reply_error(&mut self, packet: Vec<u8>) -> Result<(), FrontendError> {
        match self.silent {
            Some(id) => {
                self.deferred.defer(id, packet);
                Ok(())
            }
            None => self.reply(&packet).await,
        }
    }

    pub(super) async fn reply_backend_error(
        &mut self,
        seq: u8,
        e: &BackendError,
    ) -> Result<(), FrontendError> {
        self.ctx.metrics.query_errors.inc();
        let error = match e {
            BackendError::Pool(PoolError::BorrowTimeout) => ErrorPacket::borrow_timeout(),
            BackendError::Pool(PoolError::NoReplica) => ErrorPacket::no_replica(),
            BackendError::Connection(e) => match e.cause() {
                ConnectionError::Server {
                    code,
                    sql_state,
                    message,
                } => ErrorPacket::from_server(*code, *sql_state, message.clone()),
                other => {
                    tracing::warn!(error = %other, "backend connection failed");
                    ErrorPacket::cannot_connect(&other.to_string())
                }
            },
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
