//! One look at one instance. Of several instances, on a connection of the monitor's
//! own (opened as any configured user, kept between looks, beyond the pool's cap: one
//! per instance, as ProxySQL's monitor has). A single instance is looked at through
//! an idle connection of the pool instead, so that it never sees more than the cap:
//! with none idle there is nothing to let go, and the look waits for the next round.
//!
//! Whether it takes writes is `@@read_only` (MySQL's `super_read_only` turns it on
//! too) and `@@innodb_read_only` (what an Aurora reader has); which server it is,
//! `@@server_id`.

use std::sync::Arc;
use std::time::Duration;

use super::election::Seen;
use crate::backend::conn::BackendConn;
use crate::backend::{BackendError, ConnectionError, Pool};

const ROLE_QUERY: &str = "SELECT @@server_id, @@global.read_only, @@global.innodb_read_only";

/// Failed looks in a row (timeouts, errors) after which an instance is taken for down.
/// A refused connect is proof at once: nothing listens there.
const FAILURES_FOR_DOWN: u32 = 2;

/// The monitor's watch over one instance between looks.
pub(super) struct Watch {
    pub(super) instance: usize,
    conn: Option<Box<BackendConn>>,
    pub(super) seen: Seen,
    failures: u32,
}

impl Watch {
    pub(super) fn new(instance: usize) -> Self {
        Self {
            instance,
            conn: None,
            seen: Seen::Unknown,
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
            Looked::Answer(seen) => {
                self.seen = seen;
                self.failures = 0;
            }
            Looked::Refused => {
                self.seen = Seen::Down;
            }
            Looked::Failed => {
                self.failures += 1;
                if self.failures >= FAILURES_FOR_DOWN {
                    self.seen = Seen::Down;
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
        let outcome = tokio::time::timeout(timeout, async {
            if let Some(conn) = self.conn.as_mut() {
                match conn.query(ROLE_QUERY).await {
                    Ok(rows) => return Ok(parse(&rows)),
                    // Closed since the last look (a restart, a kill): a new connection
                    // tells whether it is back.
                    Err(_) => self.let_go(),
                }
            }
            let mut conn = connector.connect_probe_at(target).await?;
            let seen = parse(&conn.query(ROLE_QUERY).await?);
            self.conn = Some(conn);
            Ok::<_, BackendError>(seen)
        })
        .await;
        match outcome {
            Ok(Ok(Some(seen))) => Looked::Answer(seen),
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
    Answer(Seen),
    /// Nothing accepts connections at the address: down at once.
    Refused,
    /// Timed out, refused by the server (1040, a login), or an answer that does not
    /// parse: once may be a hiccup, twice in a row is down.
    Failed,
}

/// On an idle connection of the pool; None when none is idle.
async fn look_through_pool(pool: &Arc<Pool>, timeout: Duration) -> Option<Looked> {
    let mut lease = pool.lend_idle()?;
    let outcome = tokio::time::timeout(timeout, lease.conn().query(ROLE_QUERY)).await;
    let Ok(Ok(rows)) = outcome else {
        lease.close("monitor");
        return Some(Looked::Failed);
    };
    // Not a use: looks must not keep idle connections from expiring.
    lease.release_unused();
    Some(parse(&rows).map_or(Looked::Failed, Looked::Answer))
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
