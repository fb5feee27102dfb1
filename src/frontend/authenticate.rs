//! Checks a client's password answer (mysql_native_password or caching_sha2_password),
//! switching plugin when the client answered for another one, and sends OK or 1045.

use std::net::SocketAddr;

use super::handshake::write;
use super::{Context, FrontendError};
use crate::auth::{caching_sha2, constant_time_eq, native, Plugin};
use crate::credentials::Login;
use crate::net::MaybeTls;
use crate::protocol::handshake::{auth_switch_request, AUTH_MORE_DATA_HEADER};
use crate::protocol::packet::{self, PacketReader};
use crate::protocol::response::{err_packet, ok_packet};
use crate::protocol::status;

const MAX_AUTH_PACKET: usize = 16 * 1024;

/// The client's first answer and what is needed to check it.
pub struct Exchange<'a> {
    pub user: &'a [u8],
    pub peer: SocketAddr,
    pub scramble: &'a [u8],
    pub client_plugin: Option<&'a [u8]>,
    pub auth_response: &'a [u8],
    /// Sequence id of Sluice's next packet.
    pub seq: u8,
    pub default_plugin: Plugin,
}

/// Runs the exchange to its end: sends OK on success, or ERR 1045 and returns
/// `AccessDenied`. `login` is None for an unknown user, who is refused the same way.
pub async fn authenticate(
    ctx: &Context,
    stream: &mut MaybeTls,
    reader: &mut PacketReader,
    login: Option<&Login>,
    ex: Exchange<'_>,
) -> Result<(), FrontendError> {
    let mut seq = ex.seq;
    let mut response = ex.auth_response.to_vec();
    let mut plugin = ex
        .client_plugin
        .map_or(Some(Plugin::Native), Plugin::from_name)
        .filter(|p| *p != Plugin::Clear);
    if plugin.is_none() {
        // The client answered for a plugin Sluice does not check: ask for ours.
        let mut data = ex.scramble.to_vec();
        data.push(0);
        let switch = auth_switch_request(ex.default_plugin.name(), &data);
        write(stream, &packet::packet(seq, &switch)).await?;
        let reply = reader.read(stream, MAX_AUTH_PACKET).await?;
        seq = reply.seq().wrapping_add(1);
        response = reply.payload().to_vec();
        plugin = Some(ex.default_plugin);
    }
    let accepted = match (login, plugin) {
        (Some(login), Some(Plugin::Native)) => {
            native::verify(&login.password, ex.scramble, &response)
        }
        (Some(login), Some(Plugin::CachingSha2)) => {
            let cache_key = [login.user.as_bytes(), b"\0", &login.password].concat();
            let cached = ctx
                .sha2_verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&cache_key);
            if stream.is_tls() && !cached && !login.password.is_empty() {
                // Full authentication: the password in clear, protected by TLS.
                write(
                    stream,
                    &packet::packet(
                        seq,
                        &[AUTH_MORE_DATA_HEADER, caching_sha2::PERFORM_FULL_AUTH],
                    ),
                )
                .await?;
                let reply = reader.read(stream, MAX_AUTH_PACKET).await?;
                seq = reply.seq().wrapping_add(1);
                let clear = reply.payload();
                let clear = clear.strip_suffix(&[0]).unwrap_or(clear);
                let ok = constant_time_eq(clear, &login.password);
                if ok {
                    ctx.sha2_verified
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(cache_key);
                }
                ok
            } else if caching_sha2::verify(&login.password, ex.scramble, &response) {
                write(
                    stream,
                    &packet::packet(
                        seq,
                        &[AUTH_MORE_DATA_HEADER, caching_sha2::FAST_AUTH_SUCCESS],
                    ),
                )
                .await?;
                seq = seq.wrapping_add(1);
                true
            } else {
                false
            }
        }
        _ => false,
    };
    if accepted {
        write(stream, &ok_packet(seq, status::AUTOCOMMIT)).await?;
        return Ok(());
    }
    let msg = format!(
        "Access denied for user '{}'@'{}' (using password: {})",
        String::from_utf8_lossy(ex.user),
        ex.peer.ip(),
        if response.is_empty() { "NO" } else { "YES" }
    );
    write(stream, &err_packet(seq, 1045, "28000", &msg)).await?;
    Err(FrontendError::AccessDenied)
}
