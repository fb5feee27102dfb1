//! Configuration of what comes from AWS: users whose backend credentials are Secrets
//! Manager secrets, the SDK settings, and IAM authentication of clients.

use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{ConfigError, Seconds};

/// A database user clients may log in as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Name clients log in with (and the backend user, unless the secret names another).
    pub name: String,
    /// Static password: checks password clients and logs in to the backend. Exactly one
    /// of `password` and `secret`.
    pub password: Option<secrecy::SecretString>,
    /// Secrets Manager secret (ARN or name) whose SecretString is JSON with `username`
    /// and `password`, as RDS Proxy expects; other keys are ignored.
    pub secret: Option<String>,
    /// Region of the secret. Default: the region in its ARN, else `aws.region`.
    pub secret_region: Option<String>,
    /// `required`: clients log in with an IAM auth token (over TLS) instead of a
    /// password. `disabled` (default): password only.
    #[serde(default)]
    pub iam: IamRequirement,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IamRequirement {
    #[default]
    Disabled,
    Required,
}

/// The AWS SDK: loaded once, with the standard credential chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region for Secrets Manager. Default: the SDK's chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// Endpoint for every AWS call (a VPC endpoint, or an emulator in tests). Default:
    /// `AWS_ENDPOINT_URL`, else AWS's own.
    pub endpoint_url: Option<String>,
    /// Seconds between background refreshes of every secret in use.
    #[serde(default = "default_secret_refresh")]
    pub secret_refresh_interval: Seconds,
    /// Least seconds between two on-demand re-fetches of one secret (after the backend
    /// refused its password, or a client's password matched no known version).
    #[serde(default = "default_secret_refetch")]
    pub secret_refetch_min_interval: Seconds,
    /// Seconds one Secrets Manager call may take.
    #[serde(default = "default_aws_timeout")]
    pub request_timeout: Seconds,
    /// Seconds after a rotation (the new AWSCURRENT version's creation, or when Sluice saw
    /// it become current if later) during which
    /// password clients may still log in with AWSPREVIOUS. 0: the old password stops
    /// working at once.
    #[serde(default = "default_previous_grace")]
    pub previous_password_grace: Seconds,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            secret_refresh_interval: default_secret_refresh(),
            secret_refetch_min_interval: default_secret_refetch(),
            request_timeout: default_aws_timeout(),
            previous_password_grace: default_previous_grace(),
        }
    }
}

/// How IAM auth tokens are checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    #[serde(default)]
    pub mode: IamMode,
    /// `host:port` names clients reach Sluice by; a token must be signed for one of them.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Regions a token may be signed for.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Seconds of clock difference allowed between the token's signer and Sluice.
    #[serde(default = "default_clock_skew")]
    pub clock_skew: Seconds,
    /// Access keys whose signatures Sluice checks (`local` mode).
    #[serde(default)]
    pub keys: Vec<IamKeyConfig>,
    /// A Secrets Manager secret with more keys: a JSON list of objects like `keys` (or
    /// `{"keys": [...]}`), re-read with the other secrets.
    pub keys_secret: Option<String>,
    pub keys_secret_region: Option<String>,
    /// Verified tokens remembered (by SHA-256) until they expire.
    #[serde(default = "default_token_cache")]
    pub cache_size: usize,
    /// `sts` mode: the value clients sign in their request's `x-sluice-server-id`
    /// header, naming this proxy (a token made for another service does not work here).
    pub audience: Option<String>,
    /// `sts` mode: `scheme://host[:port]` of the STS endpoints Sluice may send requests
    /// to. Default: `https://sts.amazonaws.com` and `https://sts.<region>.amazonaws.com`
    /// for each of `regions`.
    #[serde(default)]
    pub sts_endpoints: Vec<String>,
    /// `sts` mode: which IAM principals (roles, users) may log in as which users.
    #[serde(default)]
    pub principals: Vec<IamPrincipalConfig>,
    /// `rds` mode: `host:port` the tokens must be signed for (the RDS endpoint).
    /// Default: `backend.address` (the first of `backend.instances`).
    pub rds_endpoint: Option<String>,
    /// `rds` mode: logins to the database to verify tokens at once, at most (connections
    /// beyond the pool cap: keep `max_connections_percent` low enough for them).
    #[serde(default = "default_rds_concurrency")]
    pub rds_max_concurrent_verifications: usize,
    /// `rds` mode: seconds a token the database refused is refused without asking again.
    #[serde(default = "default_rds_negative")]
    pub rds_negative_cache: Seconds,
}

