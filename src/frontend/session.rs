//! One authenticated client's session: what it holds and carries. The command loop
//! (`command_loop`) reads its commands, `dispatch` hands each to its handler (`query`,
//! `statements`, `simple`, `set_option`, `scope_reads`), and the commands that run on a
//! backend go through `execute` with the hold of `backend_hold`.

use super::handshake::Client;
use super::{Context, FrontendError};
use crate::backend::conn::BackendConn;
use crate::backend::{Lease, PartitionKey};
use crate::multiplex::deferred::DeferredErrors;
use crate::multiplex::hold::Hold;
use crate::multiplex::session_state::SessionState;
use crate::multiplex::statements::ClientStatements;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::response::Expect;
use crate::protocol::status;

pub struct Session<'a> {
    pub(super) ctx: &'a Context,
    pub(super) client: Client,
    pub(super) key: PartitionKey,
    /// The backend the session holds, and why.
    pub(super) hold: Hold<Lease>,
    /// Status flags of the last OK or EOF the backend sent this session.
    pub(super) status_flags: u16,
    /// The session's prepared statements, by the ids Sluice gave it.
    pub(super) stmts: ClientStatements,
    /// Errors of COM_STMT_SEND_LONG_DATA (which has no response), for the statement's
    /// execute to report.
    pub(super) deferred: DeferredErrors,
    /// The command being handled is COM_STMT_SEND_LONG_DATA for this statement: errors
    /// are deferred, not sent.
    pub(super) silent: Option<u32>,
    /// What the session carries from backend to backend.
    pub(super) state: SessionState,
    /// The server family of the backends (known from the capacity probe at start, and
    /// from each backend the session holds); it decides which statements clear the
    /// kept warnings and how Sluice's own answers look.
    pub(super) flavor: Flavor,
}

/// A command on its way to the backend: the client's frame (possibly rewritten in place,
/// with its continuation packets still to come), or a rebuilt whole payload.
pub(super) enum Outgoing {
    Frame(Frame),
    /// With the sequence id the reply must carry.
    Payload(Vec<u8>, u8),
}

/// Where the continuation packets of a command go.
pub(super) enum Rest<'b> {
    Skip,
    Relay,
    Collect(&'b mut Vec<u8>),
}

/// How a command is relayed.
#[derive(Clone, Copy)]
pub(super) enum Relay {
    Respond(Expect),
    /// A statement that reads connection-scoped values: the last insert id, and/or the
    /// previous statement's diagnostics (warnings, ROW_COUNT(), FOUND_ROWS()).
    RespondReadingScope {
        insert_id: bool,
        diagnostics: bool,
    },
    /// COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA: the server sends nothing back.
    NoResponse,
}

impl<'a> Session<'a> {
    pub fn new(ctx: &'a Context, mut client: Client) -> Self {
        let key = client.partition_key();
        let state = SessionState::new(client.schema.take());
        Self {
            ctx,
            client,
            key,
            hold: Hold::Free,
            state,
            stmts: ClientStatements::default(),
            deferred: DeferredErrors::default(),
            silent: None,
            status_flags: ctx
                .pool
                .connector()
                .server_status()
                .unwrap_or(status::AUTOCOMMIT),
            flavor: ctx.pool.connector().flavor(),
        }
    }

    pub async fn run(mut self) -> Result<(), FrontendError> {
        let result = self.command_loop().await;
        self.give_back().await;
        result
    }

    /// The held backend connection.
    pub(super) fn lease_conn(&mut self) -> &mut BackendConn {
        self.hold.lease_mut().expect("a backend is held").conn()
    }

    /// Status flags for an OK Sluice answers itself: the session's autocommit and
    /// NO_BACKSLASH_ESCAPES as of its last statement.
    pub(super) fn idle_status(&self) -> u16 {
        self.status_flags & (status::AUTOCOMMIT | status::NO_BACKSLASH_ESCAPES)
    }

    /// The status a server shows in a response that runs no statement (a prepare's
    /// EOFs): what this client's own last command left, as its own connection would.
    /// Never the backend's, which may be another client's (LAST_ROW_SENT after its
    /// cursor's last fetch). Only the flags of one packet are dropped.
    pub(super) fn residual_status(&self) -> u16 {
        self.status_flags & !(status::SESSION_STATE_CHANGED | status::MORE_RESULTS_EXISTS)
    }

    pub(super) fn backslash_escapes(&self) -> bool {
        self.status_flags & status::NO_BACKSLASH_ESCAPES == 0
    }

    pub(super) fn ctx(&self) -> &'a Context {
        self.ctx
    }
}
