//! One look at one instance. Of several instances, on a connection of the monitor's
//! own (opened as any configured user, kept between looks, beyond the pool's cap: one
//! per instance, as ProxySQL's monitor has). A single instance is looked at through
//! an idle connection of the pool instead, so that it never sees more than the cap:
//! with none idle there is nothing to let go, and the look waits for the next round.
//!
//! Whether it takes writes is `@@read_only` (MySQL's `super_read_only` turns it on
//! too) and `@@innodb_read_only` (what an Aurora reader has); which server it is,
//! `@@server_id`; and of a read-only one, how far behind its source it is
//! (`SHOW REPLICA STATUS`).

use std::sync::Arc;
use std::time::Duration;

use super::election::Seen;
use crate::backend::conn::BackendConn;
use crate::backend::{BackendError, ConnectionError, Pool};

const ROLE_QUERY: &str = "SELECT @@server_id, @@global.read_only, @@global.innodb_read_only";

/// A read-only instance's replication, in the server's own words (MySQL 8.0.22+ and
/// MariaDB 10.5+ both know this spelling; their lag columns are named differently).
const REPLICA_STATUS: &str = "SHOW REPLICA STATUS";
const LAG_COLUMNS: [&[u8]; 2] = [b"Seconds_Behind_Source", b"Seconds_Behind_Master"];
/// Asked of a read-only instance with no replication channel.
const STORAGE_READ_ONLY: &str = "SELECT @@global.innodb_read_only";

/// How far a read-only instance is behind its source, as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    Seconds(u64),
    /// It replicates from nothing, or its replication is stopped (the server reports
    /// no lag then): nothing says it is current.
    NotReplicating,
    /// The server would not say (no privilege to ask, an error).
    Unknown,
    /// Read-only storage (`innodb_read_only`) and no replication channel: an Aurora
    /// reader, which reads the writer's own storage volume (its lag is milliseconds,
    /// and it is not reported as a replica's).
    SharedStorage,
}

/// Failed looks in a row (timeouts, errors) after which an instance is taken for down.
/// A refused connect is proof at once: nothing listens there.
const FAILURES_FOR_DOWN: u32 = 2;

/// The monitor's watch over one instance between looks.
pub(super) struct Watch {
    pub(super) instance: usize,
    conn: Option<Box<BackendConn>>,
    pub(super) seen: Seen,
    /// Of a read-only instance, at the last look that could tell.
    pub(super) lag: Option<Lag>,
    failures: u32,
}

impl Watch {
    pub(super) fn new(instance: usize) -> Self {
        Self {
            instance,
            conn: None,
            seen: Seen::Unknown,
            lag: None,
            failures: 0,
        }
    }

    /// Looks once, within `timeout`, and notes what it found.
    pub(super) async fn look(mut self, pool: Arc<Pool>, timeout: Duration) -> Self {
        let looked = if pool.connector().topology().instances().len() == 1 {
            match look_through_pool(&pool, timeout).await {
                Some(looked) => looked,
                None => return self,
            }
        } else {
            self.look_own(&pool, timeout).await
        };
        match looked {
            Looked::Answer(seen, lag) => {
                self.seen = seen;
                self.lag = lag;
                self.failures = 0;
            }
            Looked::Refused => {
                self.seen = Seen::Down;
                self.lag = None;
            }
            Looked::Failed => {
                self.failures += 1;
                if self.failures >= FAILURES_FOR_DOWN {
                    self.seen = Seen::Down;
                    self.lag = None;
                }
            }
        }
        self
    }

