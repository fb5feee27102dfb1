//! `rds` verification: the client's token is an ordinary RDS IAM auth token, signed with
//! the Lambda's own role for the RDS endpoint; Sluice proves it by logging in to that
//! IAM-enabled database as `DBUser` with the token (mysql_clear_password, over TLS). The
//! database, that is AWS, checks the signature and the IAM policy.
//!
//! Each check is a real login, so they are bounded (`rds_max_concurrent_verifications`,
//! connections beyond the pool cap), good verdicts are cached with every other mode's,
//! and a refusal (1045) is remembered for `rds_negative_cache` so that a client retrying
//! a bad token does not turn into a stream of failed logins on the database.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::cache::{self, VerifiedTokens};
use super::local::{check_fields, Expectations};
use super::token::Token;
use super::IamError;
use crate::credentials::Login;

/// The database `rds` mode logs in to. The backend layer provides it: verifying needs a
/// verdict, not a connection, and this layer sits below the one that makes them.
pub trait DatabaseLogin: Send + Sync {
    /// `host:port` of the database: what tokens must be signed for unless configured.
    fn endpoint(&self) -> String;
    /// How long one login may take.
    fn login_timeout(&self) -> Duration;
    /// Logs in as `login` and leaves at once.
    fn check<'a>(
        &'a self,
        login: &'a Login,
    ) -> Pin<Box<dyn Future<Output = LoginVerdict> + Send + 'a>>;
}

/// What the database said to one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginVerdict {
    Accepted,
    /// Access denied (1045): the token is bad, expired or not allowed for the user.
    Refused,
    /// No verdict (unreachable, timed out, another error), with the reason for the log.
    Failed(String),
}

pub struct RdsMode {
    database: Arc<dyn DatabaseLogin>,
    /// `host:port` tokens must be signed for: the database endpoint.
    endpoint: String,
    permits: Semaphore,
    refused: VerifiedTokens,
    negative_ttl: Duration,
}

impl RdsMode {
    pub fn new(
        database: Arc<dyn DatabaseLogin>,
        endpoint: String,
        concurrency: usize,
        negative_ttl: Duration,
        cache_size: usize,
    ) -> Self {
        Self {
            database,
            endpoint,
            permits: Semaphore::new(concurrency.max(1)),
            refused: VerifiedTokens::new(cache_size),
            negative_ttl,
        }
    }

    /// What Sluice checks itself before sending a token to the database.
    pub fn check(
        &self,
        token: &Token,
        user: &str,
        expect: &Expectations,
        now: SystemTime,
    ) -> Result<(), IamError> {
        // Only tokens for this database are sent to it.
        let expect = Expectations {
            hostnames: vec![self.endpoint.clone()],
            ..expect.clone()
        };
        check_fields(token, user, &expect, now)
    }

    /// Checks `raw` for `user`; until when it is good. `id` is the token's identity
    /// (signing key and signature), which refusals are remembered by.
    pub async fn verify(
        &self,
        raw: &[u8],
        user: &str,
        expect: &Expectations,
        now: SystemTime,
        id: Option<cache::TokenHash>,
    ) -> Result<SystemTime, IamError> {
        let token = Token::parse(raw)?;
        self.check(&token, user, expect, now)?;
        let id = id.unwrap_or_else(|| cache::hash(raw));
        if self.refused.contains(&id, now) {
            return Err(IamError::RdsRefused);
        }
        // Clients nobody has authenticated yet wait here: not for longer than a login.
        let wait = self.database.login_timeout();
        let permit = crate::clock::timeout(wait, self.permits.acquire())
            .await
            .map_err(|_| IamError::RdsUnavailable)?
            .map_err(|_| IamError::RdsUnavailable)?;
        let password = raw.strip_suffix(&[0]).unwrap_or(raw);
        let login = Login {
            user: Arc::from(user),
            password: crate::credentials::password(password),
        };
        let verdict = self.database.check(&login).await;
        drop(permit);
        match verdict {
            LoginVerdict::Accepted => Ok(token.expires_at()),
            LoginVerdict::Refused => {
                let until = now + self.negative_ttl;
                self.refused.insert(id, user, "", until, now);
                Err(IamError::RdsRefused)
            }
            LoginVerdict::Failed(reason) => {
                tracing::warn!(error = %reason, "cannot verify an IAM token at the database");
                Err(IamError::RdsUnavailable)
            }
        }
    }
}
