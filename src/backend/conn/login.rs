//! Opening a backend connection: TCP, the greeting, TLS when configured, the login
//! (following auth switches and caching_sha2 full authentication), then the session
//! set-up.

use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use tokio::net::TcpStream;

use super::{BackendConn, Schema, Target, BASE_CAPS};
use crate::auth::{caching_sha2, native, Plugin};
use crate::backend::partition::PartitionKey;
use crate::backend::tls::BackendTls;
use crate::backend::ConnectionError;
use crate::credentials::Login;
use crate::multiplex::handshake_state::BACKEND_COLLATION;
use crate::multiplex::statements::BackendStatements;
use crate::multiplex::variables::Variables;
use crate::net::{MaybeTls, PacketStream};
use crate::protocol::flavor::Flavor;
use crate::protocol::handshake::{
    parse_auth_switch, Greeting, HandshakeResponse, AUTH_MORE_DATA_HEADER, AUTH_SWITCH_HEADER,
};
use crate::protocol::packet::{self, PacketReader, MAX_PAYLOAD};
use crate::protocol::response::{ERR_HEADER, OK_HEADER};
use crate::protocol::{caps, ProtocolError};

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
        crate::clock::timeout(target.connect_timeout, async {
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
        let conn = crate::clock::timeout(
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
            generation: 0,
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

pub(super) async fn stream_write(
    stream: &mut MaybeTls,
    bytes: &[u8],
) -> Result<(), ConnectionError> {
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
