//! The access keys `local` mode checks signatures with: the config's `[[iam.keys]]`,
//! plus those listed in `iam.keys_secret`, re-read with the other secrets and at once
//! when a token names a key Sluice does not know.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use secrecy::ExposeSecret;
use serde::Deserialize;

use super::local::AccessKey;
use crate::config::IamConfig;
use crate::credentials::secrets::{SecretRef, SecretStore};

/// Access keys by id.
pub type Keys = Arc<HashMap<String, AccessKey>>;

/// An access key as the keys secret lists it: every field required, as in the config,
/// so a misspelt `users` never grants a key every user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    access_key_id: String,
    secret_access_key: secrecy::SecretString,
    users: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysSecret {
    List(Vec<KeyEntry>),
    Object { keys: Vec<KeyEntry> },
}

pub struct KeyRing {
    static_keys: Keys,
    secret: Option<(SecretRef, Arc<SecretStore>)>,
    /// The keys from the secret (static ones included), with the SecretString they were
    /// read from.
    from_secret: RwLock<Option<(String, Keys)>>,
}

impl KeyRing {
    pub fn new(config: &IamConfig, secrets: Option<Arc<SecretStore>>) -> Self {
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
        let secret = config.keys_secret.as_deref().and_then(|id| {
            let store = secrets?;
            Some((
                SecretRef::new(id, config.keys_secret_region.as_deref()),
                store,
            ))
        });
        Self {
            static_keys: Arc::new(static_keys),
            secret,
            from_secret: RwLock::default(),
        }
    }

    /// Whether keys come from a secret too (worth re-reading for an unknown key).
    pub fn has_secret(&self) -> bool {
        self.secret.is_some()
    }

    /// Every key Sluice knows now; the secret read again first when `refresh`
    /// (rate-limited by the secret store).
    pub async fn get(&self, refresh: bool) -> Keys {
        let Some((secret, store)) = &self.secret else {
            return self.static_keys.clone();
        };
        let cached = self.from_secret.read().clone();
        if refresh {
            if let Some((text, _)) = &cached {
                let _ = store.refetch(secret, text).await;
            }
        }
        let fallback = |cached: Option<(String, Keys)>| {
            cached.map_or_else(|| self.static_keys.clone(), |c| c.1)
        };
        let text = match store.get(secret).await {
            Ok(value) => value.current.clone(),
            Err(_) => return fallback(cached),
        };
        if let Some((seen, keys)) = &cached {
            if *seen == text {
                return keys.clone();
            }
        }
        let list = match serde_json::from_str::<KeysSecret>(&text) {
            Ok(KeysSecret::List(list) | KeysSecret::Object { keys: list })
                if list.iter().all(|k| {
                    !k.users.is_empty()
                        && !k.access_key_id.is_empty()
                        && !k.secret_access_key.expose_secret().is_empty()
                }) =>
            {
                list
            }
            _ => {
                // Keep what worked before rather than locking every IAM user out.
                tracing::warn!(secret = %secret.id, "the IAM keys secret is not a JSON list of {{access_key_id, secret_access_key, users}}, all non-empty; keeping the keys read before");
                return fallback(cached);
            }
        };
        let mut keys = (*self.static_keys).clone();
        for k in list {
            let key = AccessKey {
                secret_access_key: k.secret_access_key,
                users: k.users,
            };
            keys.insert(k.access_key_id, key);
        }
        let keys = Arc::new(keys);
        *self.from_secret.write() = Some((text, keys.clone()));
        keys
    }
}
