//! Golden vectors: RDS IAM auth tokens made by boto3's `generate_db_auth_token` with a
//! fixed clock and dummy keys (scripts/iam_vectors.py wrote tests/fixtures/iam_tokens.json)
//! verify in `local` mode; every single-field tamper, and tokens that are expired, from the
//! future, or for another host, user, service or region, are refused.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use sluice::auth::iam::local::{verify, AccessKey, Expectations};
use sluice::auth::iam::{IamError, Token};

struct Vector {
    name: String,
    host: String,
    port: u16,
    user: String,
    region: String,
    token: String,
}

struct Fixture {
    clock: SystemTime,
    keys: HashMap<String, AccessKey>,
    vectors: Vec<Vector>,
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/iam_tokens.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap().to_string();
    // 2026-11-20T12:00:00Z
    assert_eq!(s(&json, "clock"), "2026-11-20T12:00:00Z");
    let clock = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_176_000);
    let mut keys = HashMap::new();
    keys.insert(
        s(&json, "access_key_id"),
        AccessKey {
            secret_access_key: s(&json, "secret_access_key").into(),
            users: vec!["*".into()],
        },
    );
    let vectors = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            name: s(v, "name"),
            host: s(v, "host"),
            port: u16::try_from(v["port"].as_u64().unwrap()).unwrap(),
            user: s(v, "user"),
            region: s(v, "region"),
            token: s(v, "token"),
        })
        .collect();
    Fixture {
        clock,
        keys,
        vectors,
    }
}

fn expect(v: &Vector) -> Expectations {
    Expectations {
        hostnames: vec![format!("{}:{}", v.host, v.port)],
        regions: vec![v.region.clone()],
        clock_skew: Duration::from_secs(60),
    }
}

fn check(
    f: &Fixture,
    token: &str,
    user: &str,
    expect: &Expectations,
    now: SystemTime,
) -> Result<(), IamError> {
    let token = Token::parse(token.as_bytes())?;
    verify(&token, user, &f.keys, expect, now)
}

#[test]
fn boto3_tokens_verify() {
    let f = fixture();
    assert_eq!(f.vectors.len(), 4);
    for v in &f.vectors {
        for after in [0, 1, 899, 900] {
            let now = f.clock + Duration::from_secs(after);
            assert_eq!(
                check(&f, &v.token, &v.user, &expect(v), now),
                Ok(()),
                "{} at +{after}s",
                v.name
            );
        }
        // A clock up to the skew behind the signer's is fine.
        let now = f.clock - Duration::from_secs(60);
        assert_eq!(check(&f, &v.token, &v.user, &expect(v), now), Ok(()));
    }
}

#[test]
fn every_single_field_tamper_is_refused() {
    let f = fixture();
    let now = f.clock + Duration::from_secs(10);
    for v in &f.vectors {
        let (base, query) = v.token.split_once("/?").unwrap();
        let params: Vec<&str> = query.split('&').collect();
        let mut tampered = 0;
        // Each parameter's value, one character changed (staying URL-safe).
        for (i, p) in params.iter().enumerate() {
            let (name, value) = p.split_once('=').unwrap();
            let mut bytes = value.as_bytes().to_vec();
            let at = bytes
                .iter()
                .rposition(|b| b.is_ascii_alphanumeric())
                .unwrap();
            bytes[at] = match bytes[at] {
                b'0'..=b'8' | b'a'..=b'y' | b'A'..=b'Y' => bytes[at] + 1,
                b'9' => b'0',
                _ => b'a',
            };
            let mut changed = params.clone();
            let new = format!("{name}={}", String::from_utf8(bytes).unwrap());
            changed[i] = &new;
            let token = format!("{base}/?{}", changed.join("&"));
            let result = check(&f, &token, &v.user, &expect(v), now);
            assert!(result.is_err(), "{}: {name} tampered was accepted", v.name);
            tampered += 1;
        }
        // The host and the port.
        for token in [
            v.token.replacen(&v.host, &format!("x{}", v.host), 1),
            v.token
                .replacen(&format!(":{}/", v.port), &format!(":{}/", v.port + 1), 1),
        ] {
            let mut e = expect(v);
            e.hostnames
                .push(token.split('/').next().unwrap().to_string());
            // Even when that name is allowed, the signature covers the Host header.
            assert_eq!(
                check(&f, &token, &v.user, &e, now),
                Err(IamError::BadSignature),
                "{}",
                v.name
            );
        }
        assert!(tampered >= 8);
    }
}

#[test]
fn wrong_time_host_user_service_region_or_shape_is_refused() {
    let f = fixture();
    let v = &f.vectors[0];
    let e = expect(v);
    let at = |secs: i64| {
        if secs >= 0 {
            f.clock + Duration::from_secs(secs.unsigned_abs())
        } else {
            f.clock - Duration::from_secs(secs.unsigned_abs())
        }
    };
    assert_eq!(
        check(&f, &v.token, &v.user, &e, at(901)),
        Err(IamError::Expired)
    );
    assert_eq!(
        check(&f, &v.token, &v.user, &e, at(-61)),
        Err(IamError::NotYetValid)
    );
    let other_host = Expectations {
        hostnames: vec!["other.example.com:3306".into()],
        ..e.clone()
    };
    assert_eq!(
        check(&f, &v.token, &v.user, &other_host, at(1)),
        Err(IamError::WrongHost)
    );
    assert_eq!(
        check(&f, &v.token, "admin", &e, at(1)),
        Err(IamError::WrongUser)
    );
    let other_region = Expectations {
        regions: vec!["eu-central-1".into()],
        ..e.clone()
    };
    assert_eq!(
        check(&f, &v.token, &v.user, &other_region, at(1)),
        Err(IamError::WrongRegion)
    );
    let service = v.token.replace("%2Frds-db%2F", "%2Fs3%2F");
    assert_eq!(
        check(&f, &service, &v.user, &e, at(1)),
        Err(IamError::WrongService)
    );
    // Truncated anywhere.
    for len in [10, 40, v.token.len() / 2, v.token.len() - 1] {
        assert!(check(&f, &v.token[..len], &v.user, &e, at(1)).is_err());
    }
    // An unknown key, and a known key not mapped to this user.
    let mut keys = f.keys.clone();
    assert!(
        verify(
            &Token::parse(v.token.as_bytes()).unwrap(),
            &v.user,
            &HashMap::new(),
            &e,
            at(1)
        ) == Err(IamError::UnknownKey)
    );
    keys.values_mut()
        .for_each(|k| k.users = vec!["someone_else".into()]);
    assert_eq!(
        verify(
            &Token::parse(v.token.as_bytes()).unwrap(),
            &v.user,
            &keys,
            &e,
            at(1)
        ),
        Err(IamError::KeyNotAllowed)
    );
}
