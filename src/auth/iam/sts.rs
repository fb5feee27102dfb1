//! `sts` verification: the client's password is a presigned STS `GetCallerIdentity`
//! request (the aws-iam-authenticator and Vault pattern) whose signature covers a header
//! naming this proxy, `x-sluice-server-id: <iam.audience>`. Sluice checks the request's
//! shape, sends it to an allow-listed STS endpoint with that header, and maps the caller
//! STS names (an assumed role's session → the role) to the database users it may be.
//!
//! STS checks the signature, so this honours real role credentials and IAM itself; the
//! audience header keeps a token made for another service from working here.
//!
//! Token: `sluice-sts-v1.` + base64url(presigned URL), or the URL itself.

use std::time::{Duration, SystemTime};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use super::token::{parse_amz_date, password_text, query_params, MAX_EXPIRES};
use super::IamError;

pub const PREFIX: &str = "sluice-sts-v1.";
/// The signed header that names the proxy a token is for.
pub const AUDIENCE_HEADER: &str = "x-sluice-server-id";

pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A presigned GetCallerIdentity request, checked for shape.
#[derive(Clone, PartialEq, Eq)]
pub struct StsRequest {
    /// A bearer credential until it expires: never in Debug output.
    pub url: String,
    /// `scheme://host[:port]`, lowercase: what the allow-list names.
    pub origin: String,
    pub access_key_id: String,
    pub region: String,
    pub signed_at: SystemTime,
    pub expires: Duration,
    pub signature: String,
}

impl std::fmt::Debug for StsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StsRequest")
            .field("origin", &self.origin)
            .field("region", &self.region)
            .field("url", &"<redacted>")
            .finish()
    }
}

const PARAMS: [&str; 9] = [
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

impl StsRequest {
    pub fn parse(raw: &[u8]) -> Result<Self, IamError> {
        let bad = IamError::Malformed;
        let text = password_text(raw)?;
        let url = if text.starts_with("https://") || text.starts_with("http://") {
            text.to_string()
        } else {
            let b64 = text.strip_prefix(PREFIX).unwrap_or(text);
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64.trim_end_matches('='))
                .or_else(|_| base64::engine::general_purpose::STANDARD.decode(b64))
                .map_err(|_| bad("not base64"))?;
            String::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad("no scheme"))?;
        if scheme != "https" && scheme != "http" {
            return Err(bad("scheme is not http(s)"));
        }
        let (authority, query) = rest.split_once("/?").ok_or(bad("path is not /"))?;
        if query.contains('#') {
            // A URL parser would cut the request there: what STS gets must be what was
            // checked.
            return Err(bad("fragment"));
        }
        if authority.is_empty() || authority.contains(['/', '@', '?', '#', '\\']) {
            return Err(bad("bad host"));
        }
        let values = query_params(query, &PARAMS)?;
        let get = |i: usize| values[i].as_deref().ok_or(bad("missing parameter"));
        if get(0)? != "GetCallerIdentity" || get(1)? != "2011-06-15" {
            return Err(bad("not GetCallerIdentity 2011-06-15"));
        }
        if get(2)? != "AWS4-HMAC-SHA256" {
            return Err(bad("unsupported algorithm"));
        }
        let scope: Vec<&str> = get(3)?.split('/').collect();
        let [key, scope_date, region, "sts", "aws4_request"] = scope[..] else {
            return Err(bad("credential scope is not sts"));
        };
        let amz_date = get(4)?;
        let signed_at = parse_amz_date(amz_date).ok_or(bad("bad X-Amz-Date"))?;
        if key.is_empty() || scope_date.len() != 8 || !amz_date.starts_with(scope_date) {
            return Err(bad("bad credential scope"));
        }
        let expires: u64 = get(5)?.parse().map_err(|_| bad("bad X-Amz-Expires"))?;
        if expires == 0 || expires > MAX_EXPIRES {
            return Err(bad("X-Amz-Expires outside 1-900"));
        }
        let signed: Vec<&str> = get(6)?.split(';').collect();
        if !signed.contains(&"host") || !signed.contains(&AUDIENCE_HEADER) {
            return Err(bad("the audience header is not signed"));
        }
        let signature = get(8)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("bad signature"));
        }
        Ok(Self {
            origin: format!("{scheme}://{}", authority.to_ascii_lowercase()),
            access_key_id: key.to_string(),
            region: region.to_string(),
            signed_at,
            expires: Duration::from_secs(expires),
            signature: signature.to_string(),
            url,
        })
    }

    pub fn expires_at(&self) -> SystemTime {
        self.signed_at + self.expires
    }
}

