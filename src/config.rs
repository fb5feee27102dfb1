//! Typed configuration: TOML in, one validated [`Config`] out. Validated once at load.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod aws;
mod limits;
mod reader;
pub use aws::{
    AwsConfig, IamConfig, IamKeyConfig, IamMode, IamPrincipalConfig, IamRequirement, UserConfig,
};
pub use limits::LoginThrottleConfig;
pub use reader::{ReaderConfig, ReaderFallback};

/// The configuration every layer reads. Built only by [`Config::load`] / [`Config::parse`],
/// so every value in it has been validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Client-facing listener.
    pub server: ServerConfig,
    /// HTTP listener for `/metrics`, `/healthz`, `/readyz`.
    #[serde(default)]
    pub admin: AdminConfig,
    /// The MySQL server behind Sluice and the pool of connections to it.
    pub backend: BackendConfig,
    /// A second listener whose sessions run on the replicas; absent: none.
    pub reader: Option<ReaderConfig>,
    /// Database users clients may log in as.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// The AWS SDK, for users whose credentials are secrets.
    #[serde(default)]
    pub aws: AwsConfig,
    /// IAM authentication of clients; needed when a user has `iam = "required"`.
    pub iam: Option<IamConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address clients connect to.
    pub listen: SocketAddr,
    /// Accept queue length passed to listen(2). A storm of new connections must not
    /// overflow it.
    #[serde(default = "default_backlog")]
    pub listen_backlog: u32,
    /// Authenticated client connections above this are refused with error 1040.
    /// Connections still logging in do not count: they have their own budget below.
    #[serde(default = "default_max_clients")]
    pub max_client_connections: usize,
    /// Connections in the handshake (not yet authenticated) at once; more are refused
    /// with 1040 at once, so a flood of silent connections cannot pile up.
    #[serde(default = "limits::default_max_handshakes")]
    pub max_handshakes: usize,
    /// The same, per source address: a flood from a few addresses leaves room for
    /// everyone else's logins.
    #[serde(default = "limits::default_max_handshakes_per_address")]
    pub max_handshakes_per_address: usize,
    /// Seconds a client has to finish the handshake and authentication.
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: Seconds,
    /// Failed logins: delays, then temporary refusals, per address and per user.
    #[serde(default)]
    pub login_throttle: LoginThrottleConfig,
    /// Seconds a client may stay idle between commands before it is disconnected.
    #[serde(default = "default_idle_client_timeout")]
    pub idle_client_timeout: Seconds,
    /// Seconds a client may stay idle inside a transaction before it is disconnected
    /// (error 4031) and the transaction rolled back. Absent: off (only
    /// idle_client_timeout applies).
    pub idle_transaction_timeout: Option<Seconds>,
    /// Seconds a client may take no bytes of a result before it is disconnected and the
    /// backend connection it held closed (as the server's net_write_timeout).
    #[serde(default = "default_client_write_timeout")]
    pub client_write_timeout: Seconds,
    /// Seconds SIGTERM / SIGINT waits for open transactions before closing everything.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: Seconds,
    /// Relay `LOAD DATA LOCAL INFILE`: offer CLIENT_LOCAL_FILES to clients and pass the
    /// server's file request to the client and the file back (the server must allow it
    /// too: MySQL's `local_infile` is OFF by default). Off: never offered, and the server
    /// refuses such statements with its own error, as for a client without the flag.
    #[serde(default)]
    pub local_infile: bool,
    /// Largest client message accepted, in bytes (continuation packets included).
    #[serde(default = "default_max_packet")]
    pub max_packet_size: usize,
    /// Version string in the greeting. Empty: the backend's own version string.
    #[serde(default)]
    pub server_version: String,
    /// Plugin named in the greeting: `auto` (the backend's own default:
    /// `caching_sha2_password` for MySQL, `mysql_native_password` for MariaDB),
    /// `mysql_native_password` or `caching_sha2_password`. Clients may answer with
    /// either; both are verified.
    #[serde(default)]
    pub auth_plugin: AuthPluginName,
    /// Threads serving sessions, one single-threaded runtime each. Absent: one per CPU core.
    pub worker_threads: Option<usize>,
    /// TLS for clients. Absent: plaintext only.
    pub tls: Option<ServerTlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Refuse clients that do not upgrade to TLS (error 3159).
    #[serde(default)]
    pub require: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthPluginName {
    #[default]
    Auto,
    MysqlNativePassword,
    CachingSha2Password,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the HTTP admin listener; absent disables it.
    pub listen: Option<SocketAddr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9104))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// `host:port` of the MySQL / MariaDB server: the one instance. Give this or
    /// `instances`, not both.
    address: Option<String>,
    /// `host:port` of each instance of a replicated database (instance endpoints; a
    /// cluster endpoint may be one of them). The writer is the one writable instance,
    /// as the topology monitor finds it.
    #[serde(default)]
    instances: Vec<String>,
    /// Seconds between the topology monitor's looks at each instance (is it writable,
    /// is it the same server); each look is bounded by `health_check_timeout`.
    #[serde(default = "default_monitor_interval")]
    pub monitor_interval: Seconds,
    /// Seconds to connect and authenticate a new backend connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Seconds,
    /// SQL run once on every new backend connection (and after a reset).
    #[serde(default)]
    pub init_query: String,
    /// Pool cap as a percentage of the server's `@@max_connections` (1–100).
    #[serde(default = "default_max_connections_percent")]
    pub max_connections_percent: u32,
    /// Idle connections kept, as a percentage of `max_connections`
    /// (0–max_connections_percent). Default: half of `max_connections_percent`, as RDS Proxy.
    #[serde(default)]
    max_idle_connections_percent: Option<u32>,
    /// Seconds a client waits for a backend connection before error 9501.
    #[serde(default = "default_borrow_timeout")]
    pub connection_borrow_timeout: Seconds,
    /// Seconds after which a backend connection is closed when next released.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime: Seconds,
    /// Seconds an idle backend connection is kept.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Seconds,
    /// Seconds a client keeps the backend of a statement that left warnings, affected
    /// rows or an insert id, so that an immediately following `SHOW WARNINGS`,
    /// `SELECT ROW_COUNT()` or `SELECT LAST_INSERT_ID()` reads its own values. 0 disables.
    #[serde(default = "default_affinity_window")]
    pub affinity_window: Seconds,
    /// Prepared statements kept open per backend connection; the least recently used are
    /// closed beyond it. The effective bound is also at most
    /// `@@max_prepared_stmt_count / cap`, so the pool can never exhaust the server's.
    #[serde(default = "default_max_prepared_statements")]
    pub max_prepared_statements: usize,
    /// Seconds a statement may wait for the first byte of the database's answer; then
    /// the client gets error 3024 and that backend connection is closed. Absent: off
    /// (RDS Proxy has none; drivers have their own read timeouts).
    pub query_timeout: Option<Seconds>,
    /// Seconds between health checks of the database (`/readyz`).
    #[serde(default = "default_health_check_interval")]
    pub health_check_interval: Seconds,
    /// Seconds a health check waits for the database's answer before taking it for
    /// down (`/readyz` then answers 503).
    #[serde(default = "default_health_check_timeout")]
    pub health_check_timeout: Seconds,
    /// Seconds between reads of `@@max_connections`.
    #[serde(default = "default_capacity_refresh")]
    pub capacity_refresh_interval: Seconds,
    /// TLS to the backend. Absent: plaintext.
    pub tls: Option<BackendTlsConfig>,
}

