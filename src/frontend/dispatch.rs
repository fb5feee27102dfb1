//! One command: which handler takes it, and the common path of every command that runs
//! on a backend. Each handler answers the command itself or says how it runs (`Run`).

use super::session::{Relay, Session};
use super::FrontendError;
use crate::multiplex::classify::Classification;
use crate::multiplex::PinReason;
use crate::protocol::command::Command;
use crate::protocol::flavor::Flavor;
use crate::protocol::packet::Frame;
use crate::protocol::response::Expect;

/// What a handler made of a command.
pub(super) enum Handled {
    /// Answered (or refused) here: the loop reads the next command.
    Answered,
    /// The client quit, or its session cannot go on.
    Ended,
    /// The command runs on a backend, as `Run` says.
    Run(Frame, Run),
}

/// How a command runs on a backend.
#[derive(Clone, Copy)]
pub(super) struct Run {
    pub relay: Relay,
    /// The session is pinned to the backend that runs it.
    pub pin: Option<PinReason>,
    /// It clears the previous statement's diagnostics even if it leaves none.
    pub clears_diagnostics: bool,
    /// DDL: statements prepared before it may see another schema.
    pub changes_schema: bool,
    /// It may set LAST_INSERT_ID() with no OK packet saying so.
    pub sets_insert_id: bool,
    /// COM_STMT_SEND_LONG_DATA of this statement: it has no response, so its errors are
    /// kept for the statement's execute.
    pub silent: Option<u32>,
}

impl Run {
    /// A command relayed as it is, expecting `expect`.
    pub fn relay(relay: Relay) -> Self {
        Self {
            relay,
            pin: None,
            clears_diagnostics: false,
            changes_schema: false,
            sets_insert_id: false,
            silent: None,
        }
    }

    pub fn respond(expect: Expect) -> Self {
        Self::relay(Relay::Respond(expect))
    }

    /// A statement (COM_QUERY, or COM_STMT_EXECUTE with what its text said at prepare
    /// time), as its classification says.
    pub fn statement(class: Classification, flavor: Flavor) -> Self {
        let relay = if class.reads_insert_id || class.reads_diagnostics {
            Relay::RespondReadingScope {
                insert_id: class.reads_insert_id,
                diagnostics: class.reads_diagnostics,
            }
        } else {
            Relay::Respond(Expect::Results)
        };
        Self {
            relay,
            pin: class.pin,
            clears_diagnostics: class.clears_diagnostics(flavor),
            changes_schema: class.changes_schema,
            sets_insert_id: class.sets_insert_id,
            silent: None,
        }
    }
}

impl Session<'_> {
    /// Handles one command; false when the session is over.
    pub(super) async fn dispatch(&mut self, frame: Frame) -> Result<bool, FrontendError> {
        let Some(&byte) = frame.payload().first() else {
            self.unknown_command(&frame).await?;
            return Ok(true);
        };
        let command = Command::from_byte(byte);
        let handled = match command {
            Command::Quit => Handled::Ended,
            Command::Query => self.query(frame).await?,
            Command::StmtPrepare => self.stmt_prepare(frame).await?,
            Command::StmtExecute => self.stmt_execute(frame).await?,
            Command::StmtSendLongData | Command::StmtReset | Command::StmtFetch => {
                self.stmt_command(command, frame).await?
            }
            Command::StmtClose => self.stmt_close(frame).await?,
            Command::Ping => self.ping(frame).await?,
            Command::ResetConnection => self.reset_connection(&frame).await?,
            Command::ChangeUser => self.change_user(frame).await?,
            Command::SetOption => self.set_option(frame).await?,
            Command::InitDb => Handled::Run(frame, Run::respond(Expect::Results)),
            Command::FieldList => Handled::Run(frame, Run::respond(Expect::FieldList)),
            Command::Statistics => Handled::Run(frame, Run::respond(Expect::Single)),
            Command::Unsupported(_) | Command::ProcessKill => self.unknown_command(&frame).await?,
        };
        match handled {
            Handled::Answered => Ok(true),
            Handled::Ended => Ok(false),
            Handled::Run(frame, run) => self.run_on_backend(frame, run).await.map(|()| true),
        }
    }

    /// Runs a command on a backend, then what every command's end implies for the
    /// session's connection-scoped values.
    async fn run_on_backend(&mut self, frame: Frame, run: Run) -> Result<(), FrontendError> {
        self.ctx.metrics.queries.inc();
        self.state.scope.running(run.sets_insert_id);
        self.silent = run.silent;
        let result = self.execute(frame, run.relay, run.pin).await;
        self.silent = None;
        self.state.scope.finished();
        if run.changes_schema {
            // Whether or not it succeeded: a new generation only costs fresh prepares.
            self.ctx.pool.connector().schema_changed();
        }
        if run.clears_diagnostics || self.state.scope.diagnostics_pending() {
            // What Sluice kept is no longer the session's list: the backend that ran this
            // statement holds the right one (and is read before it goes back).
            self.state.scope.kept = None;
        }
        result
    }
}
