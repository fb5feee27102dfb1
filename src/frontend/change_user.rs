//! COM_CHANGE_USER: re-authenticates the client as another (or the same) user and starts
//! a fresh session, as a direct connection would.

use super::authenticate::{authenticate, Exchange};
use super::handshake::greeting_plugin;
use super::handshake::Client;
use super::schema_check::schema_refusal;
use super::{Context, FrontendError};
use crate::backend::PartitionKey;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::Frame;
use crate::protocol::response::ok_packet;
use crate::protocol::wire::Reader;
use crate::protocol::{caps, status, ProtocolError};

struct ChangeUser<'a> {
    user: &'a [u8],
    auth_response: &'a [u8],
    schema: Option<Vec<u8>>,
    charset: Option<u8>,
    plugin: Option<&'a [u8]>,
}

fn parse(payload: &[u8], capabilities: u32) -> Result<ChangeUser<'_>, ProtocolError> {
    let mut r = Reader::new(payload);
    r.skip(1, "command")?;
    let user = r.null_terminated("user")?;
    let auth_response = if capabilities & caps::SECURE_CONNECTION != 0 {
        let n = r.u8("auth length")?;
        r.bytes(usize::from(n), "auth response")?
    } else {
        r.null_terminated("auth response")?
    };
    let schema = r.null_terminated("schema")?;
    let schema = Some(schema.to_vec()).filter(|s| !s.is_empty());
    let charset = if r.remaining() >= 2 {
        Some(r.u16("charset")? as u8)
    } else {
        None
    };
    let plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
        Some(r.null_terminated("plugin")?)
    } else {
        None
    };
    Ok(ChangeUser {
        user,
        auth_response,
        schema,
        charset,
        plugin,
    })
}

/// Handles COM_CHANGE_USER after the session gave its backend back: on success the
/// client is the new user, with the schema and character set it asked for. A failed
/// change ends the session, as MySQL does.
pub async fn change_user(
    ctx: &Context,
    client: &mut Client,
    frame: Frame,
) -> Result<(), FrontendError> {
    let seq = frame.seq().wrapping_add(1);
    let request = match parse(frame.payload(), client.capabilities) {
        Ok(r) => r,
        Err(e) => {
            let limit = ctx.config.server.client_write_timeout.get();
            let bad = ErrorPacket::bad_handshake().encode(seq);
            client.io.send_within(&bad, limit).await?;
            return Err(e.into());
        }
    };
    let user = ctx.credentials.user(request.user);
    let default_plugin = greeting_plugin(ctx, ctx.pool.connector().server_version().as_deref());
    let exchange = Exchange {
        user: request.user,
        peer: client.peer,
        scramble: &client.scramble,
        client_plugin: request.plugin,
        auth_response: request.auth_response,
        seq,
        default_plugin,
    };
    let ok_seq = authenticate(ctx, &mut client.io, user, exchange).await?;
    let limit = ctx.config.server.client_write_timeout.get();
    let name = user.ok_or(FrontendError::AccessDenied)?.name.clone();
    if let Some(schema) = request.schema.as_deref() {
        let key = PartitionKey {
            user: name.clone(),
            flags: client.capabilities & caps::SEMANTIC,
        };
        if let Some(e) = schema_refusal(ctx, &key, schema).await {
            client.io.send_within(&e.encode(ok_seq), limit).await?;
            return Err(FrontendError::SchemaRefused);
        }
    }
    client
        .io
        .send_within(&ok_packet(ok_seq, status::AUTOCOMMIT), limit)
        .await?;
    client.user = name;
    client.schema = request.schema;
    if let Some(charset) = request.charset {
        client.charset = charset;
    }
    Ok(())
}
