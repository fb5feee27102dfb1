//! One backend connection: what it is and what Sluice knows of it (`login` opens it:
//! connect, optional TLS, authenticate, switch session tracking on; `commands` runs
//! small internal commands on it, pipelines them, resets and quits it).

mod commands;
mod login;

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::partition::PartitionKey;
use super::pool::Pooled;
use super::tls::BackendTls;
use crate::multiplex::statements::BackendStatements;
use crate::multiplex::variables::Variables;
use crate::net::PacketStream;
use crate::protocol::caps;
use crate::protocol::flavor::Flavor;
use crate::protocol::prepared::PrepareOk;

/// Capabilities every backend connection asks for; the partition key adds the
/// client-visible semantic flags (`caps::SEMANTIC`). DEPRECATE_EOF is always on (clients
/// without it get their EOFs from the relay). MULTI_STATEMENTS is off, as most drivers
/// leave it, and switched with COM_SET_OPTION for a client that has it
/// (`Internal::MultiStatements`).
const BASE_CAPS: u32 = caps::LONG_PASSWORD
    | caps::LONG_FLAG
    | caps::PROTOCOL_41
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::CONNECT_ATTRS
    | caps::SESSION_TRACK
    | caps::DEPRECATE_EOF;

/// The COM_SET_OPTION values for MULTI_STATEMENTS on and off.
pub const MULTI_STATEMENTS_ON: u16 = 0;
pub const MULTI_STATEMENTS_OFF: u16 = 1;

/// Switches on the trackers multiplexing relies on. System variables are tracked by
/// name, every variable of the partition's `baseline` (see
/// [`Variables::tracking_list`]); the connection that learns the baseline starts with
/// `'*'` and narrows to the list once it has read it.
fn session_tracking(baseline: &Variables) -> String {
    let list = baseline.tracking_list();
    let list = if list.is_empty() { "*" } else { &list };
    format!(
        "SET SESSION session_track_schema=ON, session_track_state_change=ON, \
session_track_system_variables='{list}', session_track_transaction_info='CHARACTERISTICS'"
    )
}

/// Narrows the system-variable tracker of the connection that learned the baseline to
/// the baseline's names, as every later connection of the partition starts.
fn narrow_tracking(baseline: &Variables) -> String {
    format!(
        "SET SESSION session_track_system_variables='{}'",
        baseline.tracking_list()
    )
}

/// The baseline of a partition: every session variable of a freshly set-up connection,
/// formatted as the session tracker formats them.
const SHOW_VARIABLES: &str = "SHOW SESSION VARIABLES";

/// How to reach and log in to the backend; built once from the configuration.
#[derive(Clone)]
pub struct Target {
    pub address: String,
    pub tls: Option<BackendTls>,
    pub connect_timeout: Duration,
    pub init_query: String,
}

/// The backend's default schema as far as Sluice knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    Known(Option<Vec<u8>>),
    Unknown,
}

impl Schema {
    /// True when the schema is known to be `wanted` (compared without allocating).
    pub fn is(&self, wanted: Option<&[u8]>) -> bool {
        matches!(self, Self::Known(s) if s.as_deref() == wanted)
    }
}

/// One backend connection. What it holds (schema, variables, statements) is read and
/// changed through its methods, so that what Sluice believes of the server's session
/// changes only where the session did.
pub struct BackendConn {
    io: PacketStream,
    key: PartitionKey,
    schema: Schema,
    thread_id: u32,
    created: Instant,
    last_used: Instant,
    server_version: Vec<u8>,
    /// MySQL or MariaDB, from the greeting's version.
    flavor: Flavor,
    /// Status flags of the server's greeting.
    server_status: u16,
    /// Status flags of the last OK or EOF this connection sent (NO_BACKSLASH_ESCAPES
    /// decides how a replayed `SET` must quote).
    status: u16,
    /// System variables that differ from `baseline` (multiplex::variables).
    vars: Variables,
    /// The state of a fresh connection of this partition, shared by all of them.
    baseline: Arc<Variables>,
    /// Prepared statements open on this connection (multiplex::statements).
    statements: BackendStatements,
    /// Whether the server reads a COM_QUERY as several statements (COM_SET_OPTION
    /// switches it; COM_RESET_CONNECTION leaves it as it is).
    multi_statements: bool,
    /// The writer generation it was opened in (`backend::topology`).
    generation: u64,
}

