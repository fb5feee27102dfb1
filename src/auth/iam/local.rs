//! `local` verification: recompute the token's SigV4 signature with `aws-sigv4` from an
//! access key Sluice knows, and check every field against what this proxy accepts.
//!
//! This is the check RDS itself makes, minus the IAM policy evaluation: the keys Sluice
//! knows stand for the principals allowed to connect, and each key lists the database
//! users it may log in as.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;

use secrecy::{ExposeSecret, SecretString};

use super::token::Token;
use super::IamError;
use crate::auth::constant_time_eq;

/// An access key whose signatures Sluice can check, and the users it may log in as.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub secret_access_key: SecretString,
    /// Database users this key may connect as; `*` means any IAM-enabled user.
    pub users: Vec<String>,
}

impl AccessKey {
    pub fn allows(&self, user: &str) -> bool {
        self.users.iter().any(|u| u == "*" || u == user)
    }
}

/// What a token must say to be accepted here.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// `host:port` names clients reach this proxy by (what they sign for).
    pub hostnames: Vec<String>,
    /// Regions tokens may be signed for.
    pub regions: Vec<String>,
    /// Allowed clock difference between the signer and Sluice.
    pub clock_skew: Duration,
}

impl Expectations {
    /// `now` within [signed − clock_skew, expires].
    pub fn valid_at(
        &self,
        signed_at: SystemTime,
        expires_at: SystemTime,
        now: SystemTime,
    ) -> Result<(), IamError> {
        if now + self.clock_skew < signed_at {
            return Err(IamError::NotYetValid);
        }
        if now > expires_at {
            return Err(IamError::Expired);
        }
        Ok(())
    }
}

/// Checks a parsed token for `login_user` at time `now`.
pub fn verify(
    token: &Token,
    login_user: &str,
    keys: &HashMap<String, AccessKey>,
    expect: &Expectations,
    now: SystemTime,
) -> Result<(), IamError> {
    check_fields(token, login_user, expect, now)?;
    let key = keys.get(&token.access_key_id).ok_or(IamError::UnknownKey)?;
    let expected = signature(token, key.secret_access_key.expose_secret())?;
    if !constant_time_eq(expected.as_bytes(), token.signature.as_bytes()) {
        return Err(IamError::BadSignature);
    }
    // Checked after the signature, so a forged token learns nothing about key mappings.
    if !key.allows(login_user) {
        return Err(IamError::KeyNotAllowed);
    }
    Ok(())
}

/// What a token says, without its signature: the user, service, `host:port`, region
/// and validity period this proxy accepts.
pub fn check_fields(
    token: &Token,
    login_user: &str,
    expect: &Expectations,
    now: SystemTime,
) -> Result<(), IamError> {
    if token.db_user != login_user {
        return Err(IamError::WrongUser);
    }
    if token.service != "rds-db" {
        return Err(IamError::WrongService);
    }
    let authority = format!("{}:{}", token.host, token.port);
    if !expect
        .hostnames
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&authority))
    {
        return Err(IamError::WrongHost);
    }
    if !expect.regions.contains(&token.region) {
        return Err(IamError::WrongRegion);
    }
    expect.valid_at(token.signed_at, token.expires_at(), now)
}

/// The signature the token's signer computed, if it held `secret_access_key`.
fn signature(token: &Token, secret_access_key: &str) -> Result<String, IamError> {
    let credentials = aws_credential_types::Credentials::new(
        &token.access_key_id,
        secret_access_key,
        token.security_token.clone(),
        None,
        "sluice-iam-keys",
    );
    let identity = credentials.into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(token.expires);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&token.region)
        .name(&token.service)
        .time(token.signed_at)
        .settings(settings)
        .build()
        .map_err(|_| IamError::Malformed("cannot build signing parameters"))?
        .into();
    // The request boto3 presigned. The port goes in the URL; like botocore, aws-sigv4
    // drops it from the signed Host header when it is the scheme's default (443).
    let url = format!(
        "https://{}:{}/?Action=connect&DBUser={}",
        token.host,
        token.port,
        uri_encode(&token.db_user)
    );
    let request = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|_| IamError::Malformed("host is not a valid URL authority"))?;
    let (_, signature) = sign(request, &params)
        .map_err(|_| IamError::Malformed("cannot compute the signature"))?
        .into_parts();
    Ok(signature)
}

/// SigV4 URI encoding: unreserved characters as they are, every other byte as `%XX`.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
