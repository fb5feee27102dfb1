//! One typed registry of every metric Sluice exports.

mod pools;

pub use pools::{PoolGauges, ReaderMetrics};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// All metrics, registered once in their own registry and passed around in an `Arc`.
pub struct Metrics {
    registry: Registry,
    pub client_connections: IntGaugeVec,
    pub client_connections_handshaking: IntGauge,
    pub client_connections_received: IntCounter,
    pub client_connections_setup_succeeded: IntCounterVec,
    pub client_connections_setup_failed: IntCounterVec,
    pub database_connections: IntGauge,
    pub database_connections_idle: IntGauge,
    pub database_connections_borrowed: IntGauge,
    pub database_connections_pinned: IntGauge,
    pub database_connections_max_allowed: IntGauge,
    pub database_connections_effective_max: IntGauge,
    pub database_connections_refused: IntCounter,
    pub database_up: IntGauge,
    pub instance_up: IntGaugeVec,
    pub instance_writable: IntGaugeVec,
    pub instance_is_writer: IntGaugeVec,
    pub instance_replica_lag_seconds: IntGaugeVec,
    pub failovers: IntCounter,
    pub writer_conflicts: IntCounter,
    pub without_writer_seconds: prometheus::Counter,
    pub availability_percent: prometheus::Gauge,
    pub database_connections_setup_succeeded: IntCounter,
    pub database_connections_setup_failed: IntCounter,
    pub database_connections_closed: IntCounterVec,
    pub borrow_duration: Histogram,
    pub borrow_timeouts: IntCounter,
    pub pins: IntCounterVec,
    pub queries: IntCounter,
    pub query_errors: IntCounter,
    pub session_replays: IntCounter,
    pub statements_prepared: IntCounter,
    pub statements_evicted: IntCounter,
    pub iam_verifications: IntCounterVec,
    pub iam_cache_hits: IntCounter,
    pub secret_fetches: IntCounterVec,
    pub secret_rotations: IntCounter,
    pub readers: ReaderMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("sluice".into()), None)
            .expect("static registry prefix is valid");
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone()))
                .expect("metric names are static and unique");
            c
        }
        let gauge = |name: &str, help: &str| reg(&registry, IntGauge::new(name, help).unwrap());
        let counter = |name: &str, help: &str| reg(&registry, IntCounter::new(name, help).unwrap());
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).unwrap(),
            )
        };
        Self {
            client_connections: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new("client_connections", "Authenticated client connections, by TLS use."),
                    &["tls"],
                )
                .unwrap(),
            ),
            client_connections_handshaking: gauge(
                "client_connections_handshaking",
                "Client connections in the handshake, not yet authenticated.",
            ),
            client_connections_received: counter(
                "client_connections_received_total",
                "Client connections accepted.",
            ),
            client_connections_setup_succeeded: counter_vec(
                "client_connections_setup_succeeded_total",
                "Client connections that authenticated, by TLS use.",
                &["tls"],
            ),
            client_connections_setup_failed: counter_vec(
                "client_connections_setup_failed_total",
                "Client connections that failed before the command phase, by reason.",
                &["reason"],
            ),
            database_connections: gauge("database_connections", "Open backend connections."),
            database_connections_idle: gauge(
                "database_connections_idle",
                "Backend connections idle in the pool.",
            ),
            database_connections_borrowed: gauge(
                "database_connections_borrowed",
                "Backend connections lent to a client.",
            ),
            database_connections_pinned: gauge(
                "database_connections_pinned",
                "Backend connections pinned to one client session.",
            ),
            database_connections_max_allowed: gauge(
                "database_connections_max_allowed",
                "Pool cap: max_connections × max_connections_percent / 100 (0 while unknown).",
            ),
            database_connections_effective_max: gauge(
                "database_connections_effective_max",
                "Backend connections the pool uses now: the cap, or fewer while the database \
                 refuses connections (then one more is tried at a time, with backoff).",
            ),
            database_connections_refused: counter(
                "database_connections_refused_total",
                "Backend connects the database refused (1040, 1203, refused or timed out at \
                 TCP level); the borrower waited for a working connection instead.",
            ),
            database_up: gauge(
                "database_up",
                "1 when the last health check found the database answering (also before the \
                 first), else 0: /readyz answers 503 then.",
            ),
            instance_up: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "instance_up",
                        "1 while the topology monitor finds the instance answering.",
                    ),
                    &["instance"],
                )
                .unwrap(),
            ),
            instance_writable: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "instance_writable",
                        "1 while the instance takes writes (read_only and innodb_read_only off).",
                    ),
                    &["instance"],
                )
                .unwrap(),
            ),
            instance_is_writer: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "instance_is_writer",
                        "1 for the instance the pool's connections go to.",
                    ),
                    &["instance"],
                )
                .unwrap(),
            ),
            instance_replica_lag_seconds: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "instance_replica_lag_seconds",
                        "Of a read-only instance: seconds behind its source, as it reports \
                         it; -1 when it is not replicating or would not say.",
                    ),
                    &["instance"],
                )
                .unwrap(),
            ),
            failovers: counter(
                "failovers_total",
                "Changes of writer (the writer lost, or another server in its place).",
            ),
            writer_conflicts: counter(
                "writer_conflicts_total",
                "Looks that found more than one writable instance.",
            ),
            without_writer_seconds: reg(
                &registry,
                prometheus::Counter::new(
                    "without_writer_seconds_total",
                    "Seconds with no writer to send statements to (borrowers wait).",
                )
                .unwrap(),
            ),
            availability_percent: reg(
                &registry,
                prometheus::Gauge::new(
                    "availability_percent",
                    "Share of the time since start with a writer to send statements to \
                     (as RDS Proxy's AvailabilityPercentage).",
                )
                .unwrap(),
            ),
            database_connections_setup_succeeded: counter(
                "database_connections_setup_succeeded_total",
                "Backend connections opened and authenticated.",
            ),
            database_connections_setup_failed: counter(
                "database_connections_setup_failed_total",
                "Backend connection attempts that failed.",
            ),
            database_connections_closed: counter_vec(
                "database_connections_closed_total",
                "Backend connections closed, by reason.",
                &["reason"],
            ),
            borrow_duration: reg(
                &registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "database_connection_borrow_duration_seconds",
                        "Time a client waited for a backend connection.",
                    )
                    .buckets(vec![
                        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
                        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
                    ]),
                )
                .unwrap(),
            ),
            borrow_timeouts: counter(
                "database_connection_borrow_timeouts_total",
                "Borrows that gave up after connection_borrow_timeout (ERROR 9501).",
            ),
            pins: counter_vec(
                "pins_total",
                "Client sessions pinned to a backend connection, by reason.",
                &["reason"],
            ),
            queries: counter("queries_total", "Client commands relayed to the backend."),
            query_errors: counter(
                "query_errors_total",
                "Client commands answered with an error packet.",
            ),
            session_replays: counter(
                "session_state_replays_total",
                "Session variables replayed on a backend before a client's statement (one round trip each).",
            ),
            statements_prepared: counter(
                "backend_statements_prepared_total",
                "Prepared statements Sluice prepared on a backend connection (first use there).",
            ),
            statements_evicted: counter(
                "backend_statements_evicted_total",
                "Prepared statements closed on a backend to stay within its bound.",
            ),
            iam_verifications: counter_vec(
                "iam_verifications_total",
                "IAM auth tokens checked (cache hits excluded), by mode and result (ok, or why not).",
                &["mode", "result"],
            ),
            iam_cache_hits: counter(
                "iam_cache_hits_total",
                "IAM auth tokens accepted from the cache of verified tokens.",
            ),
            secret_fetches: counter_vec(
                "secret_fetches_total",
                "Secrets Manager GetSecretValue calls for AWSCURRENT, by result (ok, error).",
                &["result"],
            ),
            secret_rotations: counter(
                "secret_rotations_total",
                "Secrets whose password changed since Sluice last read them.",
            ),
            readers: ReaderMetrics::register(&registry),
            registry,
        }
    }

    /// The gauges of the writer's pool.
    pub fn writer_pool(&self) -> PoolGauges {
        PoolGauges {
            open: self.database_connections.clone(),
            idle: self.database_connections_idle.clone(),
            borrowed: self.database_connections_borrowed.clone(),
            max_allowed: self.database_connections_max_allowed.clone(),
            effective_max: self.database_connections_effective_max.clone(),
        }
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("prometheus text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names() {
        let m = Metrics::new();
        m.pins.with_label_values(&["user_variable"]).inc();
        m.client_connections.with_label_values(&["false"]).inc();
        let text = m.render();
        assert!(text.contains("sluice_pins_total{reason=\"user_variable\"} 1"));
        assert!(text.contains("sluice_client_connections{tls=\"false\"} 1"));
        assert!(text.contains("sluice_database_connection_borrow_duration_seconds_bucket"));
    }
}
