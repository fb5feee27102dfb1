//! Bringing a backend to the session's state before a statement: its default schema,
//! its session variables, what the client's handshake chose, the multi-statements
//! setting and the connection-scoped values the statement reads, in one pipelined
//! batch; and recording what a statement changed.

use super::session::{Relay, Session};
use crate::backend::conn::{BackendConn, Internal};
use crate::backend::BackendError;
use crate::multiplex::handshake_state;
use crate::multiplex::Variables;
use crate::protocol::caps;

impl Session<'_> {
    /// Records what the client's handshake chose as the session's state: its character
    /// set and collation, and the effect of CLIENT_IGNORE_SPACE and CLIENT_INTERACTIVE
    /// (backend connections all log in with one collation and without those flags, so
    /// clients whose handshakes differ share them; the replay carries the difference).
    pub(super) fn apply_handshake_state(&mut self, conn: &BackendConn) {
        if let Some(collations) = self.ctx.pool.connector().collations() {
            let flags = self.client.capabilities;
            collations.apply_handshake(self.client.charset, &mut self.state.vars, conn.baseline());
            handshake_state::apply_flags(
                flags & caps::IGNORE_SPACE != 0,
                flags & caps::INTERACTIVE != 0,
                &mut self.state.vars,
                conn.baseline(),
            );
            self.state.handshake_pending = false;
        }
    }

    /// Brings the leased backend to the session's state before a statement: its schema,
    /// its session variables, and connection-scoped values the statement may read. All of
    /// it goes in one pipelined batch, so it costs at most one round trip, and none when
    /// the backend already matches.
    pub(super) async fn prepare_backend(&mut self, relay: Relay) -> Result<(), BackendError> {
        let pinned = self.hold.pin().is_some();
        let lease = self.hold.lease_mut().expect("held before preparing");
        let conn = lease.conn();
        let schema = self
            .state
            .schema
            .as_deref()
            .filter(|s| !conn.schema().is(Some(s)));
        let replay = Variables::replay(
            &self.state.vars,
            conn.vars(),
            conn.baseline(),
            conn.backslash_escapes(),
        );
        let (reads_id, reads_diag) = match relay {
            Relay::RespondReadingScope {
                insert_id,
                diagnostics,
            } => (insert_id, diagnostics),
            _ => (false, false),
        };
        // A pinned session stays here, where prepared statements may read these values
        // unseen: it restores everything. The restore runs last, after the replay's SET,
        // so the SET's own effects are cleared too.
        let restore = self.state.scope.restore(reads_id, reads_diag, pinned);
        // The client's COM_SET_OPTION, or another client's before it on this backend.
        let multi = self.client.capabilities & caps::MULTI_STATEMENTS != 0;
        let mut batch = Vec::new();
        if conn.multi_statements() != multi {
            batch.push(Internal::MultiStatements(multi));
        }
        batch.extend(schema.map(Internal::InitDb));
        batch.extend(replay.as_deref().map(Internal::Query));
        batch.extend(restore.as_ref().map(|r| Internal::Query(&r.sql)));
        if batch.is_empty() {
            return Ok(());
        }
        let results = conn.pipeline(&batch).await?;
        for (command, result) in batch.iter().zip(results) {
            match (command, result) {
                (Internal::InitDb(_), Err(e)) => {
                    // The schema is gone (as on a direct connection whose database was
                    // dropped, the session continues without one).
                    self.state.schema = None;
                    return Err(e.into());
                }
                (_, Err(e)) => {
                    tracing::warn!(error = %e, "restoring the session's state on a backend failed");
                    return Err(e.into());
                }
                (_, Ok(_)) => {}
            }
        }
        if replay.is_some() {
            self.ctx.metrics.session_replays.inc();
            // The SET succeeded: the backend now holds exactly the session's values, even
            // where the server would report one in another spelling.
            conn.assume_vars(self.state.vars.clone());
        }
        if let Some(restore) = &restore {
            self.state.scope.restored(restore);
        }
        Ok(())
    }

    /// Records the system variables a statement changed, for the session (to replay
    /// elsewhere) and for the backend that ran it.
    pub(super) async fn record_variables(
        &mut self,
        changes: &[(Box<str>, Box<[u8]>)],
    ) -> Result<(), BackendError> {
        let Some(lease) = self.hold.lease_mut() else {
            return Ok(());
        };
        let conn = lease.conn();
        conn.record_variables(changes);
        for (name, value) in changes {
            self.state.vars.record(name, value, conn.baseline());
        }
        // A new connection character set also changes collation_connection, which
        // MariaDB does not report (nor a COLLATE clause): ask, so a replay restores it.
        if changes
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("character_set_connection"))
        {
            let rows = conn.query("SELECT @@collation_connection").await?;
            if let Some(Some(collation)) = rows.first().and_then(|r| r.first()) {
                let change = [("collation_connection".into(), collation.as_slice().into())];
                conn.record_variables(&change);
                self.state
                    .vars
                    .record("collation_connection", collation, conn.baseline());
            }
        }
        Ok(())
    }
}
