//! Reads of connection-scoped values Sluice answers itself when the session's backend
//! has moved on (`SELECT FOUND_ROWS()`, `SELECT ROW_COUNT()`, `SHOW WARNINGS`,
//! `@@warning_count` …), and keeping them when the backend goes back to the pool.

use super::session::{Relay, Session};
use super::FrontendError;
use crate::backend::BackendError;
use crate::multiplex::scope::{DiagnosticsRead, KeptDiagnostics, ScopeRead, FOUND_ROWS_DEPRECATED};
use crate::protocol::caps;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::response::{self, Expect};
use crate::protocol::result_set::Ending;
use crate::protocol::status;

impl Session<'_> {
    /// `SELECT FOUND_ROWS()` / `SELECT ROW_COUNT()` when the session's value is not on
    /// the backend it holds: answered with the result set the server would send.
    pub(super) async fn answer_scope_read(
        &mut self,
        read: ScopeRead,
        column: &[u8],
        value: i64,
    ) -> Result<(), FrontendError> {
        self.ctx.metrics.queries.inc();
        if read == ScopeRead::FoundRows && self.flavor == Flavor::MySql {
            // As MySQL does: the deprecation warning, which is then the session's list.
            let (code, message) = FOUND_ROWS_DEPRECATED;
            let collation = u16::from(self.client.charset);
            self.state.scope.kept = Some(KeptDiagnostics::one_warning(
                code,
                message,
                collation,
                self.answer_ending(0),
            ));
            let answer = response::bigint_result(column, value, self.answer_ending(1));
            return self.reply(&answer).await;
        }
        // A statement that leaves no warning: on MySQL it clears the kept list.
        if self.flavor == Flavor::MySql {
            self.state.scope.kept = None;
        }
        let answer = self.bigint_answer(column, value);
        self.reply(&answer).await
    }

    /// `SHOW WARNINGS` / `SHOW ERRORS` / `SELECT @@warning_count` / `@@error_count`: from
    /// what Sluice kept when the session's backend has gone back to the pool; else from
    /// the backend, keeping what Sluice kept (reading diagnostics does not clear them).
    /// On MySQL the two `SELECT`s answer the count and then clear the list, as any
    /// statement but SHOW WARNINGS / SHOW ERRORS does there.
    pub(super) async fn read_diagnostics(
        &mut self,
        frame: Frame,
        read: DiagnosticsRead,
    ) -> Result<(), FrontendError> {
        self.ctx.metrics.queries.inc();
        let clears = self.flavor == Flavor::MySql
            && matches!(
                read,
                DiagnosticsRead::WarningCount(_) | DiagnosticsRead::ErrorCount(_)
            );
        if let (false, Some(kept)) = (self.hold.is_held(), &self.state.scope.kept) {
            let answer = match read {
                DiagnosticsRead::ShowWarnings => kept.warnings.clone(),
                DiagnosticsRead::ShowErrors => kept.errors.clone(),
                DiagnosticsRead::WarningCount(column) => {
                    self.bigint_answer(&column, i64::try_from(kept.warning_count).unwrap_or(0))
                }
                DiagnosticsRead::ErrorCount(column) => {
                    self.bigint_answer(&column, i64::try_from(kept.error_count).unwrap_or(0))
                }
            };
            if clears {
                self.state.scope.kept = None;
            }
            return self.reply(&answer).await;
        }
        let kept = (
            self.state.scope.kept.take(),
            self.state.scope.diagnostics_pending(),
        );
        self.execute(
            frame,
            Relay::RespondReadingScope {
                insert_id: false,
                diagnostics: true,
            },
            None,
        )
        .await?;
        let (kept, pending) = if clears { (None, false) } else { kept };
        self.state.scope.kept = kept;
        self.state.scope.set_diagnostics_pending(pending);
        Ok(())
    }

    /// A one-row BIGINT result set for a value Sluice answers itself.
    pub(super) fn bigint_answer(&self, column: &[u8], value: i64) -> Vec<u8> {
        response::bigint_result(column, value, self.answer_ending(0))
    }

    /// How many warnings (and errors) Sluice kept of the session's last statement.
    pub(super) fn kept_warnings(&self) -> u16 {
        self.state
            .scope
            .kept
            .as_ref()
            .map_or(0, |k| u16::try_from(k.warning_count).unwrap_or(u16::MAX))
    }

    /// How a result set Sluice answers itself ends for this client.
    pub(super) fn answer_ending(&self, warnings: u16) -> Ending {
        Ending {
            deprecate_eof: self.client.capabilities & caps::DEPRECATE_EOF != 0,
            status: self.status_flags
                & (status::AUTOCOMMIT | status::IN_TRANS | status::NO_BACKSLASH_ESCAPES),
            warnings,
        }
    }

    /// The affinity window ran out before the client's next statement. Warnings the last
    /// statement left are read first, so a later `SHOW WARNINGS` still lists them.
    pub(super) async fn end_affinity(&mut self) {
        let Some(mut lease) = self.hold.end_affinity() else {
            return;
        };
        if self.state.scope.take_diagnostics_pending() {
            let conn = lease.conn();
            let client_caps = self.client.capabilities;
            let kept = async {
                let status = conn.status();
                let warnings = conn.query_wire("SHOW WARNINGS").await?;
                let errors = conn.query_wire("SHOW ERRORS").await?;
                let for_client = |wire: &[u8]| {
                    super::relay::kept_for_client(wire, Expect::Results, client_caps, status)
                };
                Ok::<_, BackendError>(KeptDiagnostics {
                    warnings: for_client(&warnings.wire)?,
                    errors: for_client(&errors.wire)?,
                    warning_count: warnings.rows,
                    error_count: errors.rows,
                })
            };
            match kept.await {
                Ok(kept) => self.state.scope.kept = Some(kept),
                // The backend failed: it is closed with the lease, nothing is lost.
                Err(_) => return,
            }
        }
        if self.state.scope.take_insert_id_pending() {
            // After the warnings: on MySQL this SELECT clears them.
            match lease.conn().query("SELECT LAST_INSERT_ID()").await {
                Ok(rows) => {
                    let value = rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(|v| std::str::from_utf8(v.as_deref()?).ok()?.parse::<u64>().ok());
                    self.state.scope.read_insert_id(value);
                }
                Err(_) => return,
            }
        }
        lease.release();
    }
}
