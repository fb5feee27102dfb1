//! AWS Secrets Manager: the SDK loaded once, one client per region, and a cache of the
//! secrets in use, refreshed in the background and re-fetched on demand (rate-limited)
//! when a password stops working. Secret values never reach a log line.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_smithy_http_client::tls;

use super::CredentialsError;
use crate::config::AwsConfig;
use crate::metrics::Metrics;

/// The SecretString of a secret's AWSCURRENT version, and of AWSPREVIOUS when there is one.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretVersions {
    pub current: String,
    /// When the AWSCURRENT version was created (about when the rotation that made it
    /// current ran); None when Secrets Manager did not say.
    pub current_since: Option<SystemTime>,
    pub previous: Option<String>,
}

/// A secret as configured: its id (ARN or name) and the region to ask.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub id: String,
    pub region: Option<String>,
}

impl SecretRef {
    /// The region named in an ARN (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`)
    /// wins over the configured one.
    pub fn new(id: &str, region: Option<&str>) -> Self {
        let from_arn = id
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(2))
            .filter(|r| !r.is_empty());
        Self {
            id: id.to_string(),
            region: from_arn.or(region).map(str::to_string),
        }
    }
}

#[derive(Default)]
struct Entry {
    value: Option<Arc<SecretVersions>>,
    fetched: Option<Instant>,
    /// The last read failed: with nothing cached, logins fail at once for a moment
    /// instead of each waiting for another timeout.
    failed: bool,
    /// One fetch of a secret at a time: a storm of logins waits for the first.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// The AWSPENDING version as last read, and when.
    pending: Option<(Option<String>, Instant)>,
}

pub struct SecretStore {
    sdk: aws_config::SdkConfig,
    clients: Mutex<HashMap<Option<String>, Client>>,
    entries: Mutex<HashMap<SecretRef, Entry>>,
    refetch_min: Duration,
    metrics: Arc<Metrics>,
}

