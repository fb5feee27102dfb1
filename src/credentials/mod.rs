//! Where passwords come from: per database user, a static password from the config, or a
//! Secrets Manager secret (`{"username": …, "password": …}`, as RDS Proxy expects) read
//! through [`secrets::SecretStore`]. The same values check password clients (AWSCURRENT,
//! and AWSPREVIOUS for `aws.previous_password_grace` after a rotation) and log Sluice in
//! to the backend (AWSCURRENT, or AWSPENDING while a rotation has changed the database
//! but not yet the secret's current version).

pub mod error;
pub mod secrets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use secrecy::{ExposeSecret, SecretSlice};
use serde::Deserialize;

pub use error::CredentialsError;
use secrets::{SecretRef, SecretStore};

use crate::config::{IamRequirement, UserConfig};

/// A password or token: `secrecy`'s wrapper, whose Debug prints `[REDACTED]` and whose
/// bytes are zeroed when dropped; the bytes are read only through `expose_secret()`.
pub type Password = SecretSlice<u8>;

/// Wraps bytes as a [`Password`].
pub fn password(bytes: &[u8]) -> Password {
    SecretSlice::from(bytes.to_vec())
}

/// A backend login: the user and password Sluice logs in to the backend with.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: Arc<str>,
    pub password: Password,
}

/// A user clients may log in as.
pub struct User {
    /// The name clients log in with; also the pool partition's user.
    pub name: Arc<str>,
    /// Clients log in with an IAM auth token, not a password.
    pub iam: bool,
    source: Source,
}

enum Source {
    Static(Password),
    Secret(SecretRef),
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let source = match &self.source {
            Source::Static(_) => "static password <redacted>".to_string(),
            Source::Secret(s) => format!("secret {}", s.id),
        };
        f.debug_struct("User")
            .field("name", &self.name)
            .field("iam", &self.iam)
            .field("source", &source)
            .finish()
    }
}

/// The passwords a client may answer with: AWSCURRENT first, then AWSPREVIOUS.
pub type Passwords = Vec<Password>;

/// The fields of a database secret Sluice uses.
#[derive(Deserialize)]
struct DbSecret {
    username: String,
    password: secrecy::SecretString,
}

impl DbSecret {
    fn login(self) -> Login {
        Login {
            user: Arc::from(self.username),
            password: password(self.password.expose_secret().as_bytes()),
        }
    }
}

/// Every configured user, and the secret store when some of them use secrets.
#[derive(Debug, Default)]
pub struct Credentials {
    users: HashMap<Vec<u8>, User>,
    secrets: Option<Arc<SecretStore>>,
    /// How long after a rotation the previous password still lets clients in.
    previous_grace: Duration,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStore")
    }
}

impl Credentials {
    /// `secrets` is needed when any user names a secret (the config decides; see
    /// [`Credentials::needs_secrets`]).
    pub fn new(
        users: &[UserConfig],
        secrets: Option<Arc<SecretStore>>,
        previous_grace: Duration,
    ) -> Self {
        let users = users
            .iter()
            .map(|u| {
                let source = match (&u.password, &u.secret) {
                    (_, Some(id)) => Source::Secret(SecretRef::new(id, u.secret_region.as_deref())),
                    (Some(p), None) => Source::Static(password(p.expose_secret().as_bytes())),
                    (None, None) => Source::Static(password(b"")),
                };
                let user = User {
                    name: Arc::from(u.name.as_str()),
                    iam: u.iam == IamRequirement::Required,
                    source,
                };
                (u.name.as_bytes().to_vec(), user)
            })
            .collect();
        Self {
            users,
            secrets,
            previous_grace,
        }
    }

    /// Whether any user's credentials are a secret.
    pub fn needs_secrets(users: &[UserConfig]) -> bool {
        users.iter().any(|u| u.secret.is_some())
    }

    pub fn user(&self, name: &[u8]) -> Option<&User> {
        self.users.get(name)
    }

    /// The login for backend connections of `user` (the client-facing name).
    pub async fn backend_login(&self, user: &str) -> Result<Login, CredentialsError> {
        let u = self
            .user(user.as_bytes())
            .ok_or_else(|| CredentialsError::UnknownUser(user.to_string()))?;
        match &u.source {
            Source::Static(password) => Ok(Login {
                user: u.name.clone(),
                password: password.clone(),
            }),
            Source::Secret(secret) => {
                let value = self.store(secret)?.get(secret).await?;
                Ok(parse(secret, &value.current)?.login())
            }
        }
    }

    /// The backend refused `used` for `user` (1045): the login to try instead, if any.
    /// The secret may have been rotated since Sluice read it (re-read, rate-limited), or
    /// a rotation may be under way: the database already has the AWSPENDING password
    /// while AWSCURRENT still has the old one (setSecret before finishSecret).
    pub async fn backend_refused(&self, user: &str, used: &Login) -> Option<Login> {
        let Some(Source::Secret(secret)) = self.user(user.as_bytes()).map(|u| &u.source) else {
            return None;
        };
        let store = self.store(secret).ok()?;
        let cached = store.get(secret).await.ok()?;
        let differs = |text: &str| {
            parse(secret, text)
                .ok()
                .filter(|db| {
                    db.password.expose_secret().as_bytes() != used.password.expose_secret()
                })
                .map(DbSecret::login)
        };
        if let Some(login) = differs(&cached.current) {
            return Some(login);
        }
        if store
            .refetch(secret, &cached.current)
            .await
            .unwrap_or(false)
        {
            if let Some(login) = differs(&store.get(secret).await.ok()?.current) {
                return Some(login);
            }
        }
        differs(&store.pending(secret).await?)
    }

