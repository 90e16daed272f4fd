//! Encode and decode throughput, and the cost of answering a SYN, at 1,024 nodes.
//!
//! Run: `cargo bench --bench codec` (criterion prints medians; throughput is in
//! bytes of encoded message per second).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Budget, ClusterName, Codec, Delta, EndpointState, Envelope, Generation, Header, Key, Message, NodeId,
    PageForm, Version, VersionedValue, View, build_syn, handle_syn,
};
use std::hint::black_box;

const NODES: usize = 1024;

/// A steady cluster as node 0 sees it: host-id-like ids, eight 16-byte values each,
/// versions of a node up for about a month.
fn steady_view(lag: u64) -> View {
    let ids: Vec<NodeId> = (0..NODES)
        .map(|i| NodeId::new(format!("{:08x}-7d2e-4c1a-host-{i:04}", i * 2_654_435_761 % (1 << 32))).unwrap())
        .collect();
    let states = ids.iter().enumerate().map(|(i, id)| {
        let values = (0..8).map(|k| {
            (Key::new(&format!("key{k}")).unwrap(), VersionedValue::live(&b"0123456789abcdef"[..], Version(10 + k)))
        });
        let hb = Version(2_600_000 + i as u64 * 3 - if i % 2 == 0 { lag } else { 0 });
        (id.clone(), EndpointState::from_parts(Generation(1_697_000_000 + i as u64), hb, values, Version::ZERO))
    });
    View::from_states(ids[0].clone(), states).unwrap()
}

fn header(view: &View) -> Header {
    Header {
        cluster: ClusterName::new("bench").unwrap(),
        sender: view.local_id().clone(),
        generation: view.local_generation(),
    }
}

fn messages() -> Vec<(&'static str, Envelope)> {
    let view = steady_view(0);
    let behind = steady_view(5);
    let h = header(&view);
    let big = Budget::new(64 * 1024, &h).unwrap();
    let full = build_syn(&view, big, None, PageForm::Full).unwrap().syn;
    let compact = build_syn(&view, big, None, PageForm::Compact).unwrap().syn;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // the ACK a node that lags by 5 versions on half the nodes gets: compact heartbeat deltas
    let compact_ack =
        handle_syn(&view, &build_syn(&behind, big, None, PageForm::Compact).unwrap().syn, big, &mut rng).message;
    // the same deltas in full form (ids and generations)
    let full_ack = Message::Ack(Ack {
        deltas: (0..NODES / 2)
            .map(|i| {
                let (id, s) = view.iter().nth(i * 2).unwrap();
                Delta {
                    node: id.clone(),
                    generation: s.generation(),
                    from: Version(s.heartbeat().0 - 5),
                    purged: Version::ZERO,
                    heartbeat: Some(s.heartbeat()),
                    values: vec![],
                }
            })
            .collect(),
        ..Ack::default()
    });
    vec![
        ("syn_full_1024", Envelope { header: h.clone(), message: Message::Syn(full) }),
        ("syn_compact_1024", Envelope { header: h.clone(), message: Message::Syn(compact) }),
        ("ack_compact_512_heartbeats", Envelope { header: h.clone(), message: Message::Ack(compact_ack) }),
        ("ack_full_512_heartbeats", Envelope { header: h, message: full_ack }),
    ]
}

fn codec(c: &mut Criterion) {
    let codec = Codec::new(ClusterName::new("bench").unwrap());
    let mut group = c.benchmark_group("codec");
    for (name, env) in messages() {
        let bytes = env.encode();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut out = Vec::with_capacity(bytes.len());
        group.bench_with_input(BenchmarkId::new("encode", name), &env, |b, env| {
            b.iter(|| {
                out.clear();
                black_box(env).encode_into(&mut out);
                black_box(out.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, bytes| {
            b.iter(|| black_box(codec.decode(black_box(bytes)).unwrap()))
        });
    }
    group.finish();
}

fn reconcile(c: &mut Criterion) {
    let view = steady_view(0);
    let behind = steady_view(5);
    let h = header(&view);
    let budget = Budget::new(64 * 1024, &h).unwrap();
    let mut group = c.benchmark_group("reconcile_1024");
    for form in [PageForm::Compact, PageForm::Hashed, PageForm::Full] {
        let syn = build_syn(&behind, budget, None, form).unwrap().syn;
        group.bench_function(BenchmarkId::new("build_syn", format!("{form:?}")), |b| {
            b.iter(|| black_box(build_syn(black_box(&view), budget, None, form).unwrap()))
        });
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        group.bench_function(BenchmarkId::new("handle_syn", format!("{form:?}")), |b| {
            b.iter(|| black_box(handle_syn(black_box(&view), black_box(&syn), budget, &mut rng)))
        });
    }
    group.finish();
}

criterion_group!(benches, codec, reconcile);
criterion_main!(benches);