impl SecretStore {
    /// Loads the SDK configuration (standard credential chain; region and endpoint from
    /// `config` when set). Nothing is fetched yet: an unreachable Secrets Manager does not
    /// stop Sluice from starting.
    pub async fn load(config: &AwsConfig, metrics: Arc<Metrics>) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(config.request_timeout.get())
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts);
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self {
            sdk: loader.load().await,
            clients: Mutex::default(),
            entries: Mutex::default(),
            refetch_min: config.secret_refetch_min_interval.get(),
            metrics,
        }
    }

    /// The secret's versions: cached, or fetched now (once, however many ask at a time).
    pub async fn get(&self, secret: &SecretRef) -> Result<Arc<SecretVersions>, CredentialsError> {
        let fetching = {
            let mut entries = self.lock();
            let entry = entries.entry(secret.clone()).or_default();
            if let Some(value) = &entry.value {
                return Ok(value.clone());
            }
            entry.fetching.clone()
        };
        let _one = fetching.lock().await;
        if let Some(e) = self.lock().get(secret) {
            if let Some(value) = &e.value {
                return Ok(value.clone());
            }
            if e.failed && e.fetched.is_some_and(|t| t.elapsed() < self.refetch_min) {
                return Err(CredentialsError::Unavailable {
                    secret: secret.id.clone(),
                });
            }
        }
        self.fetch_and_store(secret).await.map(|(value, _)| value)
    }

    /// Called when the value whose AWSCURRENT was `used` stopped working (the backend
    /// refused its password, or a client's matched no known version): reads the secret
    /// again, unless it was read less than `secret_refetch_min_interval` ago. True when
    /// the cached value is now another one (worth a retry).
    pub async fn refetch(&self, secret: &SecretRef, used: &str) -> Result<bool, CredentialsError> {
        let fetching = self.lock().get(secret).map(|e| e.fetching.clone());
        let Some(fetching) = fetching else {
            return self.get(secret).await.map(|v| v.current != used);
        };
        let _one = fetching.lock().await;
        let (cached, recent) = match self.lock().get(secret) {
            Some(e) => (
                e.value.clone(),
                e.fetched.is_some_and(|t| t.elapsed() < self.refetch_min),
            ),
            None => (None, false),
        };
        if cached.is_some_and(|c| c.current != used) {
            // Someone else read the new value already.
            return Ok(true);
        }
        if recent {
            return Ok(false);
        }
        self.fetch_and_store(secret)
            .await
            .map(|(value, _)| value.current != used)
    }

    /// The AWSPENDING version, if the secret has one: a rotation between changing the
    /// database (setSecret) and making the new value current (finishSecret). Read at most
    /// every `secret_refetch_min_interval`.
    pub async fn pending(&self, secret: &SecretRef) -> Option<String> {
        let cached = self.lock().get(secret).and_then(|e| e.pending.clone());
        if let Some((value, at)) = cached {
            if at.elapsed() < self.refetch_min {
                return value;
            }
        }
        let client = self.client(secret.region.as_deref());
        let value = match Box::pin(read_stage(&client, secret, "AWSPENDING")).await {
            Ok(v) => v.map(|(text, _)| text),
            Err(e) => {
                tracing::warn!(secret = %secret.id, error = %e, "cannot read AWSPENDING");
                None
            }
        };
        let mut entries = self.lock();
        entries.entry(secret.clone()).or_default().pending = Some((value.clone(), Instant::now()));
        value
    }

    /// Re-reads every secret in use (the background refresh). Failures are logged and
    /// counted; the cached values stay in use. A secret being read on demand right now is
    /// skipped: that read is newer.
    pub async fn refresh_all(&self) {
        let secrets: Vec<(SecretRef, Arc<tokio::sync::Mutex<()>>)> = self
            .lock()
            .iter()
            .map(|(k, e)| (k.clone(), e.fetching.clone()))
            .collect();
        for (secret, fetching) in secrets {
            let Ok(_one) = fetching.try_lock() else {
                continue;
            };
            let _ = self.fetch_and_store(&secret).await;
        }
    }

    async fn fetch_and_store(
        &self,
        secret: &SecretRef,
    ) -> Result<(Arc<SecretVersions>, bool), CredentialsError> {
        // Boxed: the SDK's futures are large and deep, and every client session's future
        // would otherwise carry room for them (memory per connection, and type depth).
        let fetched = Box::pin(self.fetch(secret)).await;
        let mut entries = self.lock();
        let entry = entries.entry(secret.clone()).or_default();
        entry.fetched = Some(Instant::now());
        entry.failed = fetched.is_err();
        let mut value = match fetched {
            Ok(value) => value,
            Err(e) => {
                self.metrics
                    .secret_fetches
                    .with_label_values(&["error"])
                    .inc();
                tracing::warn!(secret = %secret.id, error = %e, "cannot read secret from AWS Secrets Manager; keeping the cached value if any");
                return Err(e);
            }
        };
        self.metrics.secret_fetches.with_label_values(&["ok"]).inc();
        let old = entry.value.as_ref();
        let changed = old.is_some_and(|old| old.current != value.current);
        if changed {
            self.metrics.secret_rotations.inc();
            tracing::info!(secret = %secret.id, "secret changed (rotation)");
            // The version may have been created long before it became current (a slow
            // rotation): the previous password's grace starts no earlier than now.
            value.current_since = Some(
                value
                    .current_since
                    .map_or(SystemTime::now(), |t| t.max(SystemTime::now())),
            );
        } else if let Some(old) = old.filter(|o| o.current == value.current) {
            value.current_since = value.current_since.max(old.current_since);
        }
        let value = Arc::new(value);
        entry.value = Some(value.clone());
        Ok((value, changed))
    }

    async fn fetch(&self, secret: &SecretRef) -> Result<SecretVersions, CredentialsError> {
        let client = self.client(secret.region.as_deref());
        let (current, current_since) = read_stage(&client, secret, "AWSCURRENT")
            .await?
            .ok_or_else(|| CredentialsError::BadSecret {
                secret: secret.id.clone(),
                why: "it has no AWSCURRENT SecretString",
            })?;
        // During a rotation clients may still hold the previous password. A secret that
        // was never rotated has no AWSPREVIOUS: that is not an error.
        let previous = match read_stage(&client, secret, "AWSPREVIOUS").await {
            Ok(v) => v.map(|(text, _)| text),
            Err(e) => {
                tracing::warn!(secret = %secret.id, error = %e, "cannot read AWSPREVIOUS; the previous password is not accepted");
                None
            }
        };
        Ok(SecretVersions {
            current,
            current_since,
            previous,
        })
    }

    fn client(&self, region: Option<&str>) -> Client {
        let mut clients = self.clients.lock();
        clients
            .entry(region.map(str::to_string))
            .or_insert_with(|| {
                let mut conf = aws_sdk_secretsmanager::config::Builder::from(&self.sdk);
                if let Some(r) = region {
                    conf = conf.region(Region::new(r.to_string()));
                }
                Client::from_conf(conf.build())
            })
            .clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SecretRef, Entry>> {
        self.entries.lock()
    }
}

/// One version stage's SecretString and creation time; None when the secret has no
/// version with that label. The SDK's call runs on the control runtime: it makes tokio
/// timers of its own, which a session worker has none for.
async fn read_stage(
    client: &Client,
    secret: &SecretRef,
    stage: &'static str,
) -> Result<Option<(String, Option<SystemTime>)>, CredentialsError> {
    let read = ask_for_stage(client.clone(), secret.id.clone(), stage);
    crate::clock::on_control(read).await.unwrap_or_else(|| {
        Err(CredentialsError::Unavailable {
            secret: secret.id.clone(),
        })
    })
}

async fn ask_for_stage(
    client: Client,
    secret: String,
    stage: &'static str,
) -> Result<Option<(String, Option<SystemTime>)>, CredentialsError> {
    use aws_sdk_secretsmanager::Error;
    let out = match client
        .get_secret_value()
        .secret_id(&secret)
        .version_stage(stage)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return match Error::from(e) {
                // Secrets Manager's answer for a stage no version has.
                Error::ResourceNotFoundException(_) if stage != "AWSCURRENT" => Ok(None),
                e => Err(CredentialsError::Fetch {
                    secret,
                    source: Box::new(e),
                }),
            };
        }
    };
    let since = out
        .created_date()
        .and_then(|d| SystemTime::try_from(*d).ok());
    Ok(out.secret_string().map(|s| (s.to_string(), since)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_names_its_region() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db/app-AbCdEf";
        assert_eq!(
            SecretRef::new(arn, Some("us-east-1")).region.as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            SecretRef::new("db/app", Some("us-east-1"))
                .region
                .as_deref(),
            Some("us-east-1")
        );
        assert_eq!(SecretRef::new("db/app", None).region, None);
    }
}
