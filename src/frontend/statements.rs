//! Binary-protocol prepared statements for one client session, without pinning: the
//! client sees Sluice's statement ids (`multiplex::statements`); each command is bound
//! to whichever backend serves it (`stmt_bind`). This file is their lifetime: prepare
//! and close.

use std::sync::Arc;

use super::dispatch::Handled;
use super::relay::kept_for_client;
use super::session::Session;
use super::stmt_bind::OnBackend;
use super::FrontendError;
use crate::backend::ConnectionError;
use crate::multiplex::classify;
use crate::multiplex::statements::{ClientStmt, StmtKey, PARSE_VARIABLES};
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::prepared::{set_statement_id, statement_id};
use crate::protocol::response::Expect;

impl Session<'_> {
    pub(super) async fn stmt_prepare(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        self.ctx().metrics.queries.inc();
        self.prepare(frame).await?;
        Ok(Handled::Answered)
    }

    pub(super) async fn stmt_close(&mut self, frame: Frame) -> Result<Handled, FrontendError> {
        self.close(frame).await?;
        Ok(Handled::Answered)
    }

    /// COM_STMT_PREPARE: answered from the held backend's statement if it already has the
    /// same one (no round trip), else prepared there; the client gets its own id.
    async fn prepare(&mut self, frame: Frame) -> Result<(), FrontendError> {
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
            self.state.schema.clone(),
            self.state.vars.only(PARSE_VARIABLES),
            sql.to_vec(),
        )
        .at_generation(self.ctx().pool.connector().schema_generation());
        let key = Arc::new(self.stmts.distinct(key));
        if !self.hold_backend(&frame, Expect::Prepare).await? {
            return Ok(());
        }
        let client_caps = self.client.capabilities;
        let status = self.residual_status();
        let (response, params) = match self.on_backend(&key).await {
            Ok(OnBackend::Prepared(_)) => {
                let conn = self.lease_conn();
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
            Err(e) => {
                return self
                    .backend_failed(1, &ConnectionError::Protocol(e).into())
                    .await
            }
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
        self.settle(self.state.scope.diagnostics_pending());
        self.reply(&answer).await
    }

    /// COM_STMT_CLOSE: forgets the client's id. The server statement stays for others
    /// (the backend's bound closes it eventually), unless this session holds the backend
    /// for it (long data, an open cursor): then it is closed there at once.
    async fn close(&mut self, frame: Frame) -> Result<(), FrontendError> {
        let Some(id) = statement_id(frame.payload()) else {
            return Ok(());
        };
        if self.stmts.get(id).is_none() {
            return Ok(());
        }
        self.deferred.forget(id);
        self.discard_held(id).await?;
        self.stmts.remove(id);
        // Its statement may have been the last thing holding the backend. (A window kept
        // open for the previous statement's warnings stays open: closing runs nothing.)
        self.settle(false);
        Ok(())
    }
}
