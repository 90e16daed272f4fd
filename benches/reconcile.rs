//! The cost of one SYN/ACK/ACK2 round, per step, at 16 to 4,096 nodes.
//!
//! Run: `cargo bench --bench reconcile` (criterion prints medians; throughput is in
//! nodes of the cluster per second, so time per node is 1 / throughput).
//!
//! The cluster is steady: both sides know every node, each with eight 16-byte
//! values and host-id-like ids. A (node 0) starts the round with B (node 1). A is
//! a few versions behind on the odd nodes and B on the even ones, so each message
//! carries about N/2 heartbeat deltas: the ACK N/2 deltas and N/2 requests, the
//! ACK2 N/2 deltas. Every message has a 65,000-byte budget; a full-form SYN past
//! about 1,650 nodes covers only part of the cluster (what it covers is printed).

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Ack2, Budget, ClusterName, EndpointState, Envelope, Generation, Header, Key, Message, NodeId, PageForm, Syn,
    Timestamp, Version, VersionedValue, View, build_ack2, build_syn, handle_ack, handle_ack2, handle_syn,
};
use std::hint::black_box;
use std::time::Duration;

const SIZES: [usize; 5] = [16, 64, 256, 1024, 4096];
const FORMS: [PageForm; 3] = [PageForm::Compact, PageForm::Hashed, PageForm::Full];
/// How many versions a side is behind on the nodes it lags on.
const LAG: u64 = 5;
const BUDGET: usize = 65_000;
const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

fn id(i: usize) -> NodeId {
    NodeId::new(format!("{:08x}-7d2e-4c1a-host-{i:04}", (i as u64 * 2_654_435_761) % (1 << 32))).unwrap()
}

/// `n` nodes as node `me` sees them: eight 16-byte values each, versions of nodes
/// up for about a month, `LAG` versions behind on the nodes of parity `behind_on`
/// (never on `me`, which has the other parity).
fn view(n: usize, me: usize, behind_on: usize) -> View {
    assert_ne!(me % 2, behind_on);
    let states = (0..n).map(|i| {
        let values = (0..8).map(|k| {
            (Key::new(&format!("key{k}")).unwrap(), VersionedValue::live(&b"0123456789abcdef"[..], Version(10 + k)))
        });
        let hb = Version(2_600_000 + i as u64 * 3 - if i % 2 == behind_on { LAG } else { 0 });
        (id(i), EndpointState::from_parts(Generation(1_697_000_000 + i as u64), hb, values, Version::ZERO))
    });
    View::from_states(id(me), states).unwrap()
}

fn header(v: &View) -> Header {
    Header {
        cluster: ClusterName::new("bench").unwrap(),
        sender: v.local_id().clone(),
        generation: v.local_generation(),
    }
}

fn budget(v: &View) -> Budget {
    Budget::new(BUDGET, &header(v)).unwrap()
}

fn encoded_len(v: &View, message: Message) -> usize {
    Envelope { header: header(v), message }.encode().len()
}

/// One round, precomputed, so each step can be measured on its own inputs.
struct Round {
    n: usize,
    form: PageForm,
    /// The SYN's sender, before the round.
    a: View,
    /// The SYN's receiver, before the round.
    b: View,
    syn: Syn,
    ack: Ack,
    ack2: Ack2,
}

