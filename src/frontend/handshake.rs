//! Connection phase with a client: greeting, optional TLS upgrade, HandshakeResponse, auth.

use std::net::SocketAddr;
use std::sync::Arc;

use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::admission::Admission;
use super::authenticate::{authenticate, Exchange};
use super::schema_check::schema_refusal;
use super::{Context, Endpoint, FrontendError};
use crate::auth::Plugin;
use crate::backend::PartitionKey;
use crate::config::AuthPluginName;
use crate::net::{MaybeTls, PacketStream};
use crate::protocol::errors::ErrorPacket;
use crate::protocol::flavor::Flavor;
use crate::protocol::handshake::{Greeting, HandshakeResponse};
use crate::protocol::packet::{self, read_exact_packet};
use crate::protocol::response::ok_packet;
use crate::protocol::{caps, status, ProtocolError};

/// Capabilities Sluice offers clients. COMPRESS, query attributes, optional result-set
/// metadata and multi-factor authentication are not offered, so no client negotiates
/// them; SSL is added when TLS is configured, LOCAL_FILES with `server.local_infile`.
pub const SERVER_CAPS: u32 = caps::LONG_PASSWORD
    | caps::FOUND_ROWS
    | caps::IGNORE_SPACE
    | caps::INTERACTIVE
    | caps::LONG_FLAG
    | caps::CONNECT_WITH_DB
    | caps::PROTOCOL_41
    | caps::TRANSACTIONS
    | caps::SECURE_CONNECTION
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS
    | caps::PS_MULTI_RESULTS
    | caps::PLUGIN_AUTH
    | caps::CONNECT_ATTRS
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::SESSION_TRACK
    | caps::DEPRECATE_EOF;

/// Handshake packets are small; anything bigger is refused before it is read.
const MAX_HANDSHAKE_PACKET: usize = 16 * 1024;

/// Greeting version when neither the config nor a backend connection provided one.
const FALLBACK_VERSION: &[u8] = b"8.0.36-sluice";

/// An authenticated client, ready for the command phase.
pub struct Client {
    /// The client's connection (plain or TLS) and its packet reader.
    pub io: PacketStream,
    /// The user it logged in as (the pool partition's user).
    pub user: Arc<str>,
    /// Capabilities both sides agreed on.
    pub capabilities: u32,
    pub charset: u8,
    /// The default schema the handshake (or COM_CHANGE_USER) asked for; the session
    /// takes it into its state.
    pub schema: Option<Vec<u8>>,
    pub connection_id: u32,
    pub peer: SocketAddr,
    /// The greeting's scramble, reused by COM_CHANGE_USER.
    pub scramble: Vec<u8>,
    /// The listener it came in by.
    pub endpoint: Endpoint,
}

impl Client {
    /// The pool partition whose backends this client may use: its user and the
    /// capability flags that change what the server sends (`caps::SEMANTIC`).
    pub fn partition_key(&self) -> PartitionKey {
        PartitionKey {
            user: self.user.clone(),
            flags: self.capabilities & caps::SEMANTIC,
        }
    }
}

/// A fresh random scramble: 20 printable bytes, never NUL (it is NUL-terminated on the wire).
pub fn new_scramble() -> Vec<u8> {
    let mut rng = rand::thread_rng();
    (0..20).map(|_| rng.gen_range(0x21u8..0x7F)).collect()
}

/// The connection phase of a new client: greeting, TLS if asked for, the handshake
/// response and authentication, then a client slot from `admission` and the OK (or,
/// with no slot free, 1040 where the OK would be). The client, logged in, with its slot.
pub async fn handshake(
    ctx: &Context,
    tcp: TcpStream,
    peer: SocketAddr,
    connection_id: u32,
    admission: &Admission,
    endpoint: Endpoint,
) -> Result<(Client, OwnedSemaphorePermit), FrontendError> {
    let mut stream = MaybeTls::Plain(tcp);
    let scramble = new_scramble();
    let (greeting, plugin) = greeting(ctx, &scramble, connection_id);
    stream.send(&packet::packet(0, &greeting.encode())).await?;
    let (mut io, seq, payload) = secure(ctx, stream).await?;
    let response = match HandshakeResponse::parse(&payload) {
        Ok(r) => r,
        Err(e) => {
            let bad = ErrorPacket::bad_handshake().encode(seq.wrapping_add(1));
            io.send(&bad).await?;
            return Err(e.into());
        }
    };
    let capabilities = response.capabilities & greeting.capabilities;
    let user = ctx.credentials.user(&response.user);
    let exchange = Exchange {
        user: &response.user,
        peer,
        scramble: &scramble,
        client_plugin: response.auth_plugin.as_deref(),
        auth_response: &response.auth_response,
        seq: seq.wrapping_add(1),
        default_plugin: plugin,
    };
    let ok_seq = authenticate(ctx, &mut io, user, exchange).await?;
    let user = user.ok_or(FrontendError::AccessDenied)?.name.clone();
    if let Some(schema) = &response.database {
        let key = PartitionKey {
            user: user.clone(),
            flags: capabilities & caps::SEMANTIC,
        };
        if let Some(e) = schema_refusal(ctx, &key, schema).await {
            io.send(&e.encode(ok_seq)).await?;
            return Err(FrontendError::SchemaRefused);
        }
    }
    let Some(slot) = admission.admit_client() else {
        io.send(&ErrorPacket::too_many_connections().encode(ok_seq))
            .await?;
        return Err(FrontendError::TooManyConnections);
    };
    io.send(&ok_packet(ok_seq, status::AUTOCOMMIT)).await?;
    let client = Client {
        io,
        user,
        capabilities,
        charset: response.charset,
        schema: response.database,
        connection_id,
        peer,
        scramble,
        endpoint,
    };
    Ok((client, slot))
}