/// An IAM principal allowed in `sts` mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPrincipalConfig {
    /// `arn:aws:iam::<account>:role/<name>` (a session of the role is the role) or
    /// `arn:aws:iam::<account>:user/<name>`.
    pub arn: String,
    /// Database users it may log in as; `["*"]` for every IAM user.
    pub users: Vec<String>,
}

impl IamConfig {
    /// The STS endpoints allowed, lowercase.
    pub fn sts_endpoints(&self) -> Vec<String> {
        if !self.sts_endpoints.is_empty() {
            return self
                .sts_endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_ascii_lowercase())
                .collect();
        }
        std::iter::once("https://sts.amazonaws.com".to_string())
            .chain(
                self.regions
                    .iter()
                    .map(|r| format!("https://sts.{r}.amazonaws.com")),
            )
            .collect()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IamMode {
    /// Recompute the SigV4 signature from access keys Sluice knows.
    #[default]
    Local,
    /// Log in to the IAM-enabled RDS backend with the token; success verifies it.
    Rds,
    /// A presigned STS GetCallerIdentity request, sent to STS; the caller is mapped to
    /// users by `principals`.
    Sts,
}

/// An access key for `local` verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamKeyConfig {
    pub access_key_id: String,
    pub secret_access_key: secrecy::SecretString,
    /// Database users this key may log in as; `["*"]` for every IAM user.
    pub users: Vec<String>,
}

/// Checks users, `[aws]` and `[iam]` together.
pub(super) fn validate(
    users: &[UserConfig],
    aws: &AwsConfig,
    iam: Option<&IamConfig>,
    client_tls: bool,
    backend_tls: bool,
) -> Result<(), ConfigError> {
    validate_users(users)?;
    validate_aws(aws)?;
    let iam_users = users.iter().any(|u| u.iam == IamRequirement::Required);
    if iam_users && !client_tls {
        return bad(
            "users with iam = \"required\" need [server.tls]: tokens are only accepted over TLS"
                .into(),
        );
    }
    let Some(iam) = iam else {
        if iam_users {
            return bad("users with iam = \"required\" need an [iam] table".into());
        }
        return Ok(());
    };
    if iam.regions.is_empty() {
        return bad("iam.regions must name at least one".into());
    }
    match iam.mode {
        IamMode::Local => validate_local(iam)?,
        IamMode::Sts => validate_sts(iam)?,
        IamMode::Rds => validate_rds(iam, backend_tls)?,
    }
    if iam.clock_skew.get() > std::time::Duration::from_secs(300) {
        return bad("iam.clock_skew must be at most 300".into());
    }
    if iam.cache_size == 0 {
        return bad("iam.cache_size must be at least 1".into());
    }
    Ok(())
}

fn bad(msg: String) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid(msg))
}

fn validate_users(users: &[UserConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for u in users {
        if u.name.is_empty() || !seen.insert(u.name.as_str()) {
            return bad(format!("user {:?} is empty or listed twice", u.name));
        }
        match (&u.password, &u.secret) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return bad(format!(
                    "user {:?} needs exactly one of password and secret",
                    u.name
                ))
            }
        }
        if u.secret.as_deref() == Some("") {
            return bad(format!("user {:?}: secret is empty", u.name));
        }
    }
    Ok(())
}

fn validate_aws(aws: &AwsConfig) -> Result<(), ConfigError> {
    for (name, d) in [
        ("aws.secret_refresh_interval", aws.secret_refresh_interval),
        ("aws.request_timeout", aws.request_timeout),
    ] {
        if d.get().is_zero() {
            return bad(format!("{name} must be greater than 0"));
        }
    }
    if aws.secret_refetch_min_interval.get() < std::time::Duration::from_secs(1) {
        // The rate limit is what keeps wrong passwords from hammering Secrets Manager.
        return bad("aws.secret_refetch_min_interval must be at least 1".into());
    }
    Ok(())
}

