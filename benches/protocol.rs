//! Micro-benchmarks of the per-statement work on the relay path: framing, following a
//! response to its end, reading OK packets, classifying SQL.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::multiplex::{classify, tracking};
use sluice::protocol::packet::{push_packet, PacketReader};
use sluice::protocol::response::{Expect, OkPacket, Tracker};

/// `SELECT * FROM menus` as MariaDB answers it without DEPRECATE_EOF: column count,
/// five column definitions, EOF, nine rows, EOF.
fn menus_response() -> Vec<u8> {
    let mut out = Vec::new();
    let mut seq = 1u8;
    let mut push = |p: &[u8]| {
        push_packet(&mut out, seq, p);
        seq = seq.wrapping_add(1);
    };
    push(b"\x05");
    for name in ["id", "name", "price", "image_prefix", "takeout"] {
        let mut def = b"\x03def\x04shop\x05menus\x05menus".to_vec();
        def.push(name.len() as u8);
        def.extend_from_slice(name.as_bytes());
        def.push(name.len() as u8);
        def.extend_from_slice(name.as_bytes());
        def.extend_from_slice(b"\x0c\x2d\x00\x00\x01\x00\x00\xfd\x00\x00\x00\x00\x00");
        push(&def);
    }
    push(b"\xfe\x00\x00\x22\x00");
    for i in 1..=9u8 {
        let mut row = vec![1, b'0' + i, 18];
        row.extend_from_slice("目玉焼き定食".as_bytes());
        row.extend_from_slice(b"\x03500\x08menu_med\x010");
        push(&row);
    }
    push(b"\xfe\x00\x00\x22\x00");
    out
}

fn framing_and_tracking(c: &mut Criterion) {
    let wire = menus_response();
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("frame+track menus result", |b| {
        b.iter(|| {
            let mut reader = PacketReader::new();
            let mut src = &wire[..];
            let mut tracker = Tracker::new(Expect::Results, false);
            rt.block_on(async {
                let mut batch = BytesMut::new();
                while !tracker.is_done() {
                    let f = reader.read(&mut src, 1 << 24).await.unwrap();
                    let p = f.payload();
                    tracker.feed(p, p.len()).unwrap();
                    batch.unsplit(f.into_bytes());
                }
                black_box(batch.len())
            })
        })
    });
    g.finish();
}

fn ok_packets(c: &mut Criterion) {
    // `USE shop` OK packet with schema and state-change items.
    let ok = b"\x00\x00\x00\x02\x40\x00\x00\x00\x0b\x01\x05\x04shop\x02\x02\x011";
    c.bench_function("parse OK + observe session state", |b| {
        b.iter(|| {
            let p = OkPacket::parse(black_box(ok), true).unwrap();
            black_box(tracking::observe(p.status, p.session_state))
        })
    });
    c.bench_function("rewrite OK for a client without session tracking", |b| {
        b.iter(|| {
            black_box(
                OkPacket::parse(black_box(ok), true)
                    .unwrap()
                    .encode_without_session_track(0),
            )
        })
    });
}

fn sql_classification(c: &mut Criterion) {
    let short = b"SELECT * FROM menus";
    let long =
        b"SELECT c FROM sbtest1 WHERE id BETWEEN 4711 AND 4810 /* range */ ORDER BY c -- x\n";
    c.bench_function("classify short statement", |b| {
        b.iter(|| classify::pin_for(black_box(short), true))
    });
    c.bench_function("classify sysbench range statement", |b| {
        b.iter(|| classify::pin_for(black_box(long), true))
    });
}

criterion_group!(
    benches,
    framing_and_tracking,
    ok_packets,
    sql_classification
);
criterion_main!(benches);
