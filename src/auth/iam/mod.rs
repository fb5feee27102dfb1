//! IAM authentication of clients: a token sent as a `mysql_clear_password` answer over
//! TLS, checked in the configured mode and remembered until it expires
//! (cache.rs):
//! - `local` (local.rs, keys.rs): an RDS IAM auth token (token.rs), its SigV4 signature
//!   recomputed from access keys Sluice knows;
//! - `sts` (sts.rs): a presigned STS GetCallerIdentity request, sent to STS, the caller
//!   mapped to database users;
//! - `rds` (rds.rs): an RDS IAM auth token for the database itself, proved by logging in
//!   there with it.

pub mod cache;
pub mod keys;
pub mod local;
pub mod rds;
pub mod sts;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{IamConfig, IamMode};
use crate::credentials::secrets::SecretStore;
use crate::metrics::Metrics;
use keys::KeyRing;
use local::Expectations;
use sts::StsRequest;
pub use token::Token;

/// Why a token was refused. The client only ever sees 1045; the reason goes to the
/// metrics and a debug log line (never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token is for another database user")]
    WrongUser,
    #[error("token is for another host or port")]
    WrongHost,
    #[error("token is signed for a region not allowed here")]
    WrongRegion,
    #[error("token is signed for another service")]
    WrongService,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token has expired")]
    Expired,
    #[error("token is signed with an unknown access key")]
    UnknownKey,
    #[error("token's signature does not match")]
    BadSignature,
    #[error("token's access key may not log in as this user")]
    KeyNotAllowed,
    #[error("token was sent without TLS before, so it is refused")]
    Exposed,
    #[error("STS refused the request")]
    StsRefused,
    #[error("STS could not be reached")]
    StsUnavailable,
    #[error("the caller is not allowed to log in as this user")]
    PrincipalNotAllowed,
    #[error("the database refused the token")]
    RdsRefused,
    #[error("the database could not be asked")]
    RdsUnavailable,
}

impl IamError {
    /// The `result` label of `sluice_iam_verifications_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::WrongUser => "wrong_user",
            Self::WrongHost => "wrong_host",
            Self::WrongRegion => "wrong_region",
            Self::WrongService => "wrong_service",
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::KeyNotAllowed => "key_not_allowed",
            Self::Exposed => "exposed",
            Self::StsRefused => "sts_refused",
            Self::StsUnavailable => "sts_unavailable",
            Self::PrincipalNotAllowed => "principal_not_allowed",
            Self::RdsRefused => "rds_refused",
            Self::RdsUnavailable => "rds_unavailable",
        }
    }
}

/// STS calls in flight at once, at most.
const STS_CONCURRENCY: usize = 16;

/// How tokens are checked, with what each mode needs.
enum Mode {
    Local(KeyRing),
    Sts(Box<StsMode>),
    Rds(Box<rds::RdsMode>),
}

struct StsMode {
    client: sts::HttpClient,
    audience: String,
    /// `scheme://host[:port]` Sluice may send requests to.
    endpoints: Vec<String>,
    /// Canonical principal ARN → database users it may log in as.
    principals: HashMap<String, Vec<String>>,
    timeout: std::time::Duration,
    /// STS calls at once, at most: each is made for a client nobody has authenticated.
    permits: tokio::sync::Semaphore,
}

impl StsMode {
    /// What Sluice checks before sending a request to STS.
    fn check(
        &self,
        request: &StsRequest,
        expect: &Expectations,
        now: SystemTime,
    ) -> Result<(), IamError> {
        if !self.endpoints.contains(&request.origin) {
            return Err(IamError::WrongHost);
        }
        if !expect.regions.contains(&request.region) {
            return Err(IamError::WrongRegion);
        }
        expect.valid_at(request.signed_at, request.expires_at(), now)
    }

    fn allows(&self, principal: &str, user: &str) -> bool {
        self.principals
            .get(principal)
            .is_some_and(|users| users.iter().any(|u| u == "*" || u == user))
    }
}

