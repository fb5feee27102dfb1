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
        }
    }
}

/// An access key as the keys secret lists it.
#[derive(Deserialize)]
struct KeyEntry {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default = "any_user")]
    users: Vec<String>,
}

fn any_user() -> Vec<String> {
    vec!["*".into()]
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
            metrics,
        }
    }

    /// Checks a token a client sent as its password for `user`.
    pub async fn verify(&self, raw: &[u8], user: &str) -> Result<(), IamError> {
        let now = SystemTime::now();
        let hash = cache::hash(raw);
        if self.cache.hit(&hash, user, now) {
            self.metrics.iam_cache_hits.inc();
            return Ok(());
        }
        let result = self.verify_uncached(raw, user, now).await;
        let label = result.as_ref().map_or_else(IamError::reason, |_| "ok");
        self.metrics
            .iam_verifications
            .with_label_values(&["local", label])
            .inc();
        let until = result?;
        self.cache.insert(hash, user, until, now);
        Ok(())
    }

    /// Verifies without the cache; when the token is good, until when.
    async fn verify_uncached(
        &self,
        raw: &[u8],
        user: &str,
        now: SystemTime,
    ) -> Result<SystemTime, IamError> {
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
        Ok(token.expires_at())
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
            Ok(KeysSecret::List(list) | KeysSecret::Object { keys: list }) => {
                for k in list {
                    let key = AccessKey {
                        secret_access_key: k.secret_access_key,
                        users: k.users,
                    };
                    keys.insert(k.access_key_id, key);
                }
            }
            Err(_) => {
                tracing::warn!(secret = %secret.id, "the IAM keys secret is not a JSON list of {{access_key_id, secret_access_key, users}}");
            }
        }
        let keys = Arc::new(keys);
        *self.secret_keys.write().unwrap_or_else(|p| p.into_inner()) = Some((text, keys.clone()));
        keys
    }
}
