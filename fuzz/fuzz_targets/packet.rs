//! Backend responses: framing, the response tracker, OK/ERR parsing, session-track items.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::multiplex::tracking::observe;
use sluice::protocol::packet::parse_header;
use sluice::protocol::response::{ErrPacket, Expect, OkPacket, Tracker};

fuzz_target!(|data: &[u8]| {
    for (i, expect) in [Expect::Results, Expect::Prepare, Expect::FieldList, Expect::Fetch, Expect::Single]
        .into_iter()
        .enumerate()
    {
        let mut tracker = Tracker::new(expect, i % 2 == 0);
        let mut rest = data;
        while rest.len() >= 4 && !tracker.is_done() {
            let (len, _) = parse_header(&rest[..4]);
            let end = (4 + len).min(rest.len());
            let payload = &rest[4..end];
            if tracker.feed(payload, len).is_err() {
                break;
            }
            if let Ok(ok) = OkPacket::parse(payload, true) {
                let _ = observe(ok.status, ok.session_state);
                let _ = ok.encode_without_session_track(0);
            }
            let _ = ErrPacket::parse(payload);
            rest = &rest[end..];
        }
    }
});
