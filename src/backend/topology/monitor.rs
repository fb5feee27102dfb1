//! The topology monitor: every `monitor_interval` (at once when a statement gave
//! cause) it looks at every instance at the same time, elects the writer, and on a
//! change of writer has the pool let go of the old one's connections and read the new
//! one's `max_connections`. It runs apart from the pool's upkeep and the health check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::election::{elect, Seen};
use super::look::{Lag, Watch};
use super::readers::Readers;
use super::Change;
use crate::backend::Pool;

/// The shortest time between two rounds when statements give cause to look.
const SOONEST: Duration = Duration::from_millis(100);

/// The monitor's state between rounds.
pub struct Monitor {
    pool: Arc<Pool>,
    watches: Vec<Watch>,
    timeout: Duration,
    /// When the last round ended without a writer.
    without_writer_since: Option<Instant>,
    /// When the monitor started: the availability figure is over the time since.
    started: Instant,
    /// The last look found more than one writable instance.
    in_conflict: bool,
    /// The reader endpoint, told after each round which replicas serve.
    readers: Option<Arc<Readers>>,
}

impl Monitor {
    /// `timeout` bounds each look.
    pub fn new(pool: Arc<Pool>, timeout: Duration) -> Self {
        let topology = pool.connector().topology();
        let n = topology.instances().len();
        publish_writer(&pool, topology.writer_id());
        Self {
            pool,
            watches: (0..n).map(Watch::new).collect(),
            timeout,
            without_writer_since: None,
            started: Instant::now(),
            in_conflict: false,
            readers: None,
        }
    }

    /// Also decides, after each round, which replicas serve `readers`.
    pub fn with_readers(mut self, readers: Arc<Readers>) -> Self {
        self.readers = Some(readers);
        self
    }

    /// Runs until the pool is dropped.
    pub async fn run(mut self, every: Duration) {
        let mut last = Instant::now();
        loop {
            let topology = self.pool.connector().topology();
            tokio::select! {
                () = crate::clock::sleep_until(last + every) => {}
                () = topology.suspected() => {
                    // A burst of read-only errors (or a read replica used on purpose as
                    // the one instance, whose writes all get 1290) looks at most this
                    // often.
                    crate::clock::sleep_until(last + SOONEST.min(every)).await;
                }
            }
            last = Instant::now();
            self.round().await;
        }
    }

    /// Looks at every instance once and applies the election.
    pub async fn round(&mut self) {
        let mut looks = tokio::task::JoinSet::new();
        for watch in std::mem::take(&mut self.watches) {
            looks.spawn(watch.look(self.pool.clone(), self.timeout));
        }
        let n = self.pool.connector().topology().instances().len();
        let mut watches: Vec<Option<Watch>> = (0..n).map(|_| None).collect();
        while let Some(done) = looks.join_next().await {
            if let Ok(watch) = done {
                let i = watch.instance;
                watches[i] = Some(watch);
            }
        }
        // A look that panicked starts over.
        self.watches = watches
            .into_iter()
            .enumerate()
            .map(|(i, w)| w.unwrap_or_else(|| Watch::new(i)))
            .collect();
        self.publish();
        let seen: Vec<Seen> = self.watches.iter().map(|w| w.seen).collect();
        let topology = self.pool.connector().topology();
        let election = elect(topology.writer_id(), &seen);
        if election.conflict {
            self.pool.metrics().writer_conflicts.inc();
            // Logged when it starts, counted on every look while it lasts.
            if !self.in_conflict {
                tracing::error!(
                    writer = topology.name(election.writer.map_or(0, |w| w.instance)),
                    "more than one instance takes writes; staying on one writer"
                );
            }
        }
        self.in_conflict = election.conflict;
        if let Some(change) = topology.apply(&election) {
            self.changed(change).await;
        }
        if let Some(readers) = &self.readers {
            readers.take_in(&self.watches);
        }
        self.count_time_without_writer();
    }

    /// The writer changed: its connections go, and the new one's limits are read.
    async fn changed(&self, change: Change) {
        let topology = self.pool.connector().topology();
        let name = |w: Option<super::WriterId>| w.map_or("(none)", |w| topology.name(w.instance));
        tracing::warn!(
            from = name(change.from),
            to = name(change.to),
            generation = change.generation,
            "writer changed; letting go of the old writer's connections"
        );
        if change.from.is_some() {
            self.pool.metrics().failovers.inc();
        }
        publish_writer(&self.pool, change.to);
        self.pool.connector().forget_baselines();
        self.pool.retarget();
        if change.to.is_some() {
            if let Err(e) = self.pool.refresh_capacity().await {
                tracing::warn!(error = %e, "cannot read the new writer's max_connections");
            }
        }
    }

    /// What the last looks found, per instance.
    fn publish(&self) {
        let topology = self.pool.connector().topology();
        let metrics = self.pool.metrics();
        for watch in &self.watches {
            let name = topology.name(watch.instance);
            let (up, writable) = match watch.seen {
                Seen::Up { writable, .. } => (1, i64::from(writable)),
                Seen::Unknown | Seen::Down => (0, 0),
            };
            metrics.instance_up.with_label_values(&[name]).set(up);
            metrics
                .instance_writable
                .with_label_values(&[name])
                .set(writable);
            let gauge = &metrics.instance_replica_lag_seconds;
            match watch.lag {
                // Writable, or not answering: no lag to show.
                None => {
                    let _ = gauge.remove_label_values(&[name]);
                }
                Some(Lag::SharedStorage) => gauge.with_label_values(&[name]).set(0),
                Some(Lag::Seconds(s)) => gauge
                    .with_label_values(&[name])
                    .set(i64::try_from(s).unwrap_or(i64::MAX)),
                Some(Lag::NotReplicating | Lag::Unknown) => {
                    gauge.with_label_values(&[name]).set(-1)
                }
            }
        }
    }

    fn count_time_without_writer(&mut self) {
        let now = Instant::now();
        let metrics = self.pool.metrics();
        if let Some(since) = self.without_writer_since.take() {
            let without = now.saturating_duration_since(since);
            metrics.without_writer_seconds.inc_by(without.as_secs_f64());
        }
        // As RDS Proxy's AvailabilityPercentage: the share of the time there was a
        // writer to send statements to, since the start.
        let up = now.saturating_duration_since(self.started).as_secs_f64();
        if up > 0.0 {
            let without = metrics.without_writer_seconds.get().min(up);
            metrics
                .availability_percent
                .set(100.0 * (1.0 - without / up));
        }
        if self.pool.connector().topology().writer_id().is_none() {
            self.without_writer_since = Some(now);
        }
    }
}

/// Which instance is the writer, as a gauge per instance.
fn publish_writer(pool: &Pool, writer: Option<super::WriterId>) {
    let topology = pool.connector().topology();
    for i in 0..topology.instances().len() {
        let is_writer = writer.is_some_and(|w| w.instance == i);
        pool.metrics()
            .instance_is_writer
            .with_label_values(&[topology.name(i)])
            .set(i64::from(is_writer));
    }
}
