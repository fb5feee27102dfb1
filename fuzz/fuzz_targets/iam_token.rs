//! IAM auth tokens come from unauthenticated clients: parsing any bytes must not panic
//! (RDS tokens and `sts` mode's presigned requests alike), and an RDS token that parses
//! must survive verification (which signs with aws-sigv4) and be refused unless its
//! signature is right.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sluice::auth::iam::local::{verify, AccessKey, Expectations};
use sluice::auth::iam::sts::StsRequest;
use sluice::auth::iam::Token;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = StsRequest::parse(data) {
        // What is sent to STS is what was checked: one origin, path "/", no fragment.
        assert!(
            request.url.starts_with(&request.origin)
                || request
                    .url
                    .to_ascii_lowercase()
                    .starts_with(&request.origin)
        );
        assert!(!request.url.contains('#'));
    }
    let Ok(token) = Token::parse(data) else {
        return;
    };
    let mut keys = HashMap::new();
    keys.insert(
        token.access_key_id.clone(),
        AccessKey {
            secret_access_key: "fuzz-secret".into(),
            users: vec!["*".into()],
        },
    );
    let expect = Expectations {
        hostnames: vec![format!("{}:{}", token.host, token.port)],
        regions: vec![token.region.clone()],
        clock_skew: Duration::from_secs(60),
    };
    let now = token.signed_at + Duration::from_secs(1);
    let user = token.db_user.clone();
    // A signature the fuzzer guessed without the key is refused (it would take 2^256 tries).
    let result = verify(&token, &user, &keys, &expect, now);
    if token.service == "rds-db" {
        assert!(result.is_err());
    }
});