impl BackendConfig {
    /// The instances, in the configured order: `address` alone, or `instances`.
    pub fn instances(&self) -> &[String] {
        match &self.address {
            Some(address) => std::slice::from_ref(address),
            None => &self.instances,
        }
    }

    pub fn max_idle_connections_percent(&self) -> u32 {
        self.max_idle_connections_percent
            .unwrap_or(self.max_connections_percent / 2)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// PEM bundle of CAs to trust; absent: the Mozilla roots (webpki-roots).
    pub ca: Option<PathBuf>,
    /// Name to verify in the server certificate; default: the host of `address`.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `sluice=debug`. `RUST_LOG` wins.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: default_log_level(),
        }
    }
}

/// A duration written in TOML as a number of seconds (fractions allowed).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Seconds(Duration);

impl Seconds {
    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<f64> for Seconds {
    type Error = String;

    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Duration::try_from_secs_f64(v)
            .map(Seconds)
            .map_err(|_| format!("{v} is not a valid number of seconds"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration compiled into the binary (config/local.toml): a local demo that
/// needs no AWS.
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/local.toml");

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        let b = &self.backend;
        if !(1..=100).contains(&b.max_connections_percent) {
            return bad("backend.max_connections_percent must be 1–100".into());
        }
        if b.max_prepared_statements == 0 {
            return bad("backend.max_prepared_statements must be at least 1".into());
        }
        if b.max_idle_connections_percent() > b.max_connections_percent {
            return bad(
                "backend.max_idle_connections_percent must not exceed max_connections_percent"
                    .into(),
            );
        }
        match (&b.address, b.instances.is_empty()) {
            (Some(_), false) => {
                return bad("give backend.address or backend.instances, not both".into())
            }
            (None, true) => return bad("backend.address (or backend.instances) is required".into()),
            _ => {}
        }
        for (i, address) in b.instances().iter().enumerate() {
            if address
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return bad(format!("backend instance {address:?} must be host:port"));
            }
            if b.instances()[..i].contains(address) {
                return bad(format!("backend instance {address:?} is listed twice"));
            }
        }
        if let Some(reader) = &self.reader {
            let taken = [
                ("server.listen", Some(self.server.listen)),
                ("admin.listen", self.admin.listen),
            ];
            reader.validate(b.instances().len(), &taken)?;
        }
        if self.server.max_client_connections == 0 {
            return bad("server.max_client_connections must be at least 1".into());
        }
        if self.server.max_handshakes == 0 || self.server.max_handshakes_per_address == 0 {
            return bad(
                "server.max_handshakes and max_handshakes_per_address must be at least 1".into(),
            );
        }
        self.server.login_throttle.validate()?;
        if self.server.worker_threads == Some(0) {
            return bad("server.worker_threads must be at least 1".into());
        }
        if self.server.max_packet_size < 1024 {
            return bad("server.max_packet_size must be at least 1024".into());
        }
        for (name, d) in [
            ("server.handshake_timeout", self.server.handshake_timeout),
            ("backend.connect_timeout", b.connect_timeout),
            ("backend.health_check_interval", b.health_check_interval),
            ("backend.health_check_timeout", b.health_check_timeout),
            ("backend.monitor_interval", b.monitor_interval),
            (
                "backend.capacity_refresh_interval",
                b.capacity_refresh_interval,
            ),
        ] {
            if d.get().is_zero() {
                return bad(format!("{name} must be greater than 0"));
            }
        }
        aws::validate(
            &self.users,
            &self.aws,
            self.iam.as_ref(),
            self.server.tls.is_some(),
            self.backend.tls.is_some(),
        )?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| ConfigError::Invalid(format!("log.level: {e}")))?;
        Ok(())
    }
}