impl Round {
    fn new(n: usize, form: PageForm) -> Round {
        let a = view(n, 0, 1);
        let b = view(n, 1, 0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let built = build_syn(&a, budget(&a), None, form).unwrap();
        let syn = built.syn;
        let ack = handle_syn(&b, &syn, budget(&b), &mut rng);
        assert!(ack.context_error.is_none());
        let mut a_after = a.clone();
        let received = handle_ack(&a_after, &ack.message);
        assert!(received.context_error.is_none());
        let applied_ack = a_after.apply(&received.deltas, NOW);
        let ack2 = build_ack2(&a_after, &received.requests, budget(&a_after), &mut rng);
        let mut b_after = b.clone();
        let received2 = handle_ack2(&b_after, &ack2.message);
        assert!(received2.context_error.is_none());
        let applied_ack2 = b_after.apply(&received2.deltas, NOW);
        assert!(applied_ack.ignored.is_empty() && applied_ack2.ignored.is_empty());
        eprintln!(
            "N={n} {form:?}: SYN covers {} nodes in {} B; ACK {} requests + {} deltas ({} left out) in {} B; \
             ACK2 {} deltas ({} left out) in {} B; {} + {} changes applied",
            built.covered,
            encoded_len(&a, Message::Syn(syn.clone())),
            received.requests.len(),
            received.deltas.len(),
            ack.left_out,
            encoded_len(&b, Message::Ack(ack.message.clone())),
            received2.deltas.len(),
            ack2.left_out,
            encoded_len(&a_after, Message::Ack2(ack2.message.clone())),
            applied_ack.changes.len(),
            applied_ack2.changes.len(),
        );
        Round { n, form, a, b, syn, ack: ack.message, ack2: ack2.message }
    }

    fn id(&self) -> BenchmarkId {
        BenchmarkId::new(format!("{:?}", self.form), self.n)
    }

    /// Batches of cloned views: a 4,096-node view is several MB.
    fn batch(&self) -> BatchSize {
        if self.n <= 256 { BatchSize::SmallInput } else { BatchSize::LargeInput }
    }
}

fn rounds() -> Vec<Round> {
    FORMS.iter().flat_map(|&form| SIZES.iter().map(move |&n| Round::new(n, form))).collect()
}

fn reconcile(c: &mut Criterion) {
    let rounds = rounds();
    let mut rng = ChaCha8Rng::seed_from_u64(2);

    // A: the SYN
    let mut group = c.benchmark_group("build_syn");
    for r in &rounds {
        group.throughput(Throughput::Elements(r.n as u64));
        let b = budget(&r.a);
        group.bench_with_input(r.id(), r, |bench, r| {
            bench.iter(|| black_box(build_syn(black_box(&r.a), b, None, r.form).unwrap()))
        });
    }
    group.finish();

    // B: the ACK
    let mut group = c.benchmark_group("handle_syn");
    for r in &rounds {
        group.throughput(Throughput::Elements(r.n as u64));
        let b = budget(&r.b);
        group.bench_with_input(r.id(), r, |bench, r| {
            bench.iter(|| black_box(handle_syn(black_box(&r.b), black_box(&r.syn), b, &mut rng)))
        });
    }
    group.finish();

    // A: resolve the ACK, apply its deltas, answer its requests
    let mut group = c.benchmark_group("handle_ack+apply+build_ack2");
    for r in &rounds {
        group.throughput(Throughput::Elements(r.n as u64));
        let b = budget(&r.a);
        group.bench_with_input(r.id(), r, |bench, r| {
            bench.iter_batched_ref(
                || r.a.clone(),
                |a| {
                    let received = handle_ack(a, black_box(&r.ack));
                    let applied = a.apply(&received.deltas, NOW);
                    let ack2 = build_ack2(a, &received.requests, b, &mut rng);
                    black_box((applied, ack2))
                },
                r.batch(),
            )
        });
    }
    group.finish();

    // B: resolve the ACK2, apply its deltas
    let mut group = c.benchmark_group("handle_ack2+apply");
    for r in &rounds {
        group.throughput(Throughput::Elements(r.n as u64));
        group.bench_with_input(r.id(), r, |bench, r| {
            bench.iter_batched_ref(
                || r.b.clone(),
                |b| {
                    let received = handle_ack2(b, black_box(&r.ack2));
                    black_box(b.apply(&received.deltas, NOW))
                },
                r.batch(),
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = reconcile
}
criterion_main!(benches);
