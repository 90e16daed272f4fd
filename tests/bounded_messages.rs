//! Bounded messages at scale: every builder stays within its budget for any
//! cluster size, digest pages walk the whole view in a bounded number of SYNs,
//! and the steady-state compact SYN at 1,024 nodes fits in 4 KiB.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Budget, ClusterName, DigestPage, EndpointState, Envelope, Generation, Header, Key, Message, NodeId, NodeRange,
    PageForm, Syn, Version, VersionedValue, View, build_ack2, build_syn, handle_ack, handle_syn,
};

/// `n` nodes as node `me` sees them: host-id-like ids, `keys` 16-byte values each,
/// versions of nodes up for about a month; `lag` versions behind on odd nodes.
fn view(n: usize, keys: usize, me: usize, lag: u64) -> View {
    let ids: Vec<NodeId> = (0..n).map(id).collect();
    let states = ids.iter().enumerate().map(|(i, id)| {
        let values = (0..keys).map(|k| {
            (
                Key::new(&format!("key{k}")).unwrap(),
                VersionedValue::live(&b"0123456789abcdef"[..], Version(10 + k as u64)),
            )
        });
        let hb = Version(2_600_000 + i as u64 * 3 - if i % 2 == 1 { lag } else { 0 });
        (id.clone(), EndpointState::from_parts(Generation(1_697_000_000 + i as u64), hb, values, Version::ZERO))
    });
    View::from_states(ids[me].clone(), states).unwrap()
}

fn id(i: usize) -> NodeId {
    NodeId::new(format!("{:08x}-7d2e-4c1a-host-{i:05}", (i as u64 * 2_654_435_761) % (1 << 32))).unwrap()
}

fn size_of_digest(d: &rumormill::Digest) -> usize {
    let varint = |x: u64| (64 - (x | 1).leading_zeros() as usize).div_ceil(7);
    1 + d.node.as_bytes().len() + varint(d.generation.0) + varint(d.max_version.0) + varint(d.purged.0)
}

fn header(v: &View) -> Header {
    Header {
        cluster: ClusterName::new("prod").unwrap(),
        sender: v.local_id().clone(),
        generation: v.local_generation(),
    }
}

fn size(v: &View, message: Message) -> usize {
    Envelope { header: header(v), message }.encode().len()
}

#[test]
fn steady_state_compact_syn_at_1024_nodes_fits_in_4_kib() {
    let v = view(1024, 8, 0, 0);
    let built = build_syn(&v, Budget::new(64 * 1024, &header(&v)).unwrap(), None, PageForm::Compact).unwrap();
    assert_eq!(built.covered, 1024, "one page covers everyone");
    let compact = size(&v, Message::Syn(built.syn));
    let full = size(&v, Message::Syn(build_syn(&v, Budget::unlimited(), None, PageForm::Full).unwrap().syn));
    println!("SYN at 1,024 nodes: compact {compact} bytes, full {full} bytes");
    assert!(compact <= 4096, "compact SYN of {compact} bytes");
}

#[test]
fn page_walks_cover_every_node_within_the_bound_and_fit_the_budget() {
    for (n, budget) in [(100, 512), (1024, 1400), (4096, 1400), (4096, 64 * 1024), (10_000, 1400)] {
        let v = view(n, 2, 0, 0);
        let b = Budget::new(budget, &header(&v)).unwrap();
        for form in [PageForm::Full, PageForm::Compact, PageForm::Hashed] {
            // the documented bound: a page's overhead is its header, page tag, two
            // range bounds, a count (and for compact pages two hashes); each page
            // holds at least as many entries as fit in the rest
            let longest_id = v.iter().map(|(id, _)| id.as_bytes().len()).max().unwrap();
            let overhead = rumormill::header_len(&header(&v)) + 1 + 2 * (1 + longest_id) + 3 + 16;
            // (in bits: a compact entry is 2 bytes and a quiet bit)
            let largest_entry = match form {
                PageForm::Full => 8 * v.iter().map(|(id, s)| size_of_digest(&s.digest(id))).max().unwrap(),
                PageForm::Compact => 17,
                PageForm::Hashed => {
                    8 * v
                        .iter()
                        .map(|(_, s)| 4 + varint_len(s.max_version().0) + varint_len(s.purged().0))
                        .max()
                        .unwrap()
                }
            };
            let per_page = 8 * (budget - overhead) / largest_entry;
            let bound = n.div_ceil(per_page);
            let mut start = None;
            let mut seen = std::collections::BTreeSet::new();
            let mut pages = 0;
            loop {
                let built = build_syn(&v, b, start.as_ref(), form).unwrap();
                pages += 1;
                assert!(size(&v, Message::Syn(built.syn.clone())) <= budget);
                let range = match &built.syn.page {
                    DigestPage::Range { range, .. } => range.clone(),
                    DigestPage::Compact(c) => c.context().range.clone(),
                    DigestPage::Hashed(h) => h.context().range.clone(),
                    DigestPage::Listed(_) => unreachable!(),
                };
                seen.extend(v.range(&range).map(|(id, _)| id.clone()));
                start = built.next;
                if start.is_none() {
                    break;
                }
            }
            assert_eq!(seen.len(), n, "{n} nodes, {form:?}: a walk must cover everyone");
            assert!(pages <= bound, "{n} nodes, budget {budget}, {form:?}: {pages} pages, bound {bound}");
        }
    }
}

#[test]
fn answers_fit_their_budget_whatever_the_cluster_size() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (n, budget) in [(1024, 1400), (4096, 1400), (4096, 64 * 1024)] {
        let behind = view(n, 8, 1, 3);
        let ahead = view(n, 8, 0, 0);
        for form in [PageForm::Full, PageForm::Compact, PageForm::Hashed] {
            let syn = build_syn(&behind, Budget::new(budget, &header(&behind)).unwrap(), None, form).unwrap().syn;
            // the SYN's receiver knows nothing yet: it requests everything listed
            let newcomer = View::new(NodeId::new("newcomer").unwrap(), Generation(1_700_000_000));
            for responder in [&ahead, &newcomer] {
                let ack = handle_syn(responder, &syn, Budget::new(budget, &header(responder)).unwrap(), &mut rng);
                let ack_len = size(responder, Message::Ack(ack.message.clone()));
                assert!(ack_len <= budget, "ACK of {ack_len} > {budget}");
                let received = handle_ack(&behind, &ack.message);
                let ack2 =
                    build_ack2(&behind, &received.requests, Budget::new(budget, &header(&behind)).unwrap(), &mut rng);
                assert!(size(&behind, Message::Ack2(ack2.message)) <= budget);
            }
        }
        // the shadow-round SYN asks for everything: the answer still fits
        let shadow = Syn { page: DigestPage::Listed(vec![]) };
        let ack = handle_syn(&ahead, &shadow, Budget::new(budget, &header(&ahead)).unwrap(), &mut rng);
        assert!(size(&ahead, Message::Ack(ack.message)) <= budget);
        assert!(ack.left_out > 0 || budget > 1_000_000);
        let _ = NodeRange::FULL;
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}
