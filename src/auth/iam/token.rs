//! The RDS IAM auth token: a SigV4 presigned URL without its scheme, as boto3's
//! `generate_db_auth_token` (and every AWS SDK's equivalent) makes it:
//!
//! ```text
//! host:port/?Action=connect&DBUser=app&X-Amz-Algorithm=AWS4-HMAC-SHA256
//!   &X-Amz-Credential=AKID%2F20261120%2Fus-east-1%2Frds-db%2Faws4_request
//!   &X-Amz-Date=20261120T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host
//!   [&X-Amz-Security-Token=...]&X-Amz-Signature=<64 hex>
//! ```
//!
//! Parsing is strict: exactly these parameters, each once, nothing else. What the values
//! must be (user, host, region, time, signature) is the verifier's business (local.rs).

use std::time::{Duration, SystemTime};

use super::IamError;

/// Longest token accepted. A token with a session token is about 1.5 KB; role session
/// tokens can reach a few KB.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The longest `X-Amz-Expires` AWS allows for an RDS token (15 minutes).
pub const MAX_EXPIRES: u64 = 900;

/// A parsed token. Values are percent-decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `host` of `host:port`, as written.
    pub host: String,
    pub port: u16,
    pub db_user: String,
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// `X-Amz-Date` as written (`YYYYMMDDTHHMMSSZ`) and as a time.
    pub amz_date: String,
    pub signed_at: SystemTime,
    pub expires: Duration,
    pub security_token: Option<String>,
    /// Lowercase hex, 64 characters.
    pub signature: String,
}

const PARAMS: [&str; 9] = [
    "Action",
    "DBUser",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
];

/// The parameters whose value RDS's own tokens always have.
fn check_fixed(
    action: &str,
    algorithm: &str,
    signed_headers: &str,
    db_user: &str,
) -> Result<(), IamError> {
    let bad = |why: &'static str| Err(IamError::Malformed(why));
    if action != "connect" {
        return bad("Action is not connect");
    }
    if algorithm != "AWS4-HMAC-SHA256" {
        return bad("unsupported algorithm");
    }
    if signed_headers != "host" {
        return bad("signed headers are not exactly host");
    }
    if db_user.is_empty() {
        return bad("empty DBUser");
    }
    Ok(())
}

impl Token {
    /// Parses a token as a client sent it (a trailing NUL, as some clients add to a clear
    /// password, is dropped).
    pub fn parse(raw: &[u8]) -> Result<Self, IamError> {
        let bad = |why: &'static str| IamError::Malformed(why);
        let text = password_text(raw)?;
        let (authority, query) = text.split_once("/?").ok_or(bad("no /? after host:port"))?;
        let (host, port) = authority.rsplit_once(':').ok_or(bad("no port"))?;
        if host.is_empty() || host.contains(['/', '@', '?', '#']) {
            return Err(bad("bad host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let values = query_params(query, &PARAMS)?;
        let [action, db_user, algorithm, credential, date, expires, signed_headers, security_token, signature] =
            values;
        let missing = bad("missing parameter");
        let (action, db_user, algorithm, credential, amz_date, expires, signed_headers, signature) = (
            action.ok_or(missing.clone())?,
            db_user.ok_or(missing.clone())?,
            algorithm.ok_or(missing.clone())?,
            credential.ok_or(missing.clone())?,
            date.ok_or(missing.clone())?,
            expires.ok_or(missing.clone())?,
            signed_headers.ok_or(missing.clone())?,
            signature.ok_or(missing)?,
        );
        check_fixed(&action, &algorithm, &signed_headers, &db_user)?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, "aws4_request"] = scope[..] else {
            return Err(bad("bad credential scope"));
        };
        if access_key_id.is_empty() || region.is_empty() {
            return Err(bad("bad credential scope"));
        }
        let signed_at = parse_amz_date(&amz_date).ok_or(bad("bad X-Amz-Date"))?;
        if !amz_date.starts_with(scope_date) || scope_date.len() != 8 {
            return Err(bad("credential date differs from X-Amz-Date"));
        }
        let expires: u64 = expires.parse().map_err(|_| bad("bad X-Amz-Expires"))?;
        if expires == 0 || expires > MAX_EXPIRES {
            return Err(bad("X-Amz-Expires outside 1-900"));
        }
        if signature.len() != 64
            || !signature
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("bad signature"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
            db_user,
            access_key_id: access_key_id.to_string(),
            scope_date: scope_date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            amz_date,
            signed_at,
            expires: Duration::from_secs(expires),
            security_token,
            signature,
        })
    }

    /// When the token stops being valid.
    pub fn expires_at(&self) -> SystemTime {
        self.signed_at + self.expires
    }
}

/// A clear-password answer as text: a trailing NUL (clients add one) dropped, bounded
/// in size, UTF-8.
pub(super) fn password_text(raw: &[u8]) -> Result<&str, IamError> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.len() > MAX_TOKEN_LEN {
        return Err(IamError::Malformed("token too long"));
    }
    std::str::from_utf8(raw).map_err(|_| IamError::Malformed("not UTF-8"))
}

