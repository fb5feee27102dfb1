//! Checks a client's login: a password answer (mysql_native_password or
//! caching_sha2_password, switching plugin when the client answered for another), or,
//! for IAM users, an auth token sent with mysql_clear_password over TLS. Answers with
//! an error (1045, 3159, 2003 when the user's secret cannot be read, 1129 / 3955 while
//! the login throttle blocks the address or the user); on success the caller sends the
//! OK, after its own checks.

use std::net::SocketAddr;
use std::time::Instant;

use secrecy::ExposeSecret;

use super::{Context, FrontendError};
use crate::auth::throttle::Blocked;
use crate::auth::{caching_sha2, constant_time_eq, native, Plugin, MYSQL_CLEAR_PASSWORD};
use crate::credentials::{Password, Passwords, User};
use crate::net::PacketStream;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::handshake::{auth_switch_request, AUTH_MORE_DATA_HEADER};
use crate::protocol::packet;
use crate::protocol::ProtocolError;

/// Largest authentication answer read; an IAM token with a session token fits easily.
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

/// What the client proved it knows.
enum Proof {
    Native(Vec<u8>),
    Sha2Scramble(Vec<u8>),
    /// The password itself (caching_sha2_password full authentication, over TLS).
    Clear(Vec<u8>),
}

impl Proof {
    fn proves(&self, scramble: &[u8], password: &[u8]) -> bool {
        match self {
            Self::Native(r) => native::verify(password, scramble, r),
            Self::Sha2Scramble(r) => caching_sha2::verify(password, scramble, r),
            Self::Clear(clear) => constant_time_eq(clear, password),
        }
    }
}

/// Runs the exchange to its end: on success, the sequence id of the OK the caller
/// sends; otherwise the client has its error and this says why. `user` is None for an
/// unknown user, who is refused like a wrong password.
pub async fn authenticate(
    ctx: &Context,
    io: &mut PacketStream,
    user: Option<&User>,
    ex: Exchange<'_>,
) -> Result<u8, FrontendError> {
    if let Some(blocked) = ctx.throttle.check(ex.peer.ip(), ex.user, Instant::now()) {
        return refuse_blocked(io, &ex, blocked).await;
    }
    let seq = check(ctx, io, user, &ex).await?;
    ctx.throttle.succeeded(ex.peer.ip(), Instant::now());
    Ok(seq)
}

async fn check(
    ctx: &Context,
    io: &mut PacketStream,
    user: Option<&User>,
    ex: &Exchange<'_>,
) -> Result<u8, FrontendError> {
    if let Some(user) = user.filter(|u| u.iam) {
        return authenticate_iam(ctx, io, user, ex).await;
    }
    let passwords = match user {
        Some(u) => client_passwords(ctx, io, u, ex.seq).await?,
        None => Passwords::new(),
    };
    let (plugin, mut answer) = answer_for_checked_plugin(io, ex).await?;
    if !answer_fits(plugin, &answer.response) {
        // Not a wrong password but no answer at all: the server's 1043. Counted as a
        // failure all the same, so that it is no way round the throttle.
        ctx.throttle.failed(ex.peer.ip(), ex.user, Instant::now());
        io.send(&ErrorPacket::bad_handshake().encode(answer.seq))
            .await?;
        return Err(ProtocolError::Malformed("auth response of the wrong length").into());
    }
    let cache_key = |password: &[u8]| [ex.user, b"\0", password].concat();
    let proof = match plugin {
        Plugin::CachingSha2 => {
            let cached = {
                let verified = ctx.sha2_verified.lock();
                passwords
                    .iter()
                    .any(|p| verified.contains(&cache_key(p.expose_secret())))
            };
            sha2_proof(io, &passwords, cached, &mut answer).await?
        }
        _ => Proof::Native(answer.response.clone()),
    };
    let Some(password) = accepted(ctx, user, &passwords, &proof, ex.scramble).await else {
        return deny(ctx, io, answer.seq, ex, !answer.response.is_empty()).await;
    };
    let mut seq = answer.seq;
    match proof {
        Proof::Sha2Scramble(_) => {
            let fast = [AUTH_MORE_DATA_HEADER, caching_sha2::FAST_AUTH_SUCCESS];
            io.send(&packet::packet(seq, &fast)).await?;
            seq = seq.wrapping_add(1);
        }
        Proof::Clear(_) => {
            ctx.sha2_verified
                .lock()
                .insert(cache_key(password.expose_secret()));
        }
        Proof::Native(_) => {}
    }
    Ok(seq)
}

