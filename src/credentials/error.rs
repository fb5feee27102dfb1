//! Errors of the credentials layer: secrets that cannot be read or used.

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read secret {secret} from AWS Secrets Manager: {source}")]
    Fetch {
        secret: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {secret} could not be read a moment ago; retrying shortly")]
    Unavailable { secret: String },
    #[error("secret {secret} is unusable: {why}")]
    BadSecret { secret: String, why: &'static str },
    #[error("no login is configured for user {0:?}")]
    UnknownUser(String),
}
