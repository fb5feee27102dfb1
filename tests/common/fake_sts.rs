//! A stand-in STS for the `sts` IAM mode, written here because no emulator checks
//! signatures: it answers GetCallerIdentity only for a presigned request whose SigV4
//! signature (recomputed with aws-sigv4 from the one key it knows) covers the headers it
//! received, and names the caller as an assumed-role session. It counts the requests it
//! gets, so a test can tell that a host was never contacted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The caller it reports for a good request.
pub const CALLER: &str = "arn:aws:sts::123456789012:assumed-role/LambdaRole/lambda-1";

pub struct FakeSts {
    pub endpoint: String,
    pub requests: Arc<AtomicUsize>,
}

impl FakeSts {
    /// Serves on a free port; `key` is the one (id, secret) whose signatures it accepts.
    pub async fn start(key: (&'static str, &'static str)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let count = count.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let response = answer(&req, addr, key);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Self {
            endpoint: format!("http://{addr}"),
            requests,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(req: &Request<Incoming>, addr: SocketAddr, key: (&str, &str)) -> Response<Full<Bytes>> {
    let (status, body) = match check(req, addr, key) {
        Ok(()) => (
            StatusCode::OK,
            format!(
                "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{CALLER}</Arn>\
                 <UserId>AROAEXAMPLE:lambda-1</UserId><Account>123456789012</Account>\
                 </GetCallerIdentityResult></GetCallerIdentityResponse>"
            ),
        ),
        Err(why) => (
            StatusCode::FORBIDDEN,
            format!("<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>{why}</Message></Error></ErrorResponse>"),
        ),
    };
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Recomputes the presigned request's signature over what was received.
fn check(req: &Request<Incoming>, addr: SocketAddr, key: (&str, &str)) -> Result<(), String> {
    let query = req.uri().query().ok_or("no query")?;
    let mut unsigned = Vec::new();
    let mut get = std::collections::HashMap::new();
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').ok_or("bad query")?;
        let decoded = percent(v);
        if k.starts_with("X-Amz-") {
            get.insert(k.to_string(), decoded);
        } else {
            unsigned.push(pair.to_string());
        }
    }
    let field = |k: &str| get.get(k).cloned().ok_or(format!("no {k}"));
    let scope = field("X-Amz-Credential")?;
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 5 || parts[0] != key.0 {
        return Err("unknown key".into());
    }
    let date = field("X-Amz-Date")?;
    let signed_at = sluice::auth::iam::token::parse_amz_date(&date).ok_or("bad date")?;
    let expires: u64 = field("X-Amz-Expires")?.parse().map_err(|_| "bad expires")?;
    let headers: Vec<(String, String)> = field("X-Amz-SignedHeaders")?
        .split(';')
        .filter(|h| *h != "host")
        .map(|h| {
            let v = req
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            (h.to_string(), v.to_string())
        })
        .collect();
    let identity = aws_credential_types::Credentials::new(
        key.0,
        key.1,
        get.get("X-Amz-Security-Token").cloned(),
        None,
        "fake-sts",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(parts[2])
        .name(parts[3])
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let url = format!("http://{addr}/?{}", unsigned.join("&"));
    let request = SignableRequest::new(
        "GET",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| e.to_string())?;
    let (_, signature) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    if signature != field("X-Amz-Signature")? {
        return Err("signature does not match".into());
    }
    if SystemTime::now() > signed_at + Duration::from_secs(expires) {
        return Err("expired".into());
    }
    Ok(())
}

fn percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
