//! A stand-in for an IAM-enabled RDS database, written here because no emulator takes
//! IAM tokens: it speaks the MySQL handshake over TLS, asks the user `lambda` for
//! `mysql_clear_password` as RDS does, checks the token (SigV4 with the one key it knows,
//! signed for its own address) and counts the logins it sees. Other users (Sluice's
//! pooled logins) are let in uncounted; after a login every command gets an OK, until
//! COM_QUIT.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice::auth::iam::local::{verify, AccessKey, Expectations};
use sluice::auth::iam::Token;
use sluice::config::ServerTlsConfig;
use sluice::net::MaybeTls;
use sluice::protocol::caps;
use sluice::protocol::errors::ErrorPacket;
use sluice::protocol::handshake::{auth_switch_request, Greeting, HandshakeResponse};
use sluice::protocol::packet::{packet, read_exact_packet, PacketReader};
use sluice::protocol::response::ok_packet;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::certs::Certs;

pub const IAM_USER: &str = "lambda";

#[derive(Default)]
pub struct Logins {
    pub accepted: AtomicUsize,
    pub refused: AtomicUsize,
}

pub struct FakeRds {
    pub port: u16,
    pub logins: Arc<Logins>,
}

impl FakeRds {
    pub async fn start(certs: &Certs, key: (&'static str, &'static str)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls = sluice::tls::server_config(&ServerTlsConfig {
            cert: certs.cert.clone(),
            key: certs.key.clone(),
            require: true,
        })
        .unwrap();
        let acceptor = TlsAcceptor::from(tls);
        let logins = Arc::new(Logins::default());
        let counts = logins.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, counts) = (acceptor.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = serve(tcp, acceptor, counts, port, key).await;
                });
            }
        });
        Self { port, logins }
    }

    pub fn accepted(&self) -> usize {
        self.logins.accepted.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.logins.refused.load(Ordering::SeqCst)
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    counts: Arc<Logins>,
    port: u16,
    key: (&str, &str),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = MaybeTls::Plain(tcp);
    let mut reader = PacketReader::new();
    let greeting = Greeting {
        server_version: b"8.0.36-fake-rds".to_vec(),
        connection_id: 7,
        scramble: vec![b'x'; 20],
        capabilities: caps::LONG_PASSWORD
            | caps::CONNECT_WITH_DB
            | caps::PROTOCOL_41
            | caps::SSL
            | caps::TRANSACTIONS
            | caps::SECURE_CONNECTION
            | caps::PLUGIN_AUTH
            | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
            | caps::SESSION_TRACK
            | caps::DEPRECATE_EOF,
        charset: 45,
        status: 2,
        auth_plugin: b"mysql_native_password".to_vec(),
    };
    stream.send(&packet(0, &greeting.encode())).await?;
    // Exactly one packet: the TLS ClientHello follows it and must stay in the socket.
    let (_, first) = read_exact_packet(&mut stream, 1 << 16).await?;
    if !HandshakeResponse::is_ssl_request(&first) {
        return Ok(()); // RDS takes IAM logins over TLS only.
    }
    let MaybeTls::Plain(tcp) = stream else {
        return Ok(());
    };
    let tls = acceptor.accept(tcp).await?;
    let mut stream = MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Server(tls)));
    let response = reader.read(&mut stream, 1 << 16).await?;
    let login = HandshakeResponse::parse(response.payload())?;
    let seq = response.seq().wrapping_add(1);
    if login.user != IAM_USER.as_bytes() {
        // Sluice's own pooled logins (the secret's user): let them in, uncounted, so that
        // whatever a client runs after logging in gets its OK.
        stream.send(&ok_packet(seq, 2)).await?;
        return commands(&mut stream, &mut reader).await;
    }
    stream
        .send(&packet(
            seq,
            &auth_switch_request(b"mysql_clear_password", &[]),
        ))
        .await?;
    let answer = reader.read(&mut stream, 1 << 16).await?;
    let seq = answer.seq().wrapping_add(1);
    let good = Token::parse(answer.payload()).is_ok_and(|token| {
        let mut keys = std::collections::HashMap::new();
        let access = AccessKey {
            secret_access_key: key.1.into(),
            users: vec!["*".into()],
        };
        keys.insert(key.0.to_string(), access);
        let expect = Expectations {
            hostnames: vec![format!("127.0.0.1:{port}")],
            regions: vec!["us-east-1".into()],
            clock_skew: Duration::from_secs(60),
        };
        verify(
            &token,
            IAM_USER,
            &keys,
            &expect,
            std::time::SystemTime::now(),
        )
        .is_ok()
    });
    if !good {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        let denied = ErrorPacket::access_denied("lambda", "127.0.0.1", true);
        stream.send(&denied.encode(seq)).await?;
        return Ok(());
    }
    counts.accepted.fetch_add(1, Ordering::SeqCst);
    stream.send(&ok_packet(seq, 2)).await?;
    commands(&mut stream, &mut reader).await
}

/// Answers every command with an OK until COM_QUIT.
async fn commands(
    stream: &mut MaybeTls,
    reader: &mut PacketReader,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let command = reader.read(stream, 1 << 24).await?;
        if command.payload().first() == Some(&0x01) {
            return Ok(());
        }
        stream
            .send(&ok_packet(command.seq().wrapping_add(1), 2))
            .await?;
    }
}