    /// On the monitor's own connection, opened again when it was lost. A connection
    /// that failed or timed out is let go (a late answer on it would be read as the
    /// next look's).
    async fn look_own(&mut self, pool: &Pool, timeout: Duration) -> Looked {
        let connector = pool.connector();
        let target = &connector.topology().instances()[self.instance];
        let outcome = crate::clock::timeout(timeout, async {
            if let Some(conn) = self.conn.as_mut() {
                match conn.query(ROLE_QUERY).await {
                    Ok(rows) => return Ok(parse(&rows)),
                    // Closed since the last look (a restart, a kill): a new connection
                    // tells whether it is back.
                    Err(_) => self.let_go(),
                }
            }
            if self.conn.is_none() {
                self.conn = Some(connector.connect_probe_at(target).await?);
            }
            let conn = self.conn.as_mut().expect("just opened");
            let seen = parse(&conn.query(ROLE_QUERY).await?);
            Ok::<_, BackendError>(seen)
        })
        .await;
        match outcome {
            Ok(Ok(Some(seen))) => {
                let lag = match (seen, self.conn.as_mut()) {
                    (
                        Seen::Up {
                            writable: false, ..
                        },
                        Some(conn),
                    ) => {
                        let (lag, fit) = replica_lag(conn, timeout).await;
                        if !fit {
                            self.let_go();
                        }
                        Some(lag)
                    }
                    _ => None,
                };
                Looked::Answer(seen, lag)
            }
            Ok(Ok(None)) => Looked::Failed,
            Ok(Err(e)) => {
                self.let_go();
                if refused(&e) {
                    Looked::Refused
                } else {
                    Looked::Failed
                }
            }
            Err(_) => {
                self.let_go();
                Looked::Failed
            }
        }
    }

    /// Closes the monitor's connection politely (COM_QUIT, not waited for), so that
    /// the server logs no aborted connection.
    fn let_go(&mut self) {
        if let Some(conn) = self.conn.take() {
            tokio::spawn(conn.quit());
        }
    }
}

/// What one look found.
enum Looked {
    /// What it is, and for a read-only one, how far behind (when asked).
    Answer(Seen, Option<Lag>),
    /// Nothing accepts connections at the address: down at once.
    Refused,
    /// Timed out, refused by the server (1040, a login), or an answer that does not
    /// parse: once may be a hiccup, twice in a row is down.
    Failed,
}

/// On an idle connection of the pool; None when none is idle.
async fn look_through_pool(pool: &Arc<Pool>, timeout: Duration) -> Option<Looked> {
    let mut lease = pool.lend_idle()?;
    let outcome = crate::clock::timeout(timeout, lease.conn().query(ROLE_QUERY)).await;
    let Ok(Ok(rows)) = outcome else {
        lease.close("monitor");
        return Some(Looked::Failed);
    };
    let Some(seen) = parse(&rows) else {
        lease.close("monitor");
        return Some(Looked::Failed);
    };
    let (lag, fit) = match seen {
        Seen::Up {
            writable: false, ..
        } => {
            let (lag, fit) = replica_lag(lease.conn(), timeout).await;
            (Some(lag), fit)
        }
        _ => (None, true),
    };
    if fit {
        // Not a use: looks must not keep idle connections from expiring.
        lease.release_unused();
    } else {
        lease.close("monitor");
    }
    Some(Looked::Answer(seen, lag))
}

/// Asks a read-only instance how far behind it is, within `timeout`; and whether the
/// connection is still fit for the next look (a refusal, such as a user without the
/// privilege to ask, is an answer; a timeout or a broken connection is not).
async fn replica_lag(conn: &mut BackendConn, timeout: Duration) -> (Lag, bool) {
    match crate::clock::timeout(timeout, conn.query_named(REPLICA_STATUS)).await {
        // No channel at all: an Aurora reader, if its storage is what is read-only.
        Ok(Ok((_, rows))) if rows.is_empty() => {
            let asked = crate::clock::timeout(timeout, conn.query(STORAGE_READ_ONLY)).await;
            match asked {
                Ok(Ok(rows)) if is_one(&rows) => (Lag::SharedStorage, true),
                Ok(Ok(_)) => (Lag::NotReplicating, true),
                Ok(Err(e)) if e.server_code().is_some() => (Lag::NotReplicating, true),
                _ => (Lag::NotReplicating, false),
            }
        }
        Ok(Ok((names, rows))) => (lag_of(&names, &rows), true),
        Ok(Err(e)) if e.server_code().is_some() => (Lag::Unknown, true),
        _ => (Lag::Unknown, false),
    }
}