/// Whether a scramble answer can be one, as the servers judge it: a
/// mysql_native_password answer is nothing (an empty password) or a SHA-1 digest, and
/// anything else is a bad handshake (1043, as MariaDB answers it); a
/// caching_sha2_password answer of another length is just wrong (1045, as MySQL
/// answers it).
fn answer_fits(plugin: Plugin, response: &[u8]) -> bool {
    match plugin {
        Plugin::Native => matches!(response.len(), 0 | 20),
        Plugin::CachingSha2 | Plugin::Clear => true,
    }
}

/// The client's latest answer in the exchange, and the sequence id of the next packet.
struct Answer {
    response: Vec<u8>,
    seq: u8,
}

/// The passwords a known user may log in with; an error to the client when the secret
/// holding them cannot be read.
async fn client_passwords(
    ctx: &Context,
    io: &mut PacketStream,
    user: &User,
    seq: u8,
) -> Result<Passwords, FrontendError> {
    match ctx.credentials.client_passwords(user).await {
        Ok(passwords) => Ok(passwords),
        Err(e) => {
            tracing::warn!(user = %user.name, error = %e, "cannot check a client's password");
            // The details stay in the log: they name Sluice's secrets and role.
            let e = ErrorPacket::cannot_connect("credentials unavailable; try again");
            io.send(&e.encode(seq)).await?;
            Err(FrontendError::CredentialsUnavailable)
        }
    }
}

/// The plugin the client's answer is for, switching it to Sluice's default when it
/// answered for one Sluice does not check (or for clear text, never taken unasked).
async fn answer_for_checked_plugin(
    io: &mut PacketStream,
    ex: &Exchange<'_>,
) -> Result<(Plugin, Answer), FrontendError> {
    let plugin = ex
        .client_plugin
        .map_or(Some(Plugin::Native), Plugin::from_name)
        .filter(|p| *p != Plugin::Clear);
    if let Some(plugin) = plugin {
        let answer = Answer {
            response: ex.auth_response.to_vec(),
            seq: ex.seq,
        };
        return Ok((plugin, answer));
    }
    let mut data = ex.scramble.to_vec();
    data.push(0);
    let switch = auth_switch_request(ex.default_plugin.name(), &data);
    io.send(&packet::packet(ex.seq, &switch)).await?;
    let reply = io.read(MAX_AUTH_PACKET).await?;
    let answer = Answer {
        response: reply.payload().to_vec(),
        seq: reply.seq().wrapping_add(1),
    };
    Ok((ex.default_plugin, answer))
}

/// caching_sha2_password: the scramble answers, unless the user's password is not in
/// Sluice's cache and the connection is TLS: then full authentication, with the
/// password in clear (protected by TLS), as MySQL asks for it.
async fn sha2_proof(
    io: &mut PacketStream,
    passwords: &Passwords,
    cached: bool,
    answer: &mut Answer,
) -> Result<Proof, FrontendError> {
    let full = io.is_tls()
        && !cached
        && !passwords.is_empty()
        && passwords.iter().all(|p| !p.expose_secret().is_empty());
    if !full {
        return Ok(Proof::Sha2Scramble(answer.response.clone()));
    }
    let more = [AUTH_MORE_DATA_HEADER, caching_sha2::PERFORM_FULL_AUTH];
    io.send(&packet::packet(answer.seq, &more)).await?;
    let reply = io.read(MAX_AUTH_PACKET).await?;
    answer.seq = reply.seq().wrapping_add(1);
    let clear = reply.payload();
    Ok(Proof::Clear(
        clear.strip_suffix(&[0]).unwrap_or(clear).to_vec(),
    ))
}

/// The password the proof proves, if any: one of those Sluice has, else one rotated
/// since it read the secret (the client may already use it).
async fn accepted(
    ctx: &Context,
    user: Option<&User>,
    passwords: &Passwords,
    proof: &Proof,
    scramble: &[u8],
) -> Option<Password> {
    if let Some(p) = passwords
        .iter()
        .find(|p| proof.proves(scramble, p.expose_secret()))
    {
        return Some(p.clone());
    }
    let newer = ctx.credentials.client_refused(user?).await?;
    newer
        .into_iter()
        .find(|p| proof.proves(scramble, p.expose_secret()))
}