/// The host part of a `host:port` (brackets of an IPv6 literal removed), for TLS
/// server-name checks.
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn default_backlog() -> u32 {
    4096
}
fn default_max_clients() -> usize {
    10_000
}
fn default_handshake_timeout() -> Seconds {
    Seconds::from_secs(10)
}
fn default_idle_client_timeout() -> Seconds {
    Seconds::from_secs(1800)
}
fn default_client_write_timeout() -> Seconds {
    Seconds::from_secs(60)
}
fn default_drain_timeout() -> Seconds {
    Seconds::from_secs(30)
}
fn default_max_packet() -> usize {
    64 << 20
}
fn default_health_check_interval() -> Seconds {
    Seconds::from_secs(1)
}

fn default_monitor_interval() -> Seconds {
    Seconds::from_secs(1)
}

fn default_health_check_timeout() -> Seconds {
    Seconds::from_secs(2)
}

fn default_connect_timeout() -> Seconds {
    Seconds::from_secs(5)
}
fn default_max_connections_percent() -> u32 {
    100
}
fn default_borrow_timeout() -> Seconds {
    Seconds::from_secs(120)
}
fn default_max_lifetime() -> Seconds {
    Seconds::from_secs(3600)
}
fn default_idle_timeout() -> Seconds {
    Seconds::from_secs(600)
}
fn default_max_prepared_statements() -> usize {
    256
}

