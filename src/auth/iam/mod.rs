//! IAM authentication of clients: the RDS IAM auth token (a SigV4 presigned URL) sent as a
//! `mysql_clear_password` answer over TLS, parsed (token.rs), checked (local.rs: the
//! signature recomputed from keys Sluice knows) and remembered until it expires
//! (cache.rs). design.md §7 has the modes; `local` is the one built so far.

pub mod cache;
pub mod local;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Deserialize;

use crate::config::IamConfig;
use crate::credentials::secrets::{SecretRef, SecretStore};
use crate::metrics::Metrics;
use local::{AccessKey, Expectations};
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
        }
    }
}

/// An access key as the keys secret lists it: every field required, as in the config,
/// so a misspelt `users` never grants a key every user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    access_key_id: String,
    secret_access_key: String,
    users: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysSecret {
    List(Vec<KeyEntry>),
    Object { keys: Vec<KeyEntry> },
}

/// Access keys by id.
type Keys = Arc<HashMap<String, AccessKey>>;

pub struct IamVerifier {
    expect: Expectations,
    static_keys: HashMap<String, AccessKey>,
    keys_secret: Option<(SecretRef, Arc<SecretStore>)>,
    /// The keys from the secret, with the SecretString they were read from.
    secret_keys: RwLock<Option<(String, Keys)>>,
    cache: cache::VerifiedTokens,
    /// Tokens a client sent without TLS: seen on the network, so never accepted.
    burned: cache::VerifiedTokens,
    metrics: Arc<Metrics>,
}

impl IamVerifier {
    pub fn new(
        config: &IamConfig,
        secrets: Option<Arc<SecretStore>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let static_keys = config
            .keys
            .iter()
            .map(|k| {
                let key = AccessKey {
                    secret_access_key: k.secret_access_key.clone(),
                    users: k.users.clone(),
                };
                (k.access_key_id.clone(), key)
            })
            .collect();
        let keys_secret = config.keys_secret.as_deref().and_then(|id| {
            let store = secrets?;
            Some((
                SecretRef::new(id, config.keys_secret_region.as_deref()),
                store,
            ))
        });
        Self {
            expect: Expectations {
                hostnames: config.hostnames.clone(),
                regions: config.regions.clone(),
                clock_skew: config.clock_skew.get(),
            },
            static_keys,
            keys_secret,
            secret_keys: RwLock::default(),
            cache: cache::VerifiedTokens::new(config.cache_size),
            burned: cache::VerifiedTokens::new(config.cache_size),
            metrics,
        }
    }

    /// Checks a token a client sent as its password for `user`.
    pub async fn verify(&self, raw: &[u8], user: &str) -> Result<(), IamError> {
        let now = SystemTime::now();
        let hash = cache::hash(raw);
        if self.burned.contains(&hash, now) {
            self.count(Err(&IamError::Exposed));
            return Err(IamError::Exposed);
        }
        if let Some(key_id) = self.cache.hit(&hash, user, now) {
            // Still only while its key is known and allowed for the user.
            if self
                .keys(false)
                .await
                .get(&key_id)
                .is_some_and(|k| k.allows(user))
            {
                self.metrics.iam_cache_hits.inc();
                return Ok(());
            }
        }
        let result = self.verify_uncached(raw, user, now).await;
        self.count(result.as_ref().map(|_| ()));
        let token = result?;
        self.cache
            .insert(hash, user, &token.access_key_id, token.expires_at(), now);
        Ok(())
    }

    /// A client sent this token without TLS (a clear-password handshake over plaintext):
    /// it crossed the network in the clear, so it is refused for the rest of its life.
    pub fn burn(&self, raw: &[u8]) {
        if let Ok(token) = Token::parse(raw) {
            let hash = cache::hash(raw);
            let now = SystemTime::now();
            self.burned
                .insert(hash, &token.db_user, "", token.expires_at(), now);
        }
    }

    fn count(&self, result: Result<(), &IamError>) {
        let label = result.map_or_else(IamError::reason, |()| "ok");
        self.metrics
            .iam_verifications
            .with_label_values(&["local", label])
            .inc();
    }

    /// Verifies without the cache; the token when it is good.
    async fn verify_uncached(
        &self,
        raw: &[u8],
        user: &str,
        now: SystemTime,
    ) -> Result<Token, IamError> {
        let token = Token::parse(raw)?;
        let keys = self.keys(false).await;
        match local::verify(&token, user, &keys, &self.expect, now) {
            // A key added to the secret since Sluice read it: read it again (rate-limited).
            Err(IamError::UnknownKey) if self.keys_secret.is_some() => {
                let keys = self.keys(true).await;
                local::verify(&token, user, &keys, &self.expect, now)?;
            }
            result => result?,
        }
        Ok(token)
    }

    /// The static keys and those of the keys secret (read again when `refresh`).
    async fn keys(&self, refresh: bool) -> Keys {
        let Some((secret, store)) = &self.keys_secret else {
            return Arc::new(self.static_keys.clone());
        };
        let cached = self
            .secret_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if refresh {
            if let Some((text, _)) = &cached {
                let _ = store.refetch(secret, text).await;
            }
        }
        let text = match store.get(secret).await {
            Ok(value) => value.current.clone(),
            Err(_) => return cached.map_or_else(|| Arc::new(self.static_keys.clone()), |c| c.1),
        };
        if let Some((seen, keys)) = &cached {
            if *seen == text {
                return keys.clone();
            }
        }
        let mut keys = self.static_keys.clone();
        match serde_json::from_str::<KeysSecret>(&text) {
            Ok(KeysSecret::List(list) | KeysSecret::Object { keys: list })
                if list.iter().all(|k| !k.users.is_empty()) =>
            {
                for k in list {
                    let key = AccessKey {
                        secret_access_key: k.secret_access_key,
                        users: k.users,
                    };
                    keys.insert(k.access_key_id, key);
                }
            }
            _ => {
                // Keep what worked before rather than locking every IAM user out.
                tracing::warn!(secret = %secret.id, "the IAM keys secret is not a JSON list of {{access_key_id, secret_access_key, users}} with users named; keeping the keys read before");
                return cached.map_or_else(|| Arc::new(self.static_keys.clone()), |c| c.1);
            }
        }
        let keys = Arc::new(keys);
        *self.secret_keys.write().unwrap_or_else(|p| p.into_inner()) = Some((text, keys.clone()));
        keys
    }
}
