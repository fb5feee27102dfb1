//! Micro-benchmarks of the per-statement work on the relay path: framing, following a
//! response to its end, reading OK packets, classifying SQL.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::multiplex::{classify, tracking};
use sluice::protocol::classic_eof::{Action, ClassicEof};
use sluice::protocol::packet::{push_packet, PacketReader};
use sluice::protocol::response::{Expect, OkPacket, Tracker};

/// `SELECT * FROM menus` as MariaDB answers it without DEPRECATE_EOF: column count,
/// five column definitions, EOF, nine rows, EOF; with it (`deprecate_eof`), as every
/// backend connection gets it: no EOF after the definitions, an OK with the EOF header
/// at the end.
fn menus_response(deprecate_eof: bool) -> Vec<u8> {
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
    if !deprecate_eof {
        push(b"\xfe\x00\x00\x22\x00");
    }
    for i in 1..=9u8 {
        let mut row = vec![1, b'0' + i, 18];
        row.extend_from_slice("目玉焼き定食".as_bytes());
        row.extend_from_slice(b"\x03500\x08menu_med\x010");
        push(&row);
    }
    if deprecate_eof {
        push(b"\xfe\x00\x00\x22\x00\x00\x00");
    } else {
        push(b"\xfe\x00\x00\x22\x00");
    }
    out
}

fn framing_and_tracking(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let classic = menus_response(false);
    g.throughput(Throughput::Bytes(classic.len() as u64));
    g.bench_function("frame+track menus result", |b| {
        b.iter(|| {
            let mut reader = PacketReader::new();
            let mut src = &classic[..];
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
    // What the relay does for every client now that backends have DEPRECATE_EOF: for
    // one that has it too, relay as read; for a classic one, put the EOFs back.
    let deprecated = menus_response(true);
    for translate in [false, true] {
        let name = if translate {
            "frame+track menus result for a classic client (EOFs put back)"
        } else {
            "frame+track menus result for a DEPRECATE_EOF client"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut reader = PacketReader::new();
                let mut src = &deprecated[..];
                rt.block_on(async {
                    reader.fill(&mut src).await.unwrap();
                    black_box(relay_batch(&mut reader, translate).len())
                })
            })
        });
    }
    g.finish();
}

/// The relay's per-packet work on one read's worth of a response.
fn relay_batch(reader: &mut PacketReader, translate: bool) -> BytesMut {
    let mut tracker = Tracker::new(Expect::Results, true);
    let mut classic = translate.then(|| ClassicEof::new(2));
    let mut batch = BytesMut::new();
    while !tracker.is_done() {
        let mut f = reader.next_buffered(1 << 24).unwrap().unwrap();
        let (p, seq) = (f.payload(), f.seq());
        let seen = tracker.feed(p, p.len()).unwrap();
        if let Some(classic) = classic.as_mut() {
            let action = classic.before(seq, seen, p, reader.buffered(), &mut batch);
            if action.unwrap() == Action::Replaced {
                continue;
            }
            f.set_seq(classic.seq(seq));
            batch.unsplit(f.into_bytes());
            classic.after(seq, tracker.omitted_eof(), &mut batch);
        } else {
            batch.unsplit(f.into_bytes());
        }
    }
    batch
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
