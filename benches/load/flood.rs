//! Floods, bounded: silent connections (greeted, never answering) from 127.0.0.2–5 are
//! opened in waves while legitimate clients log in from 127.0.0.1 after each wave; and
//! one client guessing a password from one address, serially, with the login throttle
//! off (the behaviour before it) and with its defaults, in the same run.

use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};

use super::common::{TestDb, APP_USER};
use super::memory::rss;

/// Silent connections opened in all, per wave, and the legitimate logins after each.
const SILENT: usize = 8_000;
const WAVE: usize = 500;
const LOGINS: usize = 5;
/// A login slower than this counts as locked out.
const SLOW: Duration = Duration::from_secs(1);
/// Seconds each guessing run lasts.
const GUESSING: Duration = Duration::from_secs(20);

async fn silent_from(source: [u8; 4], port: u16) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(std::net::SocketAddr::from((source, 0))).ok()?;
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()
}

/// Whether `LOGINS` logins from 127.0.0.1 all succeed, each within `SLOW`.
async fn logins_fine(opts: &mysql_async::Opts) -> bool {
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..LOGINS {
        let opts = opts.clone();
        all.spawn(async move {
            let start = Instant::now();
            let conn = tokio::time::timeout(SLOW * 5, mysql_async::Conn::new(opts)).await;
            let took = start.elapsed();
            match conn {
                Ok(Ok(conn)) => {
                    let _ = conn.disconnect().await;
                    took <= SLOW
                }
                _ => false,
            }
        });
    }
    let mut fine = true;
    while let Some(ok) = all.join_next().await {
        fine &= ok.unwrap_or(false);
    }
    fine
}

pub async fn flood_suite() {
    let db = TestDb::start(100).await;
    let sluice = super::start_sluice(&db, 70).await;
    let opts: mysql_async::Opts = db.direct_opts().tcp_port(sluice.port).into();
    assert!(logins_fine(&opts).await, "logins fail before any flood");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss(sluice.pid());
    let mut silent = Vec::with_capacity(SILENT);
    let mut locked_out_at = None;
    let started = Instant::now();
    while silent.len() < SILENT {
        for i in 0..WAVE {
            let source = [127, 0, 0, 2 + (i % 4) as u8];
            if let Some(tcp) = silent_from(source, sluice.port).await {
                silent.push(tcp);
            }
        }
        if locked_out_at.is_none() && !logins_fine(&opts).await {
            locked_out_at = Some(silent.len());
        }
    }
    let opened_in = started.elapsed();
    let during = rss(sluice.pid());
    let handshaking = sluice.metric("sluice_client_connections_handshaking").await;
    drop(silent);
    println!("\n## flood: {SILENT} silent connections from 127.0.0.2–5 in waves of {WAVE} ({:.1} s), {LOGINS} logins from 127.0.0.1 after each wave\n", opened_in.as_secs_f64());
    println!("| silent connections before a login failed or took over 1 s | handshaking at the end | RSS before | RSS with the flood open |");
    println!("|---|---|---|---|");
    println!(
        "| {} | {handshaking} | {} kB | {} kB |",
        locked_out_at.map_or(format!("none of {SILENT}"), |n| n.to_string()),
        before / 1024,
        during / 1024
    );
    drop(sluice);
    guessing_suite(&db).await;
}

/// One client, one address, one user, a wrong password, serially for `GUESSING`.
async fn guess(db: &TestDb, server_extra: &str) -> (usize, usize, usize) {
    let sluice = super::start_sluice_configured(&[], db, 70, server_extra).await;
    let wrong: mysql_async::Opts = db
        .direct_opts()
        .tcp_port(sluice.port)
        .user(Some(APP_USER))
        .pass(Some("not-the-password"))
        .into();
    let (mut checked, mut refused, mut other) = (0, 0, 0);
    let start = Instant::now();
    while start.elapsed() < GUESSING {
        match mysql_async::Conn::new(wrong.clone()).await {
            Err(mysql_async::Error::Server(e)) if e.code == 1045 => checked += 1,
            Err(mysql_async::Error::Server(e)) if e.code == 1129 => refused += 1,
            _ => other += 1,
        }
    }
    (checked, refused, other)
}

async fn guessing_suite(db: &TestDb) {
    let off = "[server.login_throttle]\ndelay_after = 1000000000\nblock_after = 1000000000";
    let runs = [("off (as before it)", off), ("defaults", "")];
    println!(
        "\n## password guessing: one client, one address, one user, serially, {} s each\n",
        GUESSING.as_secs()
    );
    println!("| login throttle | passwords checked | per second | refused unchecked (1129) | other errors |");
    println!("|---|---|---|---|---|");
    for (name, extra) in runs {
        let (checked, refused, other) = guess(db, extra).await;
        println!(
            "| {name} | {checked} | {:.2} | {refused} | {other} |",
            checked as f64 / GUESSING.as_secs_f64()
        );
    }
}
