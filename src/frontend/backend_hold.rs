//! The session's side of its hold on a backend (`multiplex::Hold`): borrowing one for a
//! command, pinning, settling after the command, losing a failed backend, and giving it
//! back at the end of the session. The rules of when the backend is kept live in `Hold`;
//! this adds the pool, the metrics and the client's errors.

use std::time::Instant;

use super::session::{Relay, Session};
use super::{Endpoint, FrontendError};
use crate::backend::{BackendError, Lease};
use crate::multiplex::hold::{Left, Taken};
use crate::multiplex::PinReason;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::response::Expect;
use crate::protocol::status;

/// Borrowed connections replaced, at most, when they fail before a command reached them.
const MAX_REPLACED: u32 = 3;

impl Session<'_> {
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
    pub(super) async fn hold_backend_for(
        &mut self,
        first: &Frame,
        relay: Relay,
        pin: Option<PinReason>,
    ) -> Result<bool, FrontendError> {
        if let Some(lease) = self.hold.lease_mut() {
            let stale = !lease.is_current();
            if stale || lease.conn().server_gone() {
                self.held_backend_gone(first, stale).await?;
            }
        }
        // A connection borrowed for this command that fails while being brought to the
        // session's state (its server died while it sat idle: a failover) is replaced:
        // the command has reached no server yet, so it waits for a working one instead.
        let mut replaced = 0;
        loop {
            let borrowed = !self.hold.begin();
            if borrowed && !self.obtain(first).await? {
                return Ok(false);
            }
            if let Some(reason) = pin {
                self.pin(reason);
            }
            let Err(e) = self.prepare_backend(relay).await else {
                return Ok(true);
            };
            let broken = matches!(e, BackendError::Connection(_)) && e.server_code().is_none();
            if borrowed && broken && replaced < MAX_REPLACED {
                tracing::debug!(error = %e, "a borrowed backend failed before the command; replacing it");
                replaced += 1;
                // Nothing of the session lived on it yet (a pin made just now included).
                self.drop_backend();
                self.ctx.pool.connector().topology().suspect();
                continue;
            }
            let seq = self.skip_rest(first).await?;
            self.backend_failed(seq, &e).await?;
            self.settle(false);
            return Ok(false);
        }
    }

    /// Borrows a backend for the session; false when that failed and the client got
    /// the error (the command is consumed).
    async fn obtain(&mut self, first: &Frame) -> Result<bool, FrontendError> {
        match self.borrow().await {
            Ok(mut lease) => {
                self.flavor = lease.conn().flavor();
                if self.state.handshake_pending {
                    self.apply_handshake_state(lease.conn());
                }
                self.hold.obtained(lease);
                self.state.scope.borrowed();
                Ok(true)
            }
            Err(e) => {
                let seq = self.skip_rest(first).await?;
                self.reply_backend_error(seq, &e).await?;
                Ok(false)
            }
        }
    }

    /// The held backend is of a writer that is no longer the writer (`stale`), or its
    /// server closed it, before the command was sent: a backend kept only for the
    /// affinity window goes quietly (the command runs on a new one, as it never reached
    /// the old); one holding a transaction or pinned state ends the session with 2013,
    /// since going on elsewhere would run its next statements outside what it began.
    async fn held_backend_gone(&mut self, first: &Frame, stale: bool) -> Result<(), FrontendError> {
        if !self.drop_backend() {
            return Ok(());
        }
        tracing::info!(peer = %self.client.peer, stale, "the backend of an open transaction or pinned session is gone; closing it");
        let seq = self.skip_rest(first).await?;
        let error = match (stale, self.client.endpoint) {
            (true, Endpoint::Writer) => ErrorPacket::writer_changed(),
            (true, Endpoint::Reader) => ErrorPacket::replica_gone(),
            (false, _) => ErrorPacket::lost_connection(),
        };
        self.reply_error(error.encode(seq)).await?;
        Err(FrontendError::SessionStateLost)
    }

    /// Reports a backend failure to the client, which ends the command. A connection
    /// that refused with an ERR packet is fine and the hold settles; one that failed
    /// otherwise is in an unknown state and is dropped.
    pub(super) async fn backend_failed(
        &mut self,
        seq: u8,
        e: &BackendError,
    ) -> Result<(), FrontendError> {
        if e.server_code().is_some() {
            self.settle(false);
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
    pub(super) fn lose_backend_during(&mut self, current: Option<u32>) -> bool {
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
        self.state.scope.backend_lost();
        for id in taken.statements.ids() {
            if !taken.statements.has_cursor(id) {
                self.deferred
                    .defer(id, ErrorPacket::lost_connection().encode(1));
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

    async fn borrow(&mut self) -> Result<Lease, BackendError> {
        let schema = self.state.schema.as_deref();
        let endpoint = self.client.endpoint;
        self.ctx
            .borrow_for(endpoint, &self.key, schema, &self.state.vars)
            .await
    }

    /// Releases the backend when nothing ties the session to it. With `affinity`, the
    /// statement left connection-scoped values (warnings, affected rows, an insert id),
    /// so the backend is kept for a short window in case the next statement asks.
    pub(super) fn settle(&mut self, affinity: bool) {
        let left = match affinity {
            false => Left::Nothing,
            // Values Sluice reads itself before the backend goes back (the warnings).
            true if self.state.scope.pending() => Left::ValuesToRead,
            true => Left::Values,
        };
        let window = self.ctx.config.backend.affinity_window.get();
        if let Some(lease) = self.hold.finish(left, window, Instant::now) {
            lease.release();
        }
    }

    pub(super) fn pin(&mut self, reason: PinReason) {
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
        self.state.reset();
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
}
