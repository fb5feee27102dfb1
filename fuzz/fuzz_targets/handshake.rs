//! Connection-phase packets from clients and servers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::protocol::handshake::{parse_auth_switch, Greeting, HandshakeResponse};

fuzz_target!(|data: &[u8]| {
    let _ = HandshakeResponse::is_ssl_request(data);
    if let Ok(h) = HandshakeResponse::parse(data) {
        // What parses must encode and parse back to the same value.
        let again = HandshakeResponse::parse(&h.encode()).expect("re-encoded response parses");
        assert_eq!(again.user, h.user);
    }
    let _ = Greeting::parse(data);
    let _ = parse_auth_switch(data);
});
