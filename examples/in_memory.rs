//! A few in-memory nodes gossiping with the pure reconciliation functions, on a
//! virtual clock, until every node holds every other node's values.
//!
//! Run: `cargo run --example in_memory`

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rumormill::{
    Budget, ClusterName, Codec, Envelope, Generation, Header, Key, Message, NodeId, PageForm, Timestamp, View,
    build_ack2, build_syn, handle_ack, handle_ack2, handle_syn,
};

const NODES: usize = 6;
const BUDGET: usize = 512; // small on purpose: deltas get truncated and paged

struct Node {
    view: View,
    cursor: Option<NodeId>,
    codec: Codec,
}

impl Node {
    fn header(&self) -> Header {
        Header {
            cluster: self.codec.cluster().clone(),
            sender: self.view.local_id().clone(),
            generation: self.view.local_generation(),
        }
    }

    fn seal(&self, message: Message) -> Vec<u8> {
        let bytes = Envelope { header: self.header(), message }.encode();
        assert!(bytes.len() <= BUDGET, "a builder exceeded its budget");
        bytes
    }

    fn budget(&self) -> Budget {
        Budget::new(BUDGET, &self.header()).expect("budget holds a header")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = ClusterName::new("example")?;
    let mut now = Timestamp::from_secs(1_700_000_000);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut nodes: Vec<Node> = (0..NODES)
        .map(|i| {
            let id = NodeId::new(format!("node-{i}")).unwrap();
            let mut view = View::new(id, Generation(now.as_secs()));
            view.set_local(Key::STATUS, "NORMAL").unwrap();
            view.set_local(Key::DC, if i % 2 == 0 { "eu-west" } else { "us-east" }).unwrap();
            view.set_local(Key::new("load").unwrap(), format!("{}", i * 10).as_str()).unwrap();
            Node { view, cursor: None, codec: Codec::new(cluster.clone()) }
        })
        .collect();

    let (mut messages, mut bytes) = (0usize, 0usize);
    for round in 1..=20 {
        now = now + core::time::Duration::from_secs(1);
        for a in 0..NODES {
            nodes[a].view.beat()?;
            // a ring plus a random chord, so it takes a few rounds
            let b = if rng.next_u32() % 2 == 0 { (a + 1) % NODES } else { rng.next_u32() as usize % NODES };
            if a == b {
                continue;
            }
            // SYN: a -> b
            let built = build_syn(&nodes[a].view, nodes[a].budget(), nodes[a].cursor.as_ref(), PageForm::Full)?;
            nodes[a].cursor = built.next;
            let wire = nodes[a].seal(Message::Syn(built.syn));
            bytes += wire.len();
            // ACK: b -> a
            let Message::Syn(syn) = nodes[b].codec.decode(&wire)?.message else { unreachable!() };
            let ack = handle_syn(&nodes[b].view, &syn, nodes[b].budget(), &mut rng).message;
            let wire = nodes[b].seal(Message::Ack(ack));
            bytes += wire.len();
            // ACK2: a -> b
            let Message::Ack(ack) = nodes[a].codec.decode(&wire)?.message else { unreachable!() };
            let received = handle_ack(&nodes[a].view, &ack);
            nodes[a].view.apply(&received.deltas, now);
            let ack2 = build_ack2(&nodes[a].view, &received.requests, nodes[a].budget(), &mut rng).message;
            let wire = nodes[a].seal(Message::Ack2(ack2));
            bytes += wire.len();
            let Message::Ack2(ack2) = nodes[b].codec.decode(&wire)?.message else { unreachable!() };
            let deltas = handle_ack2(&nodes[b].view, &ack2).deltas;
            nodes[b].view.apply(&deltas, now);
            messages += 3;
        }
        let complete = nodes.iter().filter(|n| knows_everyone(n, &nodes)).count();
        println!("round {round:2}: {complete}/{NODES} nodes hold every other node's values");
        if complete == NODES {
            println!("converged after {round} rounds, {messages} messages, {bytes} bytes (budget {BUDGET} B/message)");
            let view = &nodes[0].view;
            for (id, state) in view.iter() {
                let values: Vec<String> = state
                    .live_values()
                    .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                println!(
                    "  node-0 sees {id} gen {} max v{}: {}",
                    state.generation(),
                    state.max_version(),
                    values.join(" ")
                );
            }
            return Ok(());
        }
    }
    Err("did not converge in 20 rounds".into())
}

/// Whether `n` holds each other node's values at the versions their owners wrote.
fn knows_everyone(n: &Node, all: &[Node]) -> bool {
    all.iter().all(|other| {
        let owner = other.view.local_state();
        n.view.get(other.view.local_id()).is_some_and(|s| {
            s.generation() == owner.generation() && owner.values().iter().all(|(k, vv)| s.get(k) == Some(vv))
        })
    })
}