    /// The passwords a password client of `user` may answer with.
    pub async fn client_passwords(&self, user: &User) -> Result<Passwords, CredentialsError> {
        match &user.source {
            Source::Static(password) => Ok(vec![password.clone()]),
            Source::Secret(secret) => {
                let value = self.store(secret)?.get(secret).await?;
                passwords(secret, &value, self.previous_grace)
            }
        }
    }

    /// A client's password matched none of `tried`: re-reads the user's secret
    /// (rate-limited); Some(new passwords) when it changed, to check again.
    pub async fn client_refused(&self, user: &User) -> Option<Passwords> {
        let Source::Secret(secret) = &user.source else {
            return None;
        };
        let store = self.store(secret).ok()?;
        let before = store.get(secret).await.ok()?;
        if !store.refetch(secret, &before.current).await.ok()? {
            return None;
        }
        passwords(secret, &*store.get(secret).await.ok()?, self.previous_grace).ok()
    }

    fn store(&self, secret: &SecretRef) -> Result<&Arc<SecretStore>, CredentialsError> {
        self.secrets
            .as_ref()
            .ok_or_else(|| CredentialsError::BadSecret {
                secret: secret.id.clone(),
                why: "Secrets Manager is not set up",
            })
    }
}

/// AWSCURRENT's password, then AWSPREVIOUS's while the rotation that replaced it is less
/// than `grace` old (a rotation revokes the old password, but clients that cached it get
/// time to read the new one). The rotation's time is the new version's creation, or when
/// Sluice saw it become current if that was later. Unknown rotation time: no grace.
fn passwords(
    secret: &SecretRef,
    value: &secrets::SecretVersions,
    grace: Duration,
) -> Result<Passwords, CredentialsError> {
    let mut out = vec![password(
        parse(secret, &value.current)?
            .password
            .expose_secret()
            .as_bytes(),
    )];
    let recent = value
        .current_since
        .and_then(|since| SystemTime::now().duration_since(since).ok())
        .is_some_and(|age| age < grace);
    // A malformed previous version is skipped: only the current one must be usable.
    if let (true, Some(Ok(previous))) =
        (recent, value.previous.as_deref().map(|p| parse(secret, p)))
    {
        out.push(password(previous.password.expose_secret().as_bytes()));
    }
    Ok(out)
}

fn parse(secret: &SecretRef, text: &str) -> Result<DbSecret, CredentialsError> {
    serde_json::from_str(text).map_err(|_| CredentialsError::BadSecret {
        secret: secret.id.clone(),
        why: "its SecretString is not JSON with string fields username and password",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, password: &str) -> UserConfig {
        UserConfig {
            name: name.into(),
            password: Some(password.into()),
            secret: None,
            secret_region: None,
            iam: IamRequirement::Disabled,
        }
    }

    #[tokio::test]
    async fn static_users_by_exact_name_and_hidden_passwords() {
        let c = Credentials::new(&[user("app", "pw")], None, Duration::ZERO);
        let login = c.backend_login("app").await.unwrap();
        assert_eq!(login.password.expose_secret(), b"pw");
        assert!(c.user(b"App").is_none());
        // Neither the login nor the configured user prints the password.
        assert!(!format!("{login:?}").contains("pw"));
        assert!(!format!("{:?}", user("app", "pw")).contains("pw"));
        let u = c.user(b"app").unwrap();
        assert_eq!(c.client_passwords(u).await.unwrap().len(), 1);
        assert!(c.backend_refused("app", &login).await.is_none());
        assert!(!format!("{u:?}").contains("pw"));
    }

    #[test]
    fn secrets_parse_as_rds_proxy_expects() {
        let r = SecretRef::new("db/app", None);
        let db = parse(
            &r,
            r#"{"username":"app","password":"p\"w","engine":"mysql","port":3306}"#,
        )
        .unwrap();
        assert_eq!(
            (db.username.as_str(), db.password.expose_secret()),
            ("app", "p\"w")
        );
        for bad in [
            "",
            "{}",
            r#"{"username":"app"}"#,
            r#"{"username":1,"password":"x"}"#,
        ] {
            assert!(parse(&r, bad).is_err(), "{bad}");
        }
        let mut versions = secrets::SecretVersions {
            current: r#"{"username":"app","password":"new"}"#.into(),
            current_since: Some(SystemTime::now() - Duration::from_secs(60)),
            previous: Some(r#"{"username":"app","password":"old"}"#.into()),
        };
        let grace = Duration::from_secs(300);
        let p = passwords(&r, &versions, grace).unwrap();
        assert_eq!(
            (p[0].expose_secret(), p[1].expose_secret()),
            (&b"new"[..], &b"old"[..])
        );
        // After the grace period, or when the rotation time is unknown: current only.
        versions.current_since = Some(SystemTime::now() - Duration::from_secs(301));
        assert_eq!(passwords(&r, &versions, grace).unwrap().len(), 1);
        versions.current_since = None;
        assert_eq!(passwords(&r, &versions, grace).unwrap().len(), 1);
    }
}