/// A good token: who vouched for it (an access key id, or a principal ARN) and until when.
struct Verdict {
    by: String,
    until: SystemTime,
}

pub struct IamVerifier {
    mode: Mode,
    expect: Expectations,
    cache: cache::VerifiedTokens,
    /// Tokens a client sent without TLS: seen on the network, so never accepted.
    burned: cache::VerifiedTokens,
    metrics: Arc<Metrics>,
}

impl IamVerifier {
    /// `database` is the backend (the `rds` mode logs in there), `request_timeout` bounds
    /// calls to STS.
    pub fn new(
        config: &IamConfig,
        secrets: Option<Arc<SecretStore>>,
        database: Arc<dyn rds::DatabaseLogin>,
        request_timeout: std::time::Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mode = match config.mode {
            IamMode::Sts => Mode::Sts(Box::new(StsMode {
                client: sts::client(),
                audience: config.audience.clone().unwrap_or_default(),
                endpoints: config.sts_endpoints(),
                principals: config
                    .principals
                    .iter()
                    .map(|p| (sts::principal(&p.arn), p.users.clone()))
                    .collect(),
                timeout: request_timeout,
                permits: tokio::sync::Semaphore::new(STS_CONCURRENCY),
            })),
            IamMode::Rds => {
                let endpoint = config
                    .rds_endpoint
                    .clone()
                    .unwrap_or_else(|| database.endpoint());
                Mode::Rds(Box::new(rds::RdsMode::new(
                    database,
                    endpoint,
                    config.rds_max_concurrent_verifications,
                    config.rds_negative_cache.get(),
                    config.cache_size,
                )))
            }
            IamMode::Local => Mode::Local(KeyRing::new(config, secrets)),
        };
        Self {
            mode,
            expect: Expectations {
                hostnames: config.hostnames.clone(),
                regions: config.regions.clone(),
                clock_skew: config.clock_skew.get(),
            },
            cache: cache::VerifiedTokens::new(config.cache_size),
            burned: cache::VerifiedTokens::new(config.cache_size),
            metrics,
        }
    }