/// The greeting: the backend's version (or the configured one), what Sluice offers,
/// and the plugin it asks the client to answer for.
fn greeting(ctx: &Context, scramble: &[u8], connection_id: u32) -> (Greeting, Plugin) {
    let server = &ctx.config.server;
    let mut server_caps = SERVER_CAPS;
    if ctx.tls.is_some() {
        server_caps |= caps::SSL;
    }
    if server.local_infile {
        server_caps |= caps::LOCAL_FILES;
    }
    let backend_version = ctx.pool.connector().server_version();
    let plugin = greeting_plugin(ctx, backend_version.as_deref());
    let version = if server.server_version.is_empty() {
        backend_version.unwrap_or_else(|| FALLBACK_VERSION.to_vec())
    } else {
        server.server_version.as_bytes().to_vec()
    };
    let greeting = Greeting {
        server_version: version,
        connection_id,
        scramble: scramble.to_vec(),
        capabilities: server_caps,
        charset: 45,
        status: status::AUTOCOMMIT,
        auth_plugin: plugin.name().to_vec(),
    };
    (greeting, plugin)
}

/// Reads the client's answer to the greeting, upgrading to TLS first when it asks (or
/// refusing it when TLS is required and it does not): the stream from now on, and the
/// handshake response with its sequence id.
async fn secure(
    ctx: &Context,
    mut stream: MaybeTls,
) -> Result<(PacketStream, u8, Vec<u8>), FrontendError> {
    // Read exactly one packet: after an SSLRequest the ClientHello follows at once and
    // must stay in the socket for the TLS layer.
    let (seq, payload) = read_exact_packet(&mut stream, MAX_HANDSHAKE_PACKET).await?;
    // The answer to the greeting (packet 0) is packet 1, as the server insists.
    if seq != 1 {
        return out_of_order(&mut stream, 1).await;
    }
    if !HandshakeResponse::is_ssl_request(&payload) {
        let required = ctx.config.server.tls.as_ref().is_some_and(|t| t.require);
        if ctx.tls.is_some() && required {
            let refusal = ErrorPacket::insecure_transport().encode(seq.wrapping_add(1));
            stream.send(&refusal).await?;
            return Err(FrontendError::TlsRequired);
        }
        return Ok((PacketStream::new(stream), seq, payload));
    }
    let Some(acceptor) = &ctx.tls else {
        // The greeting did not offer it.
        let bad = ErrorPacket::bad_handshake().encode(seq.wrapping_add(1));
        stream.send(&bad).await?;
        return Err(FrontendError::TlsUnavailable);
    };
    let MaybeTls::Plain(tcp) = stream else {
        return Err(FrontendError::TlsUnavailable);
    };
    let tls = acceptor.accept(tcp).await.map_err(FrontendError::Tls)?;
    let tls = tokio_rustls::TlsStream::Server(tls);
    let mut io = PacketStream::new(MaybeTls::Tls(Box::new(tls)));
    let frame = io.read(MAX_HANDSHAKE_PACKET).await?;
    if frame.seq() != 2 {
        return out_of_order(io.parts().0, 2).await;
    }
    Ok((io, frame.seq(), frame.payload().to_vec()))
}

/// A handshake packet out of sequence: 1156, numbered as the one expected (as the
/// server numbers it), and the connection ends.
async fn out_of_order<T>(stream: &mut MaybeTls, expected: u8) -> Result<T, FrontendError> {
    let e = ErrorPacket::packets_out_of_order().encode(expected);
    stream.send(&e).await?;
    Err(ProtocolError::Malformed("handshake packet out of sequence").into())
}

/// The plugin the greeting (and COM_CHANGE_USER) asks for. `auto` follows the backend:
/// MySQL 8.4 and 9 clients may have no mysql_native_password at all, and MariaDB's
/// clients expect it. Before any backend connection, MySQL's is assumed.
pub fn greeting_plugin(ctx: &Context, backend_version: Option<&[u8]>) -> Plugin {
    match ctx.config.server.auth_plugin {
        AuthPluginName::MysqlNativePassword => Plugin::Native,
        AuthPluginName::CachingSha2Password => Plugin::CachingSha2,
        AuthPluginName::Auto => match backend_version.map(Flavor::from_version) {
            Some(Flavor::MariaDb) => Plugin::Native,
            _ => Plugin::CachingSha2,
        },
    }
}