/// Local mode checks tokens with keys Sluice holds, for the endpoints it names.
fn validate_local(iam: &IamConfig) -> Result<(), ConfigError> {
    if iam.hostnames.is_empty() {
        return bad("iam.hostnames must name at least one host:port".into());
    }
    for h in &iam.hostnames {
        if h.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return bad(format!("iam.hostnames entry {h:?} must be host:port"));
        }
    }
    if iam.keys.is_empty() && iam.keys_secret.is_none() {
        return bad("iam needs keys or keys_secret in local mode".into());
    }
    for k in &iam.keys {
        if k.access_key_id.is_empty()
            || k.secret_access_key.expose_secret().is_empty()
            || k.users.is_empty()
        {
            return bad("iam.keys entries need access_key_id, secret_access_key and users".into());
        }
    }
    Ok(())
}

/// STS mode asks STS who signed each token.
fn validate_sts(iam: &IamConfig) -> Result<(), ConfigError> {
    // Sent as a header value: visible ASCII only.
    let audience = iam.audience.as_deref().unwrap_or_default();
    if audience.is_empty() || !audience.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("iam.audience (visible ASCII, no spaces) is needed in sts mode".into());
    }
    if iam.principals.is_empty() || iam.principals.iter().any(|p| p.users.is_empty()) {
        return bad("iam.principals must list each principal's users in sts mode".into());
    }
    for p in &iam.principals {
        if !is_principal_arn(&p.arn) {
            return bad(format!(
                "iam.principals arn {:?} must be arn:<partition>:iam::<account>:role/<name> or user/<name>",
                p.arn
            ));
        }
    }
    for e in &iam.sts_endpoints {
        if !is_sts_origin(e) {
            return bad(format!(
                "iam.sts_endpoints entry {e:?} must be https://host[:port] (http only on loopback)"
            ));
        }
    }
    Ok(())
}

/// RDS mode has the database itself check each token.
fn validate_rds(iam: &IamConfig, backend_tls: bool) -> Result<(), ConfigError> {
    if !backend_tls {
        // RDS takes IAM tokens as clear-password logins, over TLS only.
        return bad("iam.mode \"rds\" needs [backend.tls]".into());
    }
    if let Some(e) = &iam.rds_endpoint {
        if e.rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return bad(format!("iam.rds_endpoint {e:?} must be host:port"));
        }
    }
    if iam.rds_max_concurrent_verifications == 0 {
        return bad("iam.rds_max_concurrent_verifications must be at least 1".into());
    }
    Ok(())
}

fn default_secret_refresh() -> Seconds {
    Seconds::from_secs(300)
}
fn default_secret_refetch() -> Seconds {
    Seconds::from_secs(5)
}
fn default_previous_grace() -> Seconds {
    Seconds::from_secs(900)
}
fn default_aws_timeout() -> Seconds {
    Seconds::from_secs(5)
}
fn default_clock_skew() -> Seconds {
    Seconds::from_secs(60)
}
/// A role or user ARN (a session's `assumed-role` ARN would stand for the whole role).
fn is_principal_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(
        parts[..],
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty()
                && !account.is_empty()
                && (resource.starts_with("role/") || resource.starts_with("user/"))
    )
}

/// `https://host[:port]`, or `http://` to a loopback address (tests, local emulators):
/// the request is a bearer credential, never sent in clear over a network.
fn is_sts_origin(e: &str) -> bool {
    let (scheme, host) = match e.split_once("://") {
        Some((s, rest)) => (s, rest.trim_end_matches('/')),
        None => return false,
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@']) {
        return false;
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    match scheme {
        "https" => true,
        "http" => matches!(name, "127.0.0.1" | "localhost" | "[::1]"),
        _ => false,
    }
}

fn default_rds_concurrency() -> usize {
    4
}
fn default_rds_negative() -> Seconds {
    Seconds::from_secs(5)
}
fn default_token_cache() -> usize {
    10_000
}
