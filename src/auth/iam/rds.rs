//! `rds` verification: the client's token is an ordinary RDS IAM auth token, signed with
//! the Lambda's own role for the RDS endpoint; Sluice proves it by logging in to that
//! IAM-enabled database as `DBUser` with the token (mysql_clear_password, over TLS). The
//! database, that is AWS, checks the signature and the IAM policy.
//!
//! Each check is a real login, so they are bounded (`rds_max_concurrent_verifications`,
//! connections beyond the pool cap), good verdicts are cached with every other mode's,
//! and a refusal (1045) is remembered for `rds_negative_cache` so that a client retrying
//! a bad token does not turn into a stream of failed logins on the database.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::cache::{self, VerifiedTokens};
use super::local::{check_fields, Expectations};
use super::token::Token;
use super::IamError;
use crate::backend::conn::BackendConn;
use crate::backend::Pool;
use crate::credentials::Login;

pub struct RdsMode {
    pool: Arc<Pool>,
    /// `host:port` tokens must be signed for: the database endpoint.
    endpoint: String,
    permits: Semaphore,
    refused: VerifiedTokens,
    negative_ttl: Duration,
}

impl RdsMode {
    pub fn new(
        pool: Arc<Pool>,
        endpoint: String,
        concurrency: usize,
        negative_ttl: Duration,
        cache_size: usize,
    ) -> Self {
        Self {
            pool,
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
        let wait = self.pool.target().connect_timeout;
        let permit = tokio::time::timeout(wait, self.permits.acquire())
            .await
            .map_err(|_| IamError::RdsUnavailable)?
            .map_err(|_| IamError::RdsUnavailable)?;
        let password = raw.strip_suffix(&[0]).unwrap_or(raw);
        let login = Login {
            user: Arc::from(user),
            password: Arc::from(password),
        };
        let result = BackendConn::check_login(self.pool.target(), &login).await;
        drop(permit);
        match result {
            Ok(()) => Ok(token.expires_at()),
            Err(e) if e.server_code() == Some(1045) => {
                let until = now + self.negative_ttl;
                self.refused.insert(id, user, "", until, now);
                Err(IamError::RdsRefused)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot verify an IAM token at the database");
                Err(IamError::RdsUnavailable)
            }
        }
    }
}
