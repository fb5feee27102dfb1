//! A steady load for failover tests: clients that each keep a session variable of
//! their own and alternate autocommit writes with short two-row transactions, checking
//! their answers, and record what they saw: which writes were acknowledged, which
//! failed and how, whether their connection was closed outside a transaction, and the
//! longest wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;

/// What one client saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Notes of writes acknowledged (autocommit statements and committed transactions).
    pub acknowledged: Vec<String>,
    /// When each of them was acknowledged.
    pub acknowledged_at: Vec<Instant>,
    /// Notes of transactions that failed (none of their rows may be committed half).
    pub failed_transactions: Vec<String>,
    /// Error codes, in order (1: a lost connection without an error packet; 2: connect
    /// failed).
    pub errors: Vec<u16>,
    /// Why connecting (or setting the session up) failed.
    pub connect_errors: Vec<String>,
    /// Connections lost outside a transaction (a session that should have survived).
    pub lost_idle: usize,
    /// Its session variable came back wrong.
    pub wrong_session: usize,
    pub longest: Duration,
    pub statements: usize,
}

impl Seen {
    /// The first write acknowledged after `t`.
    pub fn first_write_after(&self, t: Instant) -> Option<Instant> {
        self.acknowledged_at.iter().copied().find(|&at| at > t)
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

fn code(e: &mysql_async::Error) -> u16 {
    match e {
        mysql_async::Error::Server(e) => e.code,
        _ => 1,
    }
}

impl Load {
    /// `clients` clients through `opts`; client `i`'s rows are owned by `first + i`.
    pub fn start(opts: mysql_async::OptsBuilder, clients: usize, first: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (first..first + clients)
            .map(|i| tokio::spawn(run(opts.clone(), i, stop.clone())))
            .collect();
        Self { stop, tasks }
    }

    pub async fn stop(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        let mut seen = Vec::new();
        for t in self.tasks {
            seen.push(t.await.unwrap());
        }
        seen
    }
}

async fn session(
    opts: &mysql_async::OptsBuilder,
    i: usize,
) -> Result<mysql_async::Conn, mysql_async::Error> {
    let mut c = mysql_async::Conn::new(opts.clone()).await?;
    let set = format!("SET SESSION group_concat_max_len = {}", 5000 + i);
    c.query_drop(set).await?;
    Ok(c)
}

async fn run(opts: mysql_async::OptsBuilder, i: usize, stop: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut conn = None;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let Some(c) = conn.as_mut() else {
            match session(&opts, i).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    seen.errors.push(2);
                    seen.connect_errors.push(e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            continue;
        };
        let started = Instant::now();
        let note = format!("{i}-{n}");
        let transaction = n % 2 == 0;
        let outcome = if transaction {
            let sql = format!(
                "INSERT INTO items (owner, note) VALUES ({i}, '{note}a'); \
                 INSERT INTO items (owner, note) VALUES ({i}, '{note}b')"
            );
            let mut ok = c.query_drop("BEGIN").await;
            for part in sql.split("; ") {
                if ok.is_ok() {
                    ok = c.query_drop(part).await;
                }
            }
            if ok.is_ok() {
                ok = c.query_drop("COMMIT").await;
            }
            ok
        } else {
            let sql = format!("INSERT INTO items (owner, note) VALUES ({i}, '{note}')");
            c.query_drop(sql).await
        };
        seen.statements += 1;
        seen.longest = seen.longest.max(started.elapsed());
        match outcome {
            Ok(()) => {
                seen.acknowledged.push(note);
                seen.acknowledged_at.push(Instant::now());
            }
            Err(e) => {
                seen.errors.push(code(&e));
                if transaction {
                    seen.failed_transactions.push(note);
                }
                // Still connected? A session outside a transaction must be (an error
                // packet is an answer; only a closed connection is not).
                let alive = match c.query_drop("SELECT 1").await {
                    Ok(()) | Err(mysql_async::Error::Server(_)) => true,
                    Err(_) => false,
                };
                if !alive {
                    if !transaction {
                        seen.lost_idle += 1;
                    }
                    conn = None;
                    continue;
                }
                // A transaction that failed midway is rolled back by the client.
                let _ = c.query_drop("ROLLBACK").await;
            }
        }
        if n % 5 == 0 {
            let len: Result<Option<i64>, _> = c.query_first("SELECT @@group_concat_max_len").await;
            if let Ok(Some(len)) = len {
                if len != 5000 + i as i64 {
                    seen.wrong_session += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(c) = conn {
        let _ = c.disconnect().await;
    }
    seen
}
