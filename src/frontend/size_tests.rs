//! What one client connection costs in memory before any buffer: the task's future (the
//! handshake, then the session's whole state machine, allocated once per connection).
//! Sizes are fixed at compile time, so this is a check that cannot flake; the load
//! harness's `memory` part measures the resident memory of real idle clients.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::backend::conn::Target;
use crate::backend::{MySqlConnector, PoolSettings};

fn context() -> Context {
    let config = Arc::new(Config::parse(crate::config::EMBEDDED_DEFAULT).unwrap());
    let credentials = Arc::new(Credentials::new(&config.users, None, Duration::ZERO));
    let target = Target {
        address: config.backend.instances()[0].clone(),
        tls: None,
        connect_timeout: Duration::from_secs(1),
        init_query: String::new(),
    };
    let connector = MySqlConnector::new(vec![target], credentials.clone(), Vec::new());
    let settings = PoolSettings {
        max_connections_percent: 50,
        max_idle_connections_percent: 50,
        borrow_timeout: Duration::from_secs(1),
        max_lifetime: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        max_prepared_statements: 16,
    };
    let metrics = Arc::new(Metrics::new());
    let pool = Pool::new(connector, settings, metrics.clone());
    let (_, shutdown) = watch::channel(false);
    Context::new(config, credentials, None, pool, metrics, None, shutdown)
}

#[tokio::test]
async fn a_connections_future_stays_small() {
    let ctx = Arc::new(context());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tcp2 = TcpStream::connect(addr).await.unwrap();
    let admission = admission::Admission::new(4, 4, 4, ctx.metrics.clone());
    let hs = handshake::handshake(&ctx, tcp2, addr, 1, &admission, Endpoint::Writer);
    println!("handshake: {}", std::mem::size_of_val(&hs));
    drop(hs);
    let tcp3 = TcpStream::connect(addr).await.unwrap();
    let client = handshake::Client {
        io: crate::net::PacketStream::new(crate::net::MaybeTls::Plain(tcp3)),
        user: Arc::from("u"),
        capabilities: 0,
        charset: 45,
        schema: None,
        connection_id: 1,
        peer: addr,
        scramble: Vec::new(),
        endpoint: Endpoint::Writer,
    };
    let mut session = session::Session::new(&ctx, client);
    println!("Session struct: {}", std::mem::size_of_val(&session));
    let wire = crate::protocol::packet::packet(0, b"\x03SELECT 1");
    macro_rules! frame {
        () => {{
            let mut r = crate::protocol::packet::PacketReader::new();
            r.read(&mut &wire[..], 1024).await.unwrap()
        }};
    }
    {
        let f = session.dispatch(frame!());
        println!("dispatch: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.query(frame!());
        println!("query: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.execute(frame!(), session::Relay::NoResponse, None);
        println!("execute: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.stmt_prepare(frame!());
        println!("stmt_prepare: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.stmt_execute(frame!());
        println!("stmt_execute: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.change_user(frame!());
        println!("change_user: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.end_affinity();
        println!("end_affinity: {}", std::mem::size_of_val(&f));
    }
    {
        let f = session.give_back();
        println!("give_back: {}", std::mem::size_of_val(&f));
    }
    {
        let fr = frame!();
        let f = session.hold_backend_for(&fr, session::Relay::NoResponse, None);
        println!("hold_backend_for: {}", std::mem::size_of_val(&f));
    }
    let run = session.run();
    println!("Session::run: {}", std::mem::size_of_val(&run));
    drop(run);
    let handshaking = admission.begin_handshake(addr.ip()).unwrap();
    let serve = serve(
        ctx.clone(),
        tcp,
        addr,
        handshaking,
        admission,
        Endpoint::Writer,
    );
    let size = std::mem::size_of_val(&serve);
    println!("a client connection's future: {size} bytes");
    // The whole state machine, handshake and session, as one allocation per connection.
    assert!(size <= 4096, "a client connection's future is {size} bytes");
}