    fn mode_label(&self) -> &'static str {
        match self.mode {
            Mode::Local(_) => "local",
            Mode::Sts(_) => "sts",
            Mode::Rds(_) => "rds",
        }
    }

    /// Checks a token a client sent as its password for `user`.
    pub async fn verify(&self, raw: &[u8], user: &str) -> Result<(), IamError> {
        let now = SystemTime::now();
        let Some(id) = self.identity(raw) else {
            // It does not even parse: say why.
            let result = self.verify_uncached(raw, user, now, None).await.map(|_| ());
            self.count(result.as_ref().map(|_| ()));
            return result;
        };
        if self.burned.contains(&id, now) {
            self.count(Err(&IamError::Exposed));
            return Err(IamError::Exposed);
        }
        if let Some(by) = self.cache.hit(&id, user, now) {
            // Still only while whoever vouched for it may log in as the user.
            if self.still_allowed(&by, user).await {
                self.metrics.iam_cache_hits.inc();
                return Ok(());
            }
        }
        let result = self.verify_uncached(raw, user, now, Some(id)).await;
        self.count(result.as_ref().map(|_| ()));
        let verdict = result?;
        self.cache.insert(id, user, &verdict.by, verdict.until, now);
        Ok(())
    }

    /// What identifies a signed request whatever its encoding (a trailing NUL, parameter
    /// order, the case of percent-escapes, the base64 form): its signing key and its
    /// signature. The caches are keyed by it.
    fn identity(&self, raw: &[u8]) -> Option<cache::TokenHash> {
        let (key, signature) = match &self.mode {
            Mode::Local(_) | Mode::Rds(_) => {
                let t = Token::parse(raw).ok()?;
                (t.access_key_id, t.signature)
            }
            Mode::Sts(_) => {
                let r = StsRequest::parse(raw).ok()?;
                (r.access_key_id, r.signature)
            }
        };
        let id = format!("{key}/{}", signature.to_ascii_lowercase());
        Some(cache::hash(id.as_bytes()))
    }

    /// A client sent this token for `user` without TLS (a clear-password handshake over
    /// plaintext): it crossed the network in the clear, so it is refused for the rest of
    /// its life. Only tokens that could have logged in are remembered (in `local` mode,
    /// verified; otherwise every field but the signature checked), so made-up tokens
    /// cannot crowd real ones out.
    pub async fn burn(&self, raw: &[u8], user: &str) {
        let now = SystemTime::now();
        let Some(id) = self.identity(raw) else {
            return;
        };
        let until = match &self.mode {
            Mode::Local(_) => self
                .verify_uncached(raw, user, now, None)
                .await
                .map(|v| v.until),
            Mode::Rds(rds) => Token::parse(raw).and_then(|t| {
                rds.check(&t, user, &self.expect, now)?;
                Ok(t.expires_at())
            }),
            Mode::Sts(sts) => StsRequest::parse(raw).and_then(|r| {
                sts.check(&r, &self.expect, now)?;
                Ok(r.expires_at())
            }),
        };
        if let Ok(until) = until {
            let latest = now + std::time::Duration::from_secs(token::MAX_EXPIRES);
            self.burned.insert_if_room(
                id,
                user,
                "",
                until.min(latest + self.expect.clock_skew),
                now,
            );
        }
    }

    fn count(&self, result: Result<(), &IamError>) {
        let label = result.map_or_else(IamError::reason, |()| "ok");
        self.metrics
            .iam_verifications
            .with_label_values(&[self.mode_label(), label])
            .inc();
    }

    async fn still_allowed(&self, by: &str, user: &str) -> bool {
        match &self.mode {
            Mode::Local(keys) => keys
                .get(false)
                .await
                .get(by)
                .is_some_and(|k| k.allows(user)),
            Mode::Sts(sts) => sts.allows(by, user),
            // The database vouched for this user's token; nothing here can revoke it.
            Mode::Rds(_) => true,
        }
    }

    /// Verifies without the cache.
    async fn verify_uncached(
        &self,
        raw: &[u8],
        user: &str,
        now: SystemTime,
        id: Option<cache::TokenHash>,
    ) -> Result<Verdict, IamError> {
        match &self.mode {
            Mode::Local(keys) => {
                let token = Token::parse(raw)?;
                let known = keys.get(false).await;
                match local::verify(&token, user, &known, &self.expect, now) {
                    // A key added to the secret since Sluice read it: read it again.
                    Err(IamError::UnknownKey) if keys.has_secret() => {
                        let known = keys.get(true).await;
                        local::verify(&token, user, &known, &self.expect, now)?;
                    }
                    result => result?,
                }
                Ok(Verdict {
                    until: token.expires_at(),
                    by: token.access_key_id,
                })
            }
            Mode::Rds(rds) => Ok(Verdict {
                until: rds.verify(raw, user, &self.expect, now, id).await?,
                by: "rds".into(),
            }),
            Mode::Sts(sts) => {
                let request = StsRequest::parse(raw)?;
                sts.check(&request, &self.expect, now)?;
                let _permit = crate::clock::timeout(sts.timeout, sts.permits.acquire())
                    .await
                    .map_err(|_| IamError::StsUnavailable)?
                    .map_err(|_| IamError::StsUnavailable)?;
                let arn = sts::caller(&sts.client, &request, &sts.audience, sts.timeout).await?;
                let principal = sts::principal(&arn);
                if !sts.allows(&principal, user) {
                    tracing::debug!(%principal, user, "STS caller not mapped to this user");
                    return Err(IamError::PrincipalNotAllowed);
                }
                Ok(Verdict {
                    by: principal,
                    until: request.expires_at(),
                })
            }
        }
    }
}
