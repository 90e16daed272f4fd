//! Choosing whom to gossip with each round, by the reference Gossiper's rules.

use alloc::vec::Vec;

use crate::NodeId;

/// How many live peers a round contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Fanout {
    /// Cassandra: one random live peer, an unreachable one with probability
    /// `U/(L+1)`, and a seed when the live pick was not a seed or fewer nodes are
    /// live than there are seeds (with probability `S/(L+U)`, or always if none is
    /// live).
    Reference,
    /// Scylla: the live peers shuffled into this many chunks, one chunk per round,
    /// so every live peer is contacted within that many rounds; a peer that comes
    /// up joins the front chunk; unreachable peers as in the reference; all seeds
    /// when nothing is live.
    Chunked(u32),
    /// This many random live peers per round, otherwise as the reference.
    Random(u32),
}

/// The candidates of one round.
pub(crate) struct Candidates<'a> {
    pub(crate) live: Vec<&'a NodeId>,
    pub(crate) unreachable: Vec<&'a NodeId>,
    pub(crate) seeds: Vec<&'a NodeId>,
}

/// Where Scylla's chunked walk is: the shuffled live peers and the next chunk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Walk {
    order: Vec<NodeId>,
    next: usize,
}

impl Walk {
    /// Scylla puts a node that just came up in the front chunk: it is contacted
    /// next round instead of waiting for the next shuffle (up to a whole cycle).
    pub(crate) fn bring_forward(&mut self, node: &NodeId) {
        if self.order[self.next..].contains(node) {
            return;
        }
        self.order.insert(self.next, node.clone());
    }
}

fn uniform<R: rand_core::Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    // n is small (a cluster size); the modulo bias is below 2^-40
    (rng.next_u64() % n as u64) as usize
}

fn unit<R: rand_core::Rng + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn pick<'a, R: rand_core::Rng + ?Sized>(rng: &mut R, from: &[&'a NodeId]) -> Option<&'a NodeId> {
    (!from.is_empty()).then(|| from[uniform(rng, from.len())])
}

