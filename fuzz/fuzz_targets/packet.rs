//! Backend responses: framing, the response tracker, OK/ERR parsing, session-track items;
//! and the prepared-statement packets Sluice rewrites (prepare OK, execute parameters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::multiplex::tracking::observe;
use sluice::protocol::packet::parse_header;
use sluice::protocol::prepared::{set_statement_id, statement_id, ExecuteLayout, PrepareOk};
use sluice::protocol::response::{ErrPacket, Expect, OkPacket, Tracker};

fuzz_target!(|data: &[u8]| {
    let _ = PrepareOk::parse(data);
    let _ = statement_id(data);
    set_statement_id(&mut data.to_vec(), 7);
    if let Some((&params, rest)) = data.split_first() {
        if let Some(layout) = ExecuteLayout::of(rest, u16::from(params)) {
            let types = layout.types(rest).map(<[u8]>::to_vec).unwrap_or_default();
            let _ = layout.with_types(rest, &types);
        }
    }
    for (i, expect) in [
        Expect::Results,
        Expect::Prepare,
        Expect::FieldList,
        Expect::Fetch,
        Expect::Single,
    ]
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