pub fn client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// Sends the request with Sluice's audience header; the caller's ARN STS returns.
pub async fn caller(
    client: &HttpClient,
    request: &StsRequest,
    audience: &str,
    timeout: Duration,
) -> Result<String, IamError> {
    let http = hyper::Request::get(&request.url)
        .header(AUDIENCE_HEADER, audience)
        .body(Empty::<Bytes>::new())
        .map_err(|_| IamError::Malformed("not a valid request URL"))?;
    // On the control runtime: hyper spawns its connection task and the connector may
    // wait between addresses (happy eyeballs) with tokio timers, which a session worker
    // has none for.
    let client = client.clone();
    let call = async move {
        let response = client
            .request(http)
            .await
            .map_err(|_| IamError::StsUnavailable)?;
        let status = response.status();
        // GetCallerIdentity's answer is small; anything bigger is not STS.
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|_| IamError::StsUnavailable)?
            .to_bytes();
        let text = std::str::from_utf8(&body).unwrap_or_default();
        if !status.is_success() {
            // STS's own trouble (5xx, throttling) is not the client's: a retry may work.
            let throttled = ["Throttling", "RequestLimitExceeded", "ServiceUnavailable"]
                .iter()
                .any(|code| text.contains(&format!("<Code>{code}</Code>")));
            if status.is_server_error() || status.as_u16() == 429 || throttled {
                return Err(IamError::StsUnavailable);
            }
            return Err(IamError::StsRefused);
        }
        arn_in(text).ok_or(IamError::StsRefused)
    };
    let bounded = async move {
        crate::clock::timeout(timeout, call)
            .await
            .map_err(|_| IamError::StsUnavailable)?
    };
    crate::clock::on_control(bounded)
        .await
        .unwrap_or(Err(IamError::StsUnavailable))
}

/// The `<Arn>` of a GetCallerIdentity XML answer (inside its result element).
fn arn_in(body: &str) -> Option<String> {
    let result = body.find("<GetCallerIdentityResult>")?;
    let body = &body[result..];
    let start = body.find("<Arn>")? + "<Arn>".len();
    let len = body[start..].find("</Arn>")?;
    let arn = body[start..start + len].trim();
    arn.starts_with("arn:").then(|| arn.to_string())
}

/// The principal an ARN stands for, as configured: an assumed role's session
/// (`arn:aws:sts::123:assumed-role/Role/session`) is the role
/// (`arn:aws:iam::123:role/Role`); a role's path is dropped (STS does not report it).
pub fn principal(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts[..] else {
        return arn.to_string();
    };
    match (service, resource.split_once('/')) {
        ("sts", Some(("assumed-role", rest))) => {
            let role = rest.split('/').next().unwrap_or(rest);
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        ("iam", Some(("role", rest))) => {
            let role = rest.rsplit('/').next().unwrap_or(rest);
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        _ => arn.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(extra: &str) -> String {
        format!(
            "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=ASIAEXAMPLE%2F20261120%2Fus-east-1%2Fsts%2Faws4_request\
             &X-Amz-Date=20261120T120000Z&X-Amz-Expires=60\
             &X-Amz-SignedHeaders=host%3Bx-sluice-server-id{extra}\
             &X-Amz-Signature={}",
            "a".repeat(64)
        )
    }

    #[test]
    fn parses_the_url_or_its_base64_form() {
        let u = url("");
        let direct = StsRequest::parse(u.as_bytes()).unwrap();
        assert_eq!(direct.origin, "https://sts.amazonaws.com");
        assert_eq!(direct.region, "us-east-1");
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&u);
        let token = format!("{PREFIX}{b64}");
        assert_eq!(StsRequest::parse(token.as_bytes()).unwrap(), direct);
    }

    #[test]
    fn refuses_other_actions_unsigned_audiences_and_odd_shapes() {
        let u = url("");
        for bad in [
            u.replace("GetCallerIdentity", "AssumeRole"),
            u.replace("host%3Bx-sluice-server-id", "host"),
            u.replace("%2Fsts%2F", "%2Fs3%2F"),
            u.replace("X-Amz-Expires=60", "X-Amz-Expires=3600"),
            u.replace("https://", "file://"),
            u.replace(".com/?", ".com/x?"),
            u.replace("sts.amazonaws.com", "user@sts.amazonaws.com"),
            u.replace("Version=2011-06-15", "Version=2011-06-15#frag"),
            format!("{u}&Action=GetCallerIdentity"),
            format!("{u}&Extra=1"),
            "sluice-sts-v1.%%%".to_string(),
        ] {
            assert!(StsRequest::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn assumed_roles_map_to_their_role() {
        assert_eq!(
            principal("arn:aws:sts::123456789012:assumed-role/LambdaRole/fn-session"),
            "arn:aws:iam::123456789012:role/LambdaRole"
        );
        assert_eq!(
            principal("arn:aws:iam::123456789012:role/service/LambdaRole"),
            "arn:aws:iam::123456789012:role/LambdaRole"
        );
        assert_eq!(
            principal("arn:aws:iam::123456789012:user/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult>\
                   <Arn>arn:aws:sts::1:assumed-role/R/s</Arn></GetCallerIdentityResult>";
        assert_eq!(
            arn_in(xml).as_deref(),
            Some("arn:aws:sts::1:assumed-role/R/s")
        );
        assert_eq!(arn_in("<Arn>nope</Arn>"), None);
        assert_eq!(arn_in("<Arn>arn:aws:iam::1:role/R</Arn>"), None);
    }
}
