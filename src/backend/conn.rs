//! One backend connection: connect, optional TLS, authenticate, switch session tracking on,
//! run small internal commands, reset.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::partition::PartitionKey;
use super::pool::Pooled;
use super::tls::BackendTls;
use super::ConnectionError;
use crate::auth::{caching_sha2, native, Plugin};
use crate::credentials::Login;
use crate::multiplex::handshake_state::BACKEND_COLLATION;
use crate::multiplex::statements::BackendStatements;
use crate::multiplex::variables::{classify, Tracked, Variables, CONNECTION_CHARSET};
use crate::net::{MaybeTls, PacketStream};
use crate::protocol::command::{
    COM_INIT_DB, COM_QUERY, COM_QUIT, COM_RESET_CONNECTION, COM_SET_OPTION, COM_STMT_CLOSE,
    COM_STMT_PREPARE,
};
use crate::protocol::flavor::Flavor;
use crate::protocol::handshake::{
    parse_auth_switch, Greeting, HandshakeResponse, AUTH_MORE_DATA_HEADER, AUTH_SWITCH_HEADER,
};
use crate::protocol::packet::{self, PacketReader, MAX_PAYLOAD};
use crate::protocol::prepared::PrepareOk;
use crate::protocol::response::{Expect, OkPacket, Seen, Tracker, ERR_HEADER, OK_HEADER};
use crate::protocol::session_track::{self, Change};
use crate::protocol::wire::Reader;
use crate::protocol::{caps, ProtocolError};

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