/// The values of a query string's parameters, in the order of `names`, percent-decoded.
/// Strict: a name not in `names`, or one given twice, is an error.
pub(super) fn query_params<const N: usize>(
    query: &str,
    names: &[&str; N],
) -> Result<[Option<String>; N], IamError> {
    let bad = IamError::Malformed;
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').ok_or(bad("parameter without ="))?;
        let name = decode(name)?;
        let at = names
            .iter()
            .position(|p| *p == name)
            .ok_or(bad("unknown parameter"))?;
        if values[at].is_some() {
            return Err(bad("duplicate parameter"));
        }
        values[at] = Some(decode(value)?);
    }
    Ok(values)
}

/// Percent-decodes one query component; `+` is not a space in SigV4 URLs.
pub(super) fn decode(s: &str) -> Result<String, IamError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(IamError::Malformed("bad percent-encoding"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| IamError::Malformed("bad percent-encoding"))
}

/// `YYYYMMDDTHHMMSSZ` (UTC) as a time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "proxy.example.com:3306/?Action=connect&DBUser=app%20user%40x&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDSLUICEEXAMPLE%2F20261120%2Feu-west-1%2Frds-db%2Faws4_request&X-Amz-Date=20261120T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=8ffb63fbedda928673eba72b44597e85fe6ddb088197a7f19013163ecd8a16b0";

    #[test]
    fn parses_a_boto3_token() {
        let t = Token::parse(TOKEN.as_bytes()).unwrap();
        assert_eq!(t.host, "proxy.example.com");
        assert_eq!(t.port, 3306);
        assert_eq!(t.db_user, "app user@x");
        assert_eq!(t.access_key_id, "AKIDSLUICEEXAMPLE");
        assert_eq!(t.region, "eu-west-1");
        assert_eq!(t.service, "rds-db");
        assert_eq!(t.expires, Duration::from_secs(900));
        // 2026-11-20T12:00:00Z
        let at = t.signed_at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(at.as_secs(), 1_795_176_000);
        // A trailing NUL (clear-password clients) is fine.
        let with_nul = [TOKEN.as_bytes(), b"\0"].concat();
        assert_eq!(Token::parse(&with_nul).unwrap(), t);
    }

    #[test]
    fn rejects_anything_but_exactly_the_expected_parameters() {
        let cases = [
            TOKEN.replace("Action=connect", "Action=connect&Action=connect"),
            TOKEN.replace("&X-Amz-Expires=900", ""),
            TOKEN.replace("Action=connect", "Action=connect&Extra=1"),
            TOKEN.replace("Action=connect", "Action=Connect"),
            TOKEN.replace("X-Amz-Expires=900", "X-Amz-Expires=901"),
            TOKEN.replace("X-Amz-Expires=900", "X-Amz-Expires=0"),
            TOKEN.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-date"),
            TOKEN.replace("20261120%2Feu", "20261121%2Feu"),
            TOKEN.replace("T120000Z", "T126000Z"),
            TOKEN.replace("HMAC-SHA256", "HMAC-SHA1"),
            TOKEN.replace(":3306/", "/"),
            TOKEN.replace(":3306", ":99999"),
            TOKEN.replace("%20", "%2"),
            TOKEN.replace("8ffb63", "8FFB63"),
            TOKEN[..TOKEN.len() - 1].to_string(),
            TOKEN[..40].to_string(),
            "x".repeat(MAX_TOKEN_LEN + 1),
            String::new(),
        ];
        for bad in cases {
            assert!(Token::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