/// An IAM user: the token comes as a mysql_clear_password answer, and only over TLS.
async fn authenticate_iam(
    ctx: &Context,
    io: &mut PacketStream,
    user: &User,
    ex: &Exchange<'_>,
) -> Result<u8, FrontendError> {
    if !io.is_tls() {
        if ex.client_plugin == Some(MYSQL_CLEAR_PASSWORD) && !ex.auth_response.is_empty() {
            // The client already sent its token in the clear: whoever saw it must not be
            // able to use it.
            tracing::warn!(user = %user.name, peer = %ex.peer, "IAM token sent without TLS; refused now and for the rest of its life");
            if let Some(iam) = &ctx.iam {
                iam.burn(ex.auth_response, &user.name).await;
            }
        }
        io.send(&ErrorPacket::insecure_transport().encode(ex.seq))
            .await?;
        return Err(FrontendError::TlsRequired);
    }
    let (token, seq) = if ex.client_plugin == Some(MYSQL_CLEAR_PASSWORD) {
        (ex.auth_response.to_vec(), ex.seq)
    } else {
        let switch = auth_switch_request(MYSQL_CLEAR_PASSWORD, &[]);
        io.send(&packet::packet(ex.seq, &switch)).await?;
        let reply = io.read(MAX_AUTH_PACKET).await?;
        (reply.payload().to_vec(), reply.seq().wrapping_add(1))
    };
    let verdict = match &ctx.iam {
        Some(iam) => iam.verify(&token, &user.name).await,
        None => Err(crate::auth::iam::IamError::UnknownKey),
    };
    match verdict {
        Ok(()) => Ok(seq),
        Err(
            crate::auth::iam::IamError::StsUnavailable | crate::auth::iam::IamError::RdsUnavailable,
        ) => {
            // Not the client's fault: say so, so that it retries.
            tracing::warn!(user = %user.name, "IAM token not checked: its verifier is unreachable");
            let e = ErrorPacket::cannot_connect("IAM verification unavailable; try again");
            io.send(&e.encode(seq)).await?;
            Err(FrontendError::CredentialsUnavailable)
        }
        Err(e) => {
            // The reason, never the token.
            tracing::debug!(user = %user.name, peer = %ex.peer, reason = e.reason(), "IAM token refused");
            deny(ctx, io, seq, ex, !token.is_empty()).await
        }
    }
}

/// A failed login: counted by the throttle, answered (late, once the address or the
/// user has failed often), logged with the address and the user name.
async fn deny<T>(
    ctx: &Context,
    io: &mut PacketStream,
    seq: u8,
    ex: &Exchange<'_>,
    with_password: bool,
) -> Result<T, FrontendError> {
    let user = String::from_utf8_lossy(ex.user);
    let failure = ctx.throttle.failed(ex.peer.ip(), ex.user, Instant::now());
    tracing::warn!(
        peer = %ex.peer,
        user = %user,
        address_failures = failure.address_failures,
        user_failures = failure.user_failures,
        delay_ms = failure.delay.as_millis() as u64,
        "failed login"
    );
    if let Some(blocked) = failure.blocks {
        tracing::warn!(peer = %ex.peer, user = %user, ?blocked, "too many failed logins; refusing for a while");
    }
    crate::clock::sleep(failure.delay).await;
    let e = ErrorPacket::access_denied(&user, &ex.peer.ip().to_string(), with_password);
    io.send(&e.encode(seq)).await?;
    Err(FrontendError::AccessDenied)
}

/// A login the throttle refuses before checking it.
async fn refuse_blocked<T>(
    io: &mut PacketStream,
    ex: &Exchange<'_>,
    blocked: Blocked,
) -> Result<T, FrontendError> {
    let host = ex.peer.ip().to_string();
    // Whole seconds, rounded up: "0 more seconds" would read as unblocked.
    let secs = |d: std::time::Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let e = match blocked {
        Blocked::Address {
            failures,
            remaining,
        } => ErrorPacket::host_blocked(&host, failures, secs(remaining)),
        Blocked::User {
            failures,
            remaining,
        } => {
            let user = String::from_utf8_lossy(ex.user);
            ErrorPacket::user_blocked(&user, &host, failures, secs(remaining))
        }
    };
    tracing::debug!(peer = %ex.peer, user = %String::from_utf8_lossy(ex.user), ?blocked, "login refused by the throttle");
    io.send(&e.encode(ex.seq)).await?;
    Err(FrontendError::Blocked(blocked))
}
