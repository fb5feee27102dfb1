//! The command loop of one authenticated client: it reads the client's commands and runs
//! the session's timers (idle client, idle in transaction, the affinity window, the
//! server's shutdown), and hands each command to `dispatch`.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::time::Sleep;

use super::continuation::Oversized;
use super::session::Session;
use super::FrontendError;
use crate::config::ServerConfig;
use crate::protocol::errors::ErrorPacket;
use crate::protocol::packet::MAX_PAYLOAD;
use crate::protocol::ProtocolError;

/// The session's timers: one of each for the whole session, not one per command (a
/// timer registers with shared runtime structures, which would cost every statement a
/// trip through a lock). A timer only moves when it fires early or its deadline changes.
struct Timers {
    idle: Duration,
    idle_in_transaction: Option<Duration>,
    last_activity: Instant,
    idle_timer: Pin<Box<Sleep>>,
    /// The idle limit the idle timer runs for.
    armed_limit: Duration,
    affinity_timer: Pin<Box<Sleep>>,
    affinity_armed: Option<Instant>,
}

/// Which idle limit ran out.
#[derive(Clone, Copy)]
enum IdleOut {
    Client,
    /// The shorter limit inside a transaction.
    Transaction,
}

impl Timers {
    fn new(server: &ServerConfig) -> Self {
        let idle = server.idle_client_timeout.get();
        Self {
            idle,
            idle_in_transaction: server.idle_transaction_timeout.map(|t| t.get()),
            last_activity: Instant::now(),
            idle_timer: Box::pin(crate::clock::sleep(idle)),
            armed_limit: idle,
            affinity_timer: Box::pin(crate::clock::sleep(idle)),
            affinity_armed: None,
        }
    }

    /// Sets the timers for the session as it now is: its affinity window, and whether
    /// it is in a transaction (a frozen Lambda must not hold its backend and locks for
    /// the whole idle_client_timeout).
    fn arm(&mut self, affinity: Option<Instant>, in_transaction: bool) {
        if affinity != self.affinity_armed {
            if let Some(deadline) = affinity {
                self.affinity_timer.as_mut().reset(deadline.into());
            }
            self.affinity_armed = affinity;
        }
        let limit = match self.idle_in_transaction {
            Some(t) if in_transaction => t.min(self.idle),
            _ => self.idle,
        };
        if limit != self.armed_limit {
            let deadline = self.last_activity + limit;
            self.idle_timer.as_mut().reset(deadline.into());
            self.armed_limit = limit;
        }
    }

    /// The idle timer fired: the limit that ran out, or None when there was activity
    /// since it was set (it is set again for the later deadline).
    fn idle_out(&mut self) -> Option<IdleOut> {
        let deadline = self.last_activity + self.armed_limit;
        if Instant::now() >= deadline {
            return Some(if self.armed_limit < self.idle {
                IdleOut::Transaction
            } else {
                IdleOut::Client
            });
        }
        self.idle_timer.as_mut().reset(deadline.into());
        None
    }

    fn activity(&mut self) {
        self.last_activity = Instant::now();
    }
}

impl Session<'_> {
    pub(super) async fn command_loop(&mut self) -> Result<(), FrontendError> {
        let max_first = self.ctx.config.server.max_packet_size.min(MAX_PAYLOAD);
        let mut timers = Timers::new(&self.ctx.config.server);
        let mut shutdown = self.ctx.shutdown.clone();
        let stop = async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        };
        tokio::pin!(stop);
        let mut stopping = false;
        loop {
            let affinity = self.hold.affinity_deadline();
            timers.arm(affinity, self.hold.in_transaction());
            if stopping && !self.hold.in_transaction() {
                return Ok(());
            }
            let read = tokio::select! {
                biased;
                // Cancellation safe: PacketReader keeps partial reads.
                r = self.client.io.read(max_first) => r,
                () = timers.idle_timer.as_mut() => match timers.idle_out() {
                    Some(out) => return self.idle_out(out).await,
                    None => continue,
                },
                () = &mut stop, if !stopping => {
                    stopping = true;
                    continue;
                }
                () = timers.affinity_timer.as_mut(), if affinity.is_some() => {
                    self.end_affinity().await;
                    continue;
                }
            };
            timers.activity();
            let frame = match read {
                Ok(frame) => frame,
                Err(ProtocolError::Closed) => return Ok(()),
                Err(ProtocolError::TooLarge { size, limit }) => {
                    // Boxed: a rare path, kept out of every session's future.
                    return Err(Box::pin(self.too_large(Oversized::Unread, size, limit)).await);
                }
                Err(e) => return Err(e.into()),
            };
            if !self.dispatch(frame).await? {
                return Ok(());
            }
        }
    }

    /// Ends the session for being idle. Inside a transaction the client is told why,
    /// unsolicited as MySQL does (its code for a server-side inactivity disconnect); the
    /// client reads it next. The transaction is rolled back when the backend is reset.
    async fn idle_out(&mut self, out: IdleOut) -> Result<(), FrontendError> {
        match out {
            IdleOut::Transaction => {
                tracing::debug!(peer = %self.client.peer, "idle in transaction; rolling back");
                let e = ErrorPacket::idle_transaction_timeout();
                let _ = self.reply(&e.encode(0)).await;
            }
            IdleOut::Client => tracing::debug!(peer = %self.client.peer, "idle client timeout"),
        }
        Ok(())
    }
}