/// The lag column of `SHOW REPLICA STATUS`: NULL (replication stopped) or no row (not a
/// replica) is not replicating.
fn lag_of(names: &[Vec<u8>], rows: &[Vec<Option<Vec<u8>>>]) -> Lag {
    let Some(column) = names
        .iter()
        .position(|n| LAG_COLUMNS.contains(&n.as_slice()))
    else {
        return match rows.is_empty() {
            true => Lag::NotReplicating,
            false => Lag::Unknown,
        };
    };
    // One row per replication channel: the one furthest behind counts.
    let mut worst = None;
    for row in rows {
        let value = row.get(column).and_then(|v| v.as_deref());
        let Some(seconds) = value.and_then(|v| std::str::from_utf8(v).ok()?.parse().ok()) else {
            return Lag::NotReplicating;
        };
        worst = Some(worst.map_or(seconds, |w: u64| w.max(seconds)));
    }
    worst.map_or(Lag::NotReplicating, Lag::Seconds)
}

/// A one-row, one-column answer of 1.
fn is_one(rows: &[Vec<Option<Vec<u8>>>]) -> bool {
    rows.first()
        .and_then(|r| r.first())
        .is_some_and(|v| v.as_deref() == Some(b"1"))
}

/// Nothing accepts connections there.
fn refused(e: &BackendError) -> bool {
    matches!(e, BackendError::Connection(ConnectionError::Connect(io))
        if io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// The role query's row: None when it is not one.
fn parse(rows: &[Vec<Option<Vec<u8>>>]) -> Option<Seen> {
    let row = rows.first()?;
    let number = |i: usize| -> Option<u64> {
        std::str::from_utf8(row.get(i)?.as_deref()?)
            .ok()?
            .parse()
            .ok()
    };
    let server_id = u32::try_from(number(0)?).ok()?;
    let read_only = number(1)? != 0 || number(2)? != 0;
    Some(Seen::Up {
        server_id,
        writable: !read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[&str]) -> Vec<Vec<Option<Vec<u8>>>> {
        vec![values.iter().map(|v| Some(v.as_bytes().to_vec())).collect()]
    }

    #[test]
    fn the_lag_is_read_from_either_servers_column() {
        let names = |lag: &str| vec![b"Replica_IO_State".to_vec(), lag.as_bytes().to_vec()];
        let row = |lag: Option<&str>| vec![Some(b"Waiting".to_vec()), lag.map(|l| l.into())];
        let mysql = names("Seconds_Behind_Source");
        let mariadb = names("Seconds_Behind_Master");
        assert_eq!(lag_of(&mysql, &[row(Some("0"))]), Lag::Seconds(0));
        assert_eq!(lag_of(&mariadb, &[row(Some("42"))]), Lag::Seconds(42));
        assert_eq!(lag_of(&mysql, &[row(None)]), Lag::NotReplicating);
        assert_eq!(lag_of(&mysql, &[]), Lag::NotReplicating);
        assert_eq!(lag_of(&[], &[]), Lag::NotReplicating);
        // Several channels: the furthest behind; one stopped: not replicating.
        let two = [row(Some("3")), row(Some("9"))];
        assert_eq!(lag_of(&mysql, &two), Lag::Seconds(9));
        assert_eq!(
            lag_of(&mysql, &[row(Some("3")), row(None)]),
            Lag::NotReplicating
        );
        assert_eq!(lag_of(&names("Other"), &[row(Some("3"))]), Lag::Unknown);
    }

    #[test]
    fn the_role_row_is_read() {
        let up = |server_id, writable| {
            Some(Seen::Up {
                server_id,
                writable,
            })
        };
        assert_eq!(parse(&row(&["7", "0", "0"])), up(7, true));
        assert_eq!(parse(&row(&["7", "1", "0"])), up(7, false));
        assert_eq!(parse(&row(&["7", "0", "1"])), up(7, false));
        assert_eq!(parse(&row(&["7", "0"])), None);
        assert_eq!(parse(&row(&["x", "0", "0"])), None);
        assert_eq!(parse(&row(&["99999999999", "0", "0"])), None);
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[vec![None, None, None]]), None);
    }
}