/// The peers to send this round's SYN to, without repeats.
pub(crate) fn choose<R: rand_core::Rng + ?Sized>(
    c: &Candidates<'_>,
    fanout: Fanout,
    walk: &mut Walk,
    rng: &mut R,
) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = Vec::new();
    let add = |id: &NodeId, out: &mut Vec<NodeId>| {
        if !out.contains(id) {
            out.push(id.clone());
        }
    };
    let (l, u, s) = (c.live.len(), c.unreachable.len(), c.seeds.len());

    // live peers
    let mut live_pick_was_seed = false;
    match fanout {
        Fanout::Reference | Fanout::Random(_) => {
            let n = if let Fanout::Random(n) = fanout { n.max(1) as usize } else { 1 };
            if n == 1 {
                // (the same draw as from a pool, without copying the pool)
                if let Some(p) = pick(rng, &c.live) {
                    live_pick_was_seed |= c.seeds.contains(&p);
                    add(p, &mut out);
                }
            } else {
                let mut pool = c.live.clone();
                for _ in 0..n.min(l) {
                    let i = uniform(rng, pool.len());
                    let p = pool.swap_remove(i);
                    live_pick_was_seed |= c.seeds.contains(&p);
                    add(p, &mut out);
                }
            }
        }
        Fanout::Chunked(chunks) => {
            if walk.next >= walk.order.len() {
                // a new cycle: shuffle who is live now
                walk.order = c.live.iter().map(|id| (*id).clone()).collect();
                for i in (1..walk.order.len()).rev() {
                    walk.order.swap(i, uniform(rng, i + 1));
                }
                walk.next = 0;
            }
            let size = walk.order.len().div_ceil(chunks.max(1) as usize).max(1);
            let end = (walk.next + size).min(walk.order.len());
            for id in &walk.order[walk.next..end] {
                // peers that died since the shuffle are skipped, not contacted
                if c.live.contains(&id) {
                    live_pick_was_seed |= c.seeds.contains(&id);
                    add(id, &mut out);
                }
            }
            walk.next = end;
        }
    }

    // an unreachable peer, with probability U / (L + 1) (strictly less)
    if u > 0
        && unit(rng) < u as f64 / (l as f64 + 1.0)
        && let Some(p) = pick(rng, &c.unreachable)
    {
        add(p, &mut out);
    }

    // seeds: the seed-island rule
    if let Fanout::Chunked(_) = fanout {
        if l == 0 {
            for seed in &c.seeds {
                add(seed, &mut out);
            }
        }
    } else if s > 0
        && (!live_pick_was_seed || l < s)
        // with nothing live, always; otherwise with probability S / (L + U)
        && (l == 0 || unit(rng) <= s as f64 / (l + u) as f64)
        && let Some(p) = pick(rng, &c.seeds)
    {
        add(p, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    fn ids(prefix: &str, n: usize) -> Vec<NodeId> {
        (0..n).map(|i| NodeId::new(format!("{prefix}{i}")).unwrap()).collect()
    }

    #[test]
    fn with_nothing_live_a_seed_is_always_contacted() {
        let seeds = ids("s", 3);
        let c = Candidates { live: vec![], unreachable: vec![], seeds: seeds.iter().collect() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let t = choose(&c, Fanout::Reference, &mut Walk::default(), &mut rng);
            assert_eq!(t.len(), 1);
            assert!(seeds.contains(&t[0]));
        }
    }

    #[test]
    fn unreachable_and_seed_probabilities_follow_the_reference() {
        // L = 9 live non-seeds, U = 5 unreachable, S = 2 seeds (not live)
        let (live, unreachable, seeds) = (ids("l", 9), ids("u", 5), ids("s", 2));
        let c = Candidates {
            live: live.iter().collect(),
            unreachable: unreachable.iter().collect(),
            seeds: seeds.iter().collect(),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut to_unreachable, mut to_seed) = (0, 0);
        let rounds = 200_000;
        for _ in 0..rounds {
            let t = choose(&c, Fanout::Reference, &mut Walk::default(), &mut rng);
            assert!(live.contains(&t[0]), "the first target is a live peer");
            to_unreachable += t.iter().filter(|p| unreachable.contains(p)).count();
            to_seed += t.iter().filter(|p| seeds.contains(p)).count();
        }
        let p_u = to_unreachable as f64 / rounds as f64;
        let p_s = to_seed as f64 / rounds as f64;
        assert!((p_u - 5.0 / 10.0).abs() < 0.01, "unreachable {p_u}");
        assert!((p_s - 2.0 / 14.0).abs() < 0.01, "seed {p_s}");
    }

    #[test]
    fn a_live_seed_pick_skips_the_seed_step_unless_fewer_are_live_than_seeds() {
        // all live peers are seeds, and L >= S: the seed step never adds another
        let seeds = ids("s", 2);
        let live: Vec<&NodeId> = seeds.iter().collect();
        let c = Candidates { live: live.clone(), unreachable: vec![], seeds: live };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            assert_eq!(choose(&c, Fanout::Reference, &mut Walk::default(), &mut rng).len(), 1);
        }
        // one live seed of three: L < S, so the island rule adds another seed
        let seeds = ids("s", 3);
        let c = Candidates { live: vec![&seeds[0]], unreachable: vec![], seeds: seeds.iter().collect() };
        let extra =
            (0..1000).filter(|_| choose(&c, Fanout::Reference, &mut Walk::default(), &mut rng).len() == 2).count();
        assert!(extra > 0, "the seed-island rule never fired");
    }

    #[test]
    fn chunked_walk_contacts_every_live_peer_within_the_chunk_count() {
        let live = ids("l", 95);
        let c = Candidates { live: live.iter().collect(), unreachable: vec![], seeds: vec![] };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut walk = Walk::default();
        let mut seen = alloc::collections::BTreeSet::new();
        for _ in 0..10 {
            let t = choose(&c, Fanout::Chunked(10), &mut walk, &mut rng);
            assert!(t.len() <= 10);
            seen.extend(t);
        }
        assert_eq!(seen.len(), 95);
    }

    #[test]
    fn a_node_just_up_is_in_the_next_chunk() {
        let live = ids("l", 40);
        let c = Candidates { live: live.iter().collect(), unreachable: vec![], seeds: vec![] };
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let mut walk = Walk::default();
        choose(&c, Fanout::Chunked(10), &mut walk, &mut rng);
        // a node up since the shuffle, and one already walked this cycle
        let newcomer = NodeId::new("new").unwrap();
        let walked = walk.order[0].clone();
        walk.bring_forward(&newcomer);
        walk.bring_forward(&walked);
        let mut with_newcomer = live.clone();
        with_newcomer.push(newcomer.clone());
        let c = Candidates { live: with_newcomer.iter().collect(), unreachable: vec![], seeds: vec![] };
        let next = choose(&c, Fanout::Chunked(10), &mut walk, &mut rng);
        assert_eq!(next[..2], [walked, newcomer], "{next:?}");
        // the chunk is still a tenth of the cycle's peers (42 in all, in chunks of 5)
        assert_eq!(next.len(), 5);
    }

    #[test]
    fn chunked_walk_with_nothing_live_contacts_every_seed() {
        let seeds = ids("s", 3);
        let c = Candidates { live: vec![], unreachable: vec![], seeds: seeds.iter().collect() };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let t = choose(&c, Fanout::Chunked(10), &mut Walk::default(), &mut rng);
        assert_eq!(t, seeds);
        // with a live peer, Scylla contacts no seed
        let live = ids("l", 1);
        let c = Candidates { live: live.iter().collect(), unreachable: vec![], seeds: seeds.iter().collect() };
        for _ in 0..100 {
            assert_eq!(choose(&c, Fanout::Chunked(10), &mut Walk::default(), &mut rng), live);
        }
    }

    #[test]
    fn random_fanout_picks_that_many_distinct_live_peers() {
        let live = ids("l", 20);
        let c = Candidates { live: live.iter().collect(), unreachable: vec![], seeds: vec![] };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut hits = [0u32; 20];
        for _ in 0..2_000 {
            let t = choose(&c, Fanout::Random(3), &mut Walk::default(), &mut rng);
            assert_eq!(t.len(), 3);
            assert!(t[0] != t[1] && t[1] != t[2] && t[0] != t[2], "{t:?}");
            for p in &t {
                hits[live.iter().position(|l| l == p).unwrap()] += 1;
            }
        }
        // uniform: 300 picks each, expected
        assert!(hits.iter().all(|&h| (240..360).contains(&h)), "{hits:?}");
        // fewer live peers than the fanout: each once
        let c = Candidates { live: live[..2].iter().collect(), unreachable: vec![], seeds: vec![] };
        assert_eq!(choose(&c, Fanout::Random(3), &mut Walk::default(), &mut rng).len(), 2);
    }
}