/// Switches on the trackers multiplexing relies on.
const SESSION_TRACKING: &str = "SET SESSION session_track_schema=ON, \
session_track_state_change=ON, session_track_system_variables='*', \
session_track_transaction_info='CHARACTERISTICS'";

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
    /// Opens and authenticates a connection, with `schema` as its default schema.
    /// `baseline` is the partition's, when the pool knows it already; otherwise the set-up
    /// reads it (`SHOW SESSION VARIABLES`, in the same round trip).
    pub async fn connect(
        target: &Target,
        login: &Login,
        key: PartitionKey,
        schema: Option<&[u8]>,
        baseline: Option<Arc<Variables>>,
    ) -> Result<Self, ConnectionError> {
        tokio::time::timeout(target.connect_timeout, async {
            let mut conn =
                Self::connect_inner(target, login, key, schema, baseline.clone()).await?;
            conn.set_up_session(target, false, baseline.is_none())
                .await?;
            Ok(conn)
        })
        .await
        .map_err(|_| ConnectionError::ConnectTimeout)?
    }

    /// Logs in as `login` and leaves at once: nothing of the session is set up (no
    /// session tracking, no `init_query`). Used to prove a credential the database
    /// checks, such as an IAM token.
    pub async fn check_login(target: &Target, login: &Login) -> Result<(), ConnectionError> {
        let key = PartitionKey {
            user: login.user.clone(),
            flags: 0,
        };
        let conn = tokio::time::timeout(
            target.connect_timeout,
            Self::connect_inner(target, login, key, None, Some(Arc::default())),
        )
        .await
        .map_err(|_| ConnectionError::ConnectTimeout)??;
        // The verdict is in; closing is not waited for.
        tokio::spawn(conn.quit());
        Ok(())
    }

    async fn connect_inner(
        target: &Target,
        login: &Login,
        key: PartitionKey,
        schema: Option<&[u8]>,
        baseline: Option<Arc<Variables>>,
    ) -> Result<Self, ConnectionError> {
        let tcp = TcpStream::connect(&target.address)
            .await
            .map_err(ConnectionError::Connect)?;
        tcp.set_nodelay(true).map_err(ConnectionError::Connect)?;
        let mut stream = MaybeTls::Plain(tcp);
        let mut reader = PacketReader::new();
        let greeting = read_greeting(&mut stream, &mut reader).await?;
        let mut capabilities = (BASE_CAPS | key.flags) & greeting.capabilities;
        if schema.is_some() {
            capabilities |= caps::CONNECT_WITH_DB & greeting.capabilities;
        }
        let mut seq = 1u8;
        if let Some(tls) = &target.tls {
            if greeting.capabilities & caps::SSL == 0 {
                return Err(ConnectionError::Unsupported("TLS"));
            }
            capabilities |= caps::SSL;
            stream = start_tls(stream, tls, capabilities, seq).await?;
            seq += 1;
        }
        let plugin = Plugin::from_name(&greeting.auth_plugin).unwrap_or(Plugin::Native);
        let password = login.password.expose_secret();
        let response = HandshakeResponse {
            capabilities,
            max_packet: MAX_PAYLOAD as u32,
            charset: BACKEND_COLLATION,
            user: login.user.as_bytes().to_vec(),
            auth_response: auth_response(plugin, password, &greeting.scramble, stream.is_tls())?,
            database: schema.map(<[u8]>::to_vec),
            auth_plugin: Some(plugin.name().to_vec()),
            attributes: vec![
                (b"_client_name".to_vec(), b"sluice".to_vec()),
                (b"program_name".to_vec(), b"sluice".to_vec()),
            ],
        };
        stream_write(&mut stream, &packet::packet(seq, &response.encode())).await?;
        let mut conn = Self {
            io: PacketStream::from_parts(stream, reader),
            key,
            schema: Schema::Known(schema.map(<[u8]>::to_vec)),
            thread_id: greeting.connection_id,
            created: Instant::now(),
            last_used: Instant::now(),
            flavor: Flavor::from_version(&greeting.server_version),
            server_version: greeting.server_version,
            server_status: greeting.status,
            status: greeting.status,
            vars: Variables::default(),
            baseline: baseline.clone().unwrap_or_default(),
            statements: BackendStatements::default(),
            multi_statements: false,
        };
        conn.authenticate(plugin, &greeting.scramble, login.password.expose_secret())
            .await?;
        Ok(conn)
    }

    /// Follows the server through auth switches and caching_sha2 full authentication.
    async fn authenticate(
        &mut self,
        mut plugin: Plugin,
        scramble: &[u8],
        password: &[u8],
    ) -> Result<(), ConnectionError> {
        let mut nonce = scramble.to_vec();
        loop {
            let frame = self.io.read(64 * 1024).await?;
            let seq = frame.seq().wrapping_add(1);
            let payload = frame.payload();
            match payload.first() {
                Some(&OK_HEADER) => return Ok(()),
                Some(&ERR_HEADER) => return Err(ConnectionError::from_err_packet(payload)),
                Some(&AUTH_SWITCH_HEADER) => {
                    let (name, data) = parse_auth_switch(payload)?;
                    plugin = Plugin::from_name(name)
                        .ok_or(ConnectionError::Unsupported("the requested auth plugin"))?;
                    nonce = data.to_vec();
                    let resp = auth_response(plugin, password, &nonce, self.io.is_tls())?;
                    self.write(&packet::packet(seq, &resp)).await?;
                }
                Some(&AUTH_MORE_DATA_HEADER) if plugin == Plugin::CachingSha2 => {
                    match payload.get(1) {
                        Some(&caching_sha2::FAST_AUTH_SUCCESS) => {}
                        Some(&caching_sha2::PERFORM_FULL_AUTH) if self.io.is_tls() => {
                            let mut clear = password.to_vec();
                            clear.push(0);
                            self.write(&packet::packet(seq, &clear)).await?;
                        }
                        Some(&caching_sha2::PERFORM_FULL_AUTH) => {
                            let req = [caching_sha2::REQUEST_PUBLIC_KEY];
                            self.write(&packet::packet(seq, &req)).await?;
                        }
                        _ => {
                            // The server's RSA public key (PEM) after our request.
                            let enc =
                                caching_sha2::encrypt_password(password, &nonce, &payload[1..])?;
                            self.write(&packet::packet(seq, &enc)).await?;
                        }
                    }
                }
                _ => {
                    return Err(ProtocolError::Malformed("unexpected authentication packet").into())
                }
            }
        }
    }

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
    /// tracking), the last status flags. It counts as a use.
    pub fn relayed(&mut self, schema: Option<Option<Vec<u8>>>, status: Option<u16>) {
        if let Some(schema) = schema {
            self.schema = Schema::Known(schema);
        }
        if let Some(status) = status {
            self.status = status;
        }
        self.last_used = Instant::now();
    }

    /// Whether a COM_QUERY is read as several statements here.
    pub fn multi_statements(&self) -> bool {
        self.multi_statements
    }

    /// COM_QUIT, then waits (briefly) for the server to close its end, plus a moment:
    /// the server counts a connection out only after closing its socket, and the pool
    /// reuses this connection's slot once this returns.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if self.write(&packet::packet(0, &[COM_QUIT])).await.is_ok() {
                // Anything still arriving (the rest of an abandoned result) is dropped
                // as it comes, so this never buffers more than one read.
                let (stream, reader) = self.io.parts();
                while reader.fill(stream).await.is_ok() {
                    reader.discard();
                }
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    /// True when the server closed this idle connection or sent something unasked.
    pub fn server_gone(&self) -> bool {
        self.io.peer_spoke()
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        stream_write(self.io.parts().0, bytes).await
    }

    /// The stream and its read buffer, for relaying client commands.
    pub fn io(&mut self) -> (&mut MaybeTls, &mut PacketReader) {
        self.io.parts()
    }

    /// Runs one SQL statement and returns its text rows (empty for OK).
    pub async fn query(&mut self, sql: &str) -> Result<Rows, ConnectionError> {
        self.command(&com_query(sql)).await
    }

    /// Prepares `sql` on this connection and reads the whole response.
    pub async fn prepare(&mut self, sql: &[u8]) -> Result<WireReply, ConnectionError> {
        let mut payload = Vec::with_capacity(1 + sql.len());
        payload.push(COM_STMT_PREPARE);
        payload.extend_from_slice(sql);
        self.command_wire(&payload, Expect::Prepare).await
    }

    /// Runs `sql` and returns its whole response as wire bytes (sequence ids from 1),
    /// for Sluice to send a client later.
    pub async fn query_wire(&mut self, sql: &str) -> Result<WireReply, ConnectionError> {
        self.command_wire(&com_query(sql), Expect::Results).await
    }

    /// Sends a command and keeps its whole response as wire bytes.
    async fn command_wire(
        &mut self,
        payload: &[u8],
        expect: Expect,
    ) -> Result<WireReply, ConnectionError> {
        self.write_payload(payload).await?;
        let mut tracker = Tracker::new(expect, true);
        let mut reply = WireReply {
            wire: Vec::new(),
            ok: None,
            rows: 0,
        };
        while !tracker.is_done() {
            let frame = self.io.read(MAX_PAYLOAD).await?;
            let p = frame.payload();
            let in_rows = tracker.in_rows();
            match tracker.feed(p, p.len())? {
                Seen::Data if in_rows => reply.rows += 1,
                Seen::PrepareOk => reply.ok = Some(PrepareOk::parse(p)?),
                Seen::Ok => self.status = OkPacket::parse(p, true)?.status,
                Seen::Eof => self.status = tracker.status(),
                _ => {}
            }
            reply.wire.extend_from_slice(frame.as_wire());
        }
        self.last_used = Instant::now();
        Ok(reply)
    }

    /// Closes server statements (COM_STMT_CLOSE has no response).
    pub async fn close_statements(&mut self, ids: &[u32]) -> Result<(), ConnectionError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::with_capacity(9 * ids.len());
        for id in ids {
            let mut payload = [COM_STMT_CLOSE, 0, 0, 0, 0];
            payload[1..].copy_from_slice(&id.to_le_bytes());
            packet::push_packet(&mut batch, 0, &payload);
        }
        self.write(&batch).await
    }

    /// Writes one command payload of any length, split into 16 MiB packets as needed.
    pub async fn write_payload(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        let mut wire = Vec::with_capacity(payload.len() + 4 * (1 + payload.len() / MAX_PAYLOAD));
        packet::push_command(&mut wire, payload);
        self.write(&wire).await
    }

    /// Sends several internal commands in one write and reads their responses in order:
    /// one round trip. A server error answers its own command only; any other error
    /// leaves the connection out of step and ends the batch.
    pub async fn pipeline(
        &mut self,
        commands: &[Internal<'_>],
    ) -> Result<Vec<Result<Rows, ConnectionError>>, ConnectionError> {
        let mut batch = Vec::with_capacity(128);
        for command in commands {
            let payload = match command {
                Internal::InitDb(schema) => [&[COM_INIT_DB][..], schema].concat(),
                Internal::Query(sql) => com_query(sql),
                Internal::MultiStatements(on) => {
                    let option = if *on {
                        MULTI_STATEMENTS_ON
                    } else {
                        MULTI_STATEMENTS_OFF
                    };
                    let [o0, o1] = option.to_le_bytes();
                    vec![COM_SET_OPTION, o0, o1]
                }
            };
            packet::push_packet(&mut batch, 0, &payload);
        }
        self.write(&batch).await?;
        let mut results = Vec::with_capacity(commands.len());
        for command in commands {
            match self.read_response().await {
                Err(e) if e.server_code().is_none() => return Err(e),
                result => {
                    match (&result, command) {
                        (Ok(_), Internal::InitDb(schema)) => {
                            self.schema = Schema::Known(Some(schema.to_vec()));
                        }
                        (Ok(_), Internal::MultiStatements(on)) => self.multi_statements = *on,
                        _ => {}
                    }
                    results.push(result);
                }
            }
        }
        Ok(results)
    }

    /// COM_RESET_CONNECTION, then the session set-up again: what a pinned session left
    /// behind (variables, temporary tables, locks, open transaction) is gone.
    pub async fn reset(&mut self, target: &Target) -> Result<(), ConnectionError> {
        self.schema = Schema::Unknown;
        self.statements.clear();
        self.set_up_session(target, true, false).await
    }

    /// Session tracking and init_query (after COM_RESET_CONNECTION when `reset`), then
    /// `SHOW SESSION VARIABLES` when `learn` (the partition's baseline), sent pipelined:
    /// one round trip however many statements. The server answers commands in order, so
    /// reading the responses one after another is enough.
    async fn set_up_session(
        &mut self,
        target: &Target,
        reset: bool,
        learn: bool,
    ) -> Result<(), ConnectionError> {
        let mut batch = Vec::with_capacity(256);
        let mut commands = 0;
        if reset {
            packet::push_packet(&mut batch, 0, &[COM_RESET_CONNECTION]);
            commands += 1;
        }
        let show = if learn { SHOW_VARIABLES } else { "" };
        // MySQL's reset puts the character set back to the server's default (MariaDB
        // keeps the handshake's): restate this partition's, as a fresh connection has it.
        let charset = reset
            .then(|| {
                let wanted = self.baseline.only(CONNECTION_CHARSET);
                Variables::replay(&wanted, &Variables::default(), &self.baseline, true)
            })
            .flatten()
            .unwrap_or_default();
        for sql in [
            SESSION_TRACKING,
            charset.as_str(),
            target.init_query.as_str(),
            show,
        ] {
            if !sql.is_empty() {
                packet::push_packet(&mut batch, 0, &com_query(sql));
                commands += 1;
            }
        }
        self.write(&batch).await?;
        // Read every response even after an error, so the connection stays in step.
        let mut first_error = None;
        let mut rows = Rows::new();
        for _ in 0..commands {
            match self.read_response().await {
                Ok(r) => rows = r,
                Err(e) if e.server_code().is_some() => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if learn {
            self.baseline = Arc::new(Variables::from_rows(rows.iter().filter_map(|row| {
                Some((
                    row.first()?.as_deref()?,
                    row.get(1)?.as_deref().unwrap_or(b""),
                ))
            })));
        }
        // Whatever the set-up changed is, by definition, this partition's baseline.
        self.vars.clear();
        Ok(())
    }

    /// Sends a command and reads its whole response; an ERR becomes `ConnectionError::Server`.
    async fn command(&mut self, payload: &[u8]) -> Result<Rows, ConnectionError> {
        self.write(&packet::packet(0, payload)).await?;
        self.read_response().await
    }

    /// Reads one whole response to an internal command.
    async fn read_response(&mut self) -> Result<Rows, ConnectionError> {
        let mut tracker = Tracker::new(Expect::Results, true);
        let mut rows = Rows::new();
        let mut error = None;
        while !tracker.is_done() {
            let frame = self.io.read(MAX_PAYLOAD).await?;
            let p = frame.payload();
            let is_row = tracker.in_rows();
            match tracker.feed(p, p.len())? {
                Seen::Err => error = Some(ConnectionError::from_err_packet(p)),
                Seen::Ok => {
                    let ok = OkPacket::parse(p, true)?;
                    self.track(&ok);
                }
                Seen::Eof => self.status = tracker.status(),
                Seen::LocalInfile => {
                    return Err(ProtocolError::Malformed("LOCAL INFILE request").into())
                }
                Seen::PrepareOk => {}
                Seen::Data if is_row => rows.push(parse_text_row(p)?),
                Seen::Data => {}
            }
        }
        self.last_used = Instant::now();
        match error {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Records what an OK packet of an internal command says about this connection: its
    /// status, a schema change, replayable system variables.
    fn track(&mut self, ok: &OkPacket<'_>) {
        self.status = ok.status;
        let Some(block) = ok.session_state else {
            return;
        };
        for change in session_track::changes(block).flatten() {
            match change {
                Change::Schema(s) => {
                    self.schema = Schema::Known(Some(s.to_vec()).filter(|s| !s.is_empty()));
                }
                Change::SystemVariable { name, value } => {
                    if let Ok(name) = std::str::from_utf8(name) {
                        if classify(name) == Tracked::Replay {
                            self.vars.record(name, value, &self.baseline);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Records system variables a relayed statement changed on this connection.
    pub fn record_variables(&mut self, changes: &[(Box<str>, Box<[u8]>)]) {
        for (name, value) in changes {
            self.vars.record(name, value, &self.baseline);
        }
    }
}

/// The payload of a COM_QUERY for `sql`.
fn com_query(sql: &str) -> Vec<u8> {
    let mut payload = Vec::with_capacity(1 + sql.len());
    payload.push(COM_QUERY);
    payload.extend_from_slice(sql.as_bytes());
    payload
}

fn parse_text_row(p: &[u8]) -> Result<Vec<Option<Vec<u8>>>, ProtocolError> {
    let mut r = Reader::new(p);
    let mut row = Vec::new();
    while !r.is_empty() {
        if p[r.position()] == 0xFB {
            r.skip(1, "null")?;
            row.push(None);
        } else {
            row.push(Some(r.lenenc_bytes("column value")?.to_vec()));
        }
    }
    Ok(row)
}

fn auth_response(
    plugin: Plugin,
    password: &[u8],
    nonce: &[u8],
    tls: bool,
) -> Result<Vec<u8>, ConnectionError> {
    Ok(match plugin {
        Plugin::Native => native::scramble(password, nonce),
        Plugin::CachingSha2 => caching_sha2::scramble(password, nonce),
        Plugin::Clear if tls => {
            let mut clear = password.to_vec();
            clear.push(0);
            clear
        }
        Plugin::Clear => {
            return Err(ConnectionError::Unsupported(
                "cleartext passwords without TLS",
            ))
        }
    })
}

async fn stream_write(stream: &mut MaybeTls, bytes: &[u8]) -> Result<(), ConnectionError> {
    stream
        .send(bytes)
        .await
        .map_err(|e| ConnectionError::Protocol(e.into()))
}

/// Asks for TLS (the SSLRequest: the handshake response's first fields, numbered `seq`)
/// and upgrades the connection.
async fn start_tls(
    mut stream: MaybeTls,
    tls: &BackendTls,
    capabilities: u32,
    seq: u8,
) -> Result<MaybeTls, ConnectionError> {
    let prefix = HandshakeResponse {
        capabilities,
        max_packet: MAX_PAYLOAD as u32,
        charset: BACKEND_COLLATION,
        ..Default::default()
    }
    .encode_prefix();
    stream_write(&mut stream, &packet::packet(seq, &prefix)).await?;
    upgrade(stream, tls).await
}

/// The server's greeting, or its refusal (an ERR packet: too many connections, a host
/// blocked); a server without session tracking and DEPRECATE_EOF is not supported.
async fn read_greeting(
    stream: &mut MaybeTls,
    reader: &mut PacketReader,
) -> Result<Greeting, ConnectionError> {
    let greeting = reader.read(stream, 64 * 1024).await?;
    if greeting.payload().first() == Some(&ERR_HEADER) {
        return Err(ConnectionError::from_err_packet(greeting.payload()));
    }
    let greeting = Greeting::parse(greeting.payload())?;
    let needed = caps::SESSION_TRACK | caps::DEPRECATE_EOF;
    if greeting.capabilities & needed != needed {
        return Err(ConnectionError::Unsupported(
            "session tracking and CLIENT_DEPRECATE_EOF (MySQL 5.7+ / MariaDB 10.2+)",
        ));
    }
    Ok(greeting)
}

async fn upgrade(stream: MaybeTls, tls: &BackendTls) -> Result<MaybeTls, ConnectionError> {
    let MaybeTls::Plain(tcp) = stream else {
        return Ok(stream);
    };
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let s = connector
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(ConnectionError::Tls)?;
    Ok(MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Client(s))))
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
}
