//! The reader endpoint's pools: one per instance, each lending connections to that
//! instance while it serves reads, capped at `max_connections_percent` of its own
//! `max_connections`. A reader session's borrow goes to the serving replica with the
//! smallest share of its cap in use (ties take turns); with none serving, to the
//! writer or to an error, as configured. The monitor tells it, after every round,
//! which instances serve (`Reading`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::look::Watch;
use super::reading::Reading;
use crate::backend::partition::PartitionKey;
use crate::backend::{BackendError, Lease, Pool, PoolError, PoolSettings};
use crate::metrics::Metrics;
use crate::multiplex::Variables;

/// What reader sessions get with no replica fit to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The writer's connections.
    Writer,
    /// An error (3032).
    Refuse,
}

#[derive(Debug, Clone, Copy)]
pub struct ReaderSettings {
    /// A replica further behind its source than this gets no new work.
    pub max_lag: Duration,
    pub fallback: Fallback,
}

pub struct Readers {
    writer: Arc<Pool>,
    /// By instance: the pool of connections to it as a replica.
    replicas: Vec<Arc<Pool>>,
    settings: ReaderSettings,
    metrics: Arc<Metrics>,
    /// Where the next search for the lightest replica starts, so that ties take turns.
    turn: AtomicUsize,
}

impl Readers {
    /// The pools of every instance of `writer`'s topology, with the writer's pool
    /// settings; none opens a connection before its instance serves reads.
    pub fn new(
        writer: Arc<Pool>,
        pool: &PoolSettings,
        settings: ReaderSettings,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let topology = writer.connector().topology();
        let replicas = (0..topology.instances().len())
            .map(|i| {
                let gauges = metrics.readers.pool(topology.name(i));
                let connector = writer.connector().replica(i);
                Pool::with_gauges(connector, pool.clone(), metrics.clone(), gauges)
            })
            .collect();
        Arc::new(Self {
            writer,
            replicas,
            settings,
            metrics,
            turn: AtomicUsize::new(0),
        })
    }

    /// Borrows for a reader session: from the lightest serving replica; with none, as
    /// the fallback says. A replica that stops serving while the borrower waits for it
    /// fails that borrow, and the next is tried.
    pub async fn borrow(
        &self,
        key: &PartitionKey,
        schema: Option<&[u8]>,
        vars: &Variables,
    ) -> Result<Lease, BackendError> {
        let topology = self.writer.connector().topology();
        for _ in 0..self.replicas.len() {
            let Some(i) = self.pick() else {
                break;
            };
            match self.replicas[i].borrow(key, schema, vars).await {
                Err(e) if !topology.serves_reads(i) => {
                    tracing::debug!(replica = topology.name(i), error = %e, "replica left while a reader borrowed; trying another");
                }
                outcome => return outcome,
            }
        }
        match self.settings.fallback {
            Fallback::Writer => {
                self.metrics.readers.fallbacks.inc();
                self.writer.borrow(key, schema, vars).await
            }
            Fallback::Refuse => {
                self.metrics.readers.refusals.inc();
                Err(PoolError::NoReplica.into())
            }
        }
    }

    /// The serving replica whose pool has the smallest share of its cap in use.
    fn pick(&self) -> Option<usize> {
        let topology = self.writer.connector().topology();
        let n = self.replicas.len();
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, crate::backend::pool::Load)> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !topology.serves_reads(i) {
                continue;
            }
            let load = self.replicas[i].load();
            if best.is_none_or(|(_, b)| load.lighter_than(b)) {
                best = Some((i, load));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Takes in what the monitor's last round saw of each instance (after it elected
    /// the writer): which serve reads now. A replica that is no replica any more has
    /// its pool let go of its connections, as the writer's pool does in a failover.
    pub(super) fn take_in(&self, watches: &[Watch]) {
        let topology = self.writer.connector().topology();
        let writer = topology.writer_id();
        for watch in watches {
            let i = watch.instance;
            let is_writer = writer.is_some_and(|w| w.instance == i);
            let now = Reading::decide(watch.seen, watch.lag, is_writer, self.settings.max_lag);
            let name = topology.name(i);
            self.metrics
                .readers
                .serves_reads
                .with_label_values(&[name])
                .set(i64::from(now.serves()));
            let generation = topology.reading_generation(i);
            let Some(before) = topology.set_reading(i, now) else {
                continue;
            };
            match now {
                Reading::Serves => {
                    tracing::info!(replica = name, "replica serves reads");
                }
                // The writer, as it was: nothing to say.
                Reading::Writable if before == Reading::Down => {}
                Reading::LagUnknown => {
                    tracing::warn!(replica = name, was = before.as_str(), "replica gets no new reader work: it would not say how far behind it is (the monitor's user needs REPLICATION CLIENT on MySQL, REPLICA MONITOR on MariaDB)");
                }
                _ => {
                    tracing::warn!(
                        replica = name,
                        was = before.as_str(),
                        now = now.as_str(),
                        "replica gets no new reader work"
                    );
                }
            }
            if topology.reading_generation(i) != generation {
                let pool = &self.replicas[i];
                pool.connector().forget_baselines();
                pool.retarget();
            }
        }
    }

    /// The replica pools' upkeep, until the last reference goes: idle connections
    /// reaped, and each serving replica's `max_connections` read again every
    /// `refresh_every` (at once while unknown).
    pub async fn maintain(self: Arc<Self>, refresh_every: Duration) {
        let mut refreshed: Vec<Option<Instant>> = vec![None; self.replicas.len()];
        loop {
            crate::clock::sleep(Duration::from_secs(1)).await;
            let topology = self.writer.connector().topology();
            for (i, pool) in self.replicas.iter().enumerate() {
                pool.reap();
                pool.grant_free_slots();
                let due = refreshed[i].is_none_or(|t| t.elapsed() >= refresh_every);
                if !topology.serves_reads(i) || !due {
                    continue;
                }
                match pool.refresh_capacity().await {
                    Ok(_) => refreshed[i] = Some(Instant::now()),
                    Err(e) => {
                        tracing::warn!(replica = topology.name(i), error = %e, "cannot read the replica's max_connections")
                    }
                }
            }
        }
    }

    /// Closes every replica pool's idle connections politely (shutdown).
    pub async fn close_idle(&self) {
        for pool in &self.replicas {
            pool.close_idle().await;
        }
    }
}