fn default_affinity_window() -> Seconds {
    Seconds(Duration::from_millis(100))
}
fn default_capacity_refresh() -> Seconds {
    Seconds::from_secs(60)
}
fn default_log_level() -> String {
    "info".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert!(!c.users.is_empty());
    }

    #[test]
    fn documented_example_is_valid() {
        let text = include_str!("../config/sluice.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.backend.max_connections_percent, 70);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let base = "[server]\nlisten='127.0.0.1:1'\n[backend]\naddress='db:3306'\n";
        assert!(Config::parse(base).is_ok());
        assert!(Config::parse(&format!("{base}bogus = 1\n")).is_err());
        assert!(Config::parse(&base.replace("db:3306", "db")).is_err());
        assert!(Config::parse(&format!("{base}max_connections_percent = 0\n")).is_err());
        assert!(Config::parse(&format!("{base}connection_borrow_timeout = -1\n")).is_err());
    }

    #[test]
    fn one_address_or_a_list_of_instances() {
        let head = "[server]\nlisten='127.0.0.1:1'\n[backend]\n";
        let parse = |backend: &str| Config::parse(&format!("{head}{backend}\n"));
        let one = parse("address='db:3306'").unwrap();
        assert_eq!(one.backend.instances(), ["db:3306"]);
        let two = parse("instances=['a:3306', 'b:3307']").unwrap();
        assert_eq!(two.backend.instances(), ["a:3306", "b:3307"]);
        let error = |backend: &str| parse(backend).unwrap_err().to_string();
        assert!(error("address='a:1'\ninstances=['b:1']").contains("not both"));
        assert!(error("connect_timeout=1").contains("required"));
        assert!(error("instances=[]").contains("required"));
        assert!(error("instances=['a:1', 'b']").contains("\"b\" must be host:port"));
        assert!(error("instances=['a:1', 'a:1']").contains("twice"));
        assert!(error("address='a:1'\nmonitor_interval=0").contains("monitor_interval"));
        assert_eq!(host_of("[::1]:3306"), "::1");
        assert_eq!(host_of("db.internal:3306"), "db.internal");
    }

    #[test]
    fn a_reader_endpoint_needs_replicas_and_its_own_address() {
        let head = "[server]\nlisten='127.0.0.1:3306'\n[backend]\ninstances=['a:1', 'b:1']\n";
        let parse = |tail: &str| Config::parse(&format!("{head}{tail}\n"));
        let r = parse("[reader]\nlisten='127.0.0.1:3308'").unwrap();
        let reader = r.reader.unwrap();
        assert_eq!(reader.max_replica_lag.get(), Duration::from_secs(30));
        assert_eq!(reader.fallback, ReaderFallback::Writer);
        let r = parse("[reader]\nlisten='127.0.0.1:3308'\nfallback='refuse'\nmax_replica_lag=2.5");
        let reader = r.unwrap().reader.unwrap();
        assert_eq!(reader.fallback, ReaderFallback::Refuse);
        assert_eq!(reader.max_replica_lag.get(), Duration::from_millis(2500));
        let error = |tail: &str| parse(tail).unwrap_err().to_string();
        assert!(error("[reader]\nlisten='127.0.0.1:3306'").contains("also server.listen"));
        assert!(error("[reader]\nlisten='127.0.0.1:9104'").contains("also admin.listen"));
        assert!(
            error("[reader]\nlisten='127.0.0.1:3308'\nfallback='primary'").contains("fallback")
        );
        let single = head.replace("instances=['a:1', 'b:1']", "address='a:1'");
        let one = Config::parse(&format!("{single}[reader]\nlisten='127.0.0.1:3308'\n"));
        assert!(one.unwrap_err().to_string().contains("needs the replicas"));
    }

    #[test]
    fn users_aws_and_iam_are_checked_together() {
        let base = "[server]\nlisten='127.0.0.1:1'\n[backend]\naddress='db:3306'\n";
        let iam = "[iam]\nhostnames=['p:3306']\nregions=['us-east-1']\n\
                   [[iam.keys]]\naccess_key_id='AKID'\nsecret_access_key='s'\nusers=['*']\n";
        let parse = |tail: &str| Config::parse(&format!("{base}{tail}"));
        let tls = "[server.tls]\ncert='c.pem'\nkey='k.pem'\n";
        let c = parse(&format!(
            "{tls}[[users]]\nname='a'\nsecret='db/a'\niam='required'\n{iam}"
        ))
        .unwrap();
        // Tokens only over TLS: an IAM user without client TLS is a config error.
        assert!(parse(&format!(
            "[[users]]\nname='a'\nsecret='db/a'\niam='required'\n{iam}"
        ))
        .is_err());
        assert_eq!(c.users[0].iam, IamRequirement::Required);
        // One source of credentials per user.
        assert!(parse("[[users]]\nname='a'\n").is_err());
        assert!(parse("[[users]]\nname='a'\npassword='p'\nsecret='s'\n").is_err());
        // IAM users need [iam]; [iam] needs names, regions and keys; only local exists.
        assert!(parse("[[users]]\nname='a'\npassword='p'\niam='required'\n").is_err());
        assert!(parse(&iam.replace("[[iam.keys]]", "mode='local'\n[[iam.keys]]")).is_ok());
        // rds mode logs in to the backend with the token: over TLS only.
        let rds = "[iam]\nmode='rds'\nregions=['us-east-1']\n";
        assert!(parse(rds).is_err());
        assert!(parse(&format!("[backend.tls]\nca='ca.pem'\n{rds}")).is_ok());
        let sts = "[iam]\nmode='sts'\nregions=['us-east-1']\naudience='proxy'\n\
                   [[iam.principals]]\narn='arn:aws:iam::1:role/R'\nusers=['a']\n";
        assert!(parse(sts).is_ok());
        assert!(parse(&sts.replace("audience='proxy'\n", "")).is_err());
        assert!(parse(&sts.replace("users=['a']", "users=[]")).is_err());
        assert!(parse(&sts.replace(":role/R", ":assumed-role/R/session")).is_err());
        assert!(parse(&sts.replace("audience='proxy'", "audience='my proxy'")).is_err());
        let endpoint =
            |e: &str| parse(&sts.replace("[[iam", &format!("sts_endpoints=['{e}']\n[[iam")));
        assert!(endpoint("https://sts.us-east-1.amazonaws.com").is_ok());
        assert!(endpoint("http://127.0.0.1:5000").is_ok());
        assert!(endpoint("http://sts.amazonaws.com").is_err());
        assert!(endpoint("https://sts.amazonaws.com/path").is_err());
        assert!(parse(&iam.replace("'p:3306'", "'p'")).is_err());
        assert!(parse("[iam]\nhostnames=['p:1']\nregions=['r']\n").is_err());
        assert!(parse("[aws]\nregion='eu-west-1'\n").is_ok());
        assert!(parse("[aws]\nregion='eu-west-1'\nrequest_timeout=0\n").is_err());
    }
}