/// A whole response kept as wire bytes; for COM_STMT_PREPARE, with its OK.
pub struct WireReply {
    /// The whole response, wire bytes (sequence ids from 1).
    pub wire: Vec<u8>,
    /// The prepare OK; None when the server refused (the wire bytes are its ERR packet).
    pub ok: Option<PrepareOk>,
    /// Rows of a result set.
    pub rows: u64,
}

/// A command Sluice sends on its own behalf.
pub enum Internal<'a> {
    InitDb(&'a [u8]),
    Query(&'a str),
    /// COM_SET_OPTION: multi-statements on (true) or off.
    MultiStatements(bool),
}

/// Rows of a small internal query, as text (NULL = None).
pub type Rows = Vec<Vec<Option<Vec<u8>>>>;

impl BackendConn {
    /// The server family this connection talks to.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    pub fn key(&self) -> &PartitionKey {
        &self.key
    }

    /// The default schema, as far as Sluice knows.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The server's id for this connection (its `CONNECTION_ID()`), from the greeting.
    pub fn thread_id(&self) -> u32 {
        self.thread_id
    }

    /// The server's version string, from its greeting.
    pub fn server_version(&self) -> &[u8] {
        &self.server_version
    }

    /// Status flags of the server's greeting.
    pub fn server_status(&self) -> u16 {
        self.server_status
    }

    /// Status flags of the last OK or EOF this connection sent.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the server reads `\` in strings as an escape (sql_mode without
    /// NO_BACKSLASH_ESCAPES, as of the last status): how a replayed `SET` must quote.
    pub fn backslash_escapes(&self) -> bool {
        self.status & crate::protocol::status::NO_BACKSLASH_ESCAPES == 0
    }

    /// System variables that differ from the partition's baseline.
    pub fn vars(&self) -> &Variables {
        &self.vars
    }

    /// A replay succeeded: the session on the server now holds exactly `vars`, even
    /// where the server would report a value in another spelling.
    pub fn assume_vars(&mut self, vars: Variables) {
        self.vars = vars;
    }

    /// The parse variables (`names`) set from `from` by Sluice's own SET.
    pub fn assume_parse_vars(&mut self, from: &Variables, names: &[&str]) {
        self.vars.assign(from, names);
    }

    /// The state of a fresh connection of this partition.
    pub fn baseline(&self) -> &Arc<Variables> {
        &self.baseline
    }

    /// Prepared statements open on this connection.
    pub fn statements(&mut self) -> &mut BackendStatements {
        &mut self.statements
    }

    /// Records what a relayed response told: a new default schema (from session
    /// tracking), the last status flags. (Its last use is the pool's to set, when the
    /// client's borrow comes back: only idle connections are asked when they were used.)
    pub fn relayed(&mut self, schema: Option<Option<Vec<u8>>>, status: Option<u16>) {
        if let Some(schema) = schema {
            self.schema = Schema::Known(schema);
        }
        if let Some(status) = status {
            self.status = status;
        }
    }

    /// Whether a COM_QUERY is read as several statements here.
    pub fn multi_statements(&self) -> bool {
        self.multi_statements
    }

    /// True when the server closed this idle connection or sent something unasked.
    pub fn server_gone(&self) -> bool {
        self.io.peer_spoke()
    }

    /// The writer generation it was opened in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(in crate::backend) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}

/// What the pool needs of a connection.
impl Pooled for BackendConn {
    fn key(&self) -> &PartitionKey {
        &self.key
    }

    fn has_schema(&self, schema: Option<&[u8]>) -> bool {
        self.schema.is(schema)
    }

    fn has_vars(&self, vars: &Variables) -> bool {
        self.vars == *vars
    }

    fn created(&self) -> Instant {
        self.created
    }

    fn last_used(&self) -> Instant {
        self.last_used
    }

    fn set_last_used(&mut self, at: Instant) {
        self.last_used = at;
    }

    fn server_gone(&self) -> bool {
        BackendConn::server_gone(self)
    }

    fn generation(&self) -> u64 {
        self.generation
    }
}
