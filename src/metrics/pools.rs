//! The gauges a pool keeps its books in. The writer's pool publishes the unlabelled
//! `database_connections*` gauges; each replica's pool of the reader endpoint the
//! `reader_database_connections*` ones, labelled by instance. Counters (connections
//! opened, closed, refused, borrow waits) are shared: they count over every pool.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

/// One pool's gauges.
#[derive(Clone)]
pub struct PoolGauges {
    pub open: IntGauge,
    pub idle: IntGauge,
    pub borrowed: IntGauge,
    pub max_allowed: IntGauge,
    pub effective_max: IntGauge,
}

/// The reader endpoint's metrics.
pub struct ReaderMetrics {
    open: IntGaugeVec,
    idle: IntGaugeVec,
    borrowed: IntGaugeVec,
    max_allowed: IntGaugeVec,
    effective_max: IntGaugeVec,
    /// 1 while an instance gets reader sessions' new work.
    pub serves_reads: IntGaugeVec,
    /// Reader borrows served by the writer, no replica being fit.
    pub fallbacks: IntCounter,
    /// Reader borrows refused, no replica being fit (`fallback = "refuse"`).
    pub refusals: IntCounter,
}

impl ReaderMetrics {
    pub(super) fn register(registry: &Registry) -> Self {
        let vec = |name: &str, help: &str| {
            let v = IntGaugeVec::new(Opts::new(name, help), &["instance"]).unwrap();
            registry
                .register(Box::new(v.clone()))
                .expect("metric names are static and unique");
            v
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap();
            registry
                .register(Box::new(c.clone()))
                .expect("metric names are static and unique");
            c
        };
        Self {
            open: vec(
                "reader_database_connections",
                "Open connections of the reader endpoint's pool of each replica.",
            ),
            idle: vec(
                "reader_database_connections_idle",
                "Idle connections of each replica's pool.",
            ),
            borrowed: vec(
                "reader_database_connections_borrowed",
                "Connections of each replica's pool lent to reader sessions.",
            ),
            max_allowed: vec(
                "reader_database_connections_max_allowed",
                "Each replica's pool cap: max_connections_percent of its own max_connections.",
            ),
            effective_max: vec(
                "reader_database_connections_effective_max",
                "Each replica's pool cap, or fewer while it refuses connections.",
            ),
            serves_reads: vec(
                "instance_serves_reads",
                "1 while an instance gets new reader work (up, read-only, within \
                 max_replica_lag).",
            ),
            fallbacks: counter(
                "reader_fallbacks_total",
                "Reader sessions' borrows served by the writer: no replica was fit.",
            ),
            refusals: counter(
                "reader_refusals_total",
                "Reader sessions' borrows refused with 3032: no replica was fit.",
            ),
        }
    }

    /// The gauges of the pool of `instance`.
    pub fn pool(&self, instance: &str) -> PoolGauges {
        let labels = [instance];
        PoolGauges {
            open: self.open.with_label_values(&labels),
            idle: self.idle.with_label_values(&labels),
            borrowed: self.borrowed.with_label_values(&labels),
            max_allowed: self.max_allowed.with_label_values(&labels),
            effective_max: self.effective_max.with_label_values(&labels),
        }
    }
}
