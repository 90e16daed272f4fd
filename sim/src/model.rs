//! An exhaustive model check of the SYN/ACK/ACK2 round (issue 4).
//!
//! A hand-written stateright [`Model`] of three nodes that run the crate's real
//! reconciliation functions, not a re-implementation of them:
//!
//! - a gossip round starts with [`build_syn`] (a [`PageForm::Full`] page, or with
//!   [`Bounds::HASHED`] a [`PageForm::Hashed`] one, which must cover every node the
//!   sender knows: the budget leaves room for that);
//! - a SYN is answered with [`handle_syn`];
//! - an ACK goes through [`handle_ack`], [`View::apply`] and [`build_ack2`];
//! - an ACK2 goes through [`handle_ack2`] and [`View::apply`].
//!
//! Every message travels encoded ([`Envelope::encode`]) and is decoded on delivery
//! ([`Codec::decode`]), so the codec is in the loop, and every message must fit its
//! byte budget. The budget is tiny, so deltas really are cut short (the property
//! [`TRUNCATED`] finds a state where that happened).
//!
//! # State
//!
//! Per node, what it knows (a `BTreeMap<NodeId, EndpointState>`, its own state
//! included, behind an `Arc` so that a step copies only what it changes) and how
//! many updates it made; the messages in flight as a sorted `Vec` of
//! `(from, to, bytes)` (so two orders of sending are one state); and what is left
//! of the gossip and duplication budgets. A [`View`] is rebuilt from the states
//! ([`View::from_states`]) for each step, and every step draws from a `ChaCha8Rng`
//! seeded with 0, so a step is a pure function of the receiver's knowledge and
//! the message. Steps are memoized on that pair: the model has about a million
//! states but only thousands of distinct steps, and each runs the real code once.
//!
//! # Actions
//!
//! - `Gossip { from, to }`: `from` starts a round with `to` (at most
//!   [`Bounds::gossips`] rounds in all).
//! - `Update(node)`: the node writes one of its keys again (at most
//!   [`Bounds::updates`] times per node and [`Bounds::total_updates`] in all).
//! - `Deliver(i)`, `Drop(i)`: the network delivers or loses any message in flight
//!   (so it reorders freely).
//! - `Duplicate(i)`: the network copies a message in flight (at most
//!   [`Bounds::duplicates`] times in all).
//!
//! Each node starts knowing only itself, with two keys set and then a heartbeat
//! (versions 2, 3 and 4), so a delta cut short before the heartbeat is reachable.
//! Nodes never beat again in the model (the state space would not be finite).
//!
//! A reply whose delivery cannot change anything (an ACK with no requests and no
//! deltas, an ACK2 with no deltas) is not put on the network: delivering it would be
//! the same as losing it, which the network may do anyway.
//!
//! # Properties
//!
//! - always [`SCUTTLEBUTT`]: the invariant C(p, q) of the scuttlebutt paper;
//! - always [`NO_VERSION_BEYOND_OWNER`]: no holder is ahead of the owner, and
//!   every field it holds is what the owner wrote at that version;
//! - always [`CONVERGENCE_REACHABLE`]: a deterministic lossless continuation under
//!   the same budget makes every node hold every owner's exact state;
//! - sometimes [`CONVERGED`], and sometimes [`TRUNCATED`] (a holder has a strict,
//!   non-empty prefix of an owner's initial state: a delta was cut short).
//!
//! # Bounds
//!
//! [`Bounds::ONE_DELTA`] (a message holds one owner's whole state: 973,856
//! states) and [`Bounds::ONE_FIELD`] (a message holds one field: 884,068 states).
//! Each takes about 13 s of CPU (two threads), and about 300 MB for both.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Budget, ClusterName, Codec, EndpointState, Envelope, Generation, Header, Key, Message, NodeId, PageForm, Timestamp,
    Version, VersionedValue, View, build_ack2, build_syn, handle_ack, handle_ack2, handle_syn,
};
use stateright::{Model, Property};

/// Number of nodes.
pub const NODES: usize = 3;

/// Name of the "always" scuttlebutt invariant C(p, q).
pub const SCUTTLEBUTT: &str = "scuttlebutt invariant";
/// Name of the "always" property that no holder is ahead of the owner.
pub const NO_VERSION_BEYOND_OWNER: &str = "no version beyond the owner";
/// Name of the "always" property that convergence is still reachable.
pub const CONVERGENCE_REACHABLE: &str = "convergence still reachable";
/// Name of the "sometimes" property that every node holds every owner's state.
pub const CONVERGED: &str = "converged";
/// Name of the "sometimes" property that some delta was cut short.
pub const TRUNCATED: &str = "a delta was cut short";

/// The nodes' generation (the clock of the model is far ahead of it).
const GENERATION: Generation = Generation(1);
/// The clock handed to [`View::apply`].
const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

/// The bounds of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Gossip rounds (SYNs) that may be started, by all nodes together.
    pub gossips: u8,
    /// Messages the network may duplicate, in all.
    pub duplicates: u8,
    /// Updates each node may make after its initial state.
    pub updates: u8,
    /// Updates all nodes together may make (`NODES * updates` or more: no further
    /// limit).
    pub total_updates: u8,
    /// Every message's budget in bytes, header included.
    pub budget: usize,
    /// Rounds (each a full exchange between every ordered pair of nodes) the
    /// lossless continuation of [`CONVERGENCE_REACHABLE`] may take.
    pub settle_rounds: usize,
    /// The page every SYN carries: [`PageForm::Full`], or [`PageForm::Hashed`]
    /// (answered by member index, with whole requests and the id check).
    pub form: PageForm,
}

impl Bounds {
    /// A budget of 46 bytes: a message holds one owner's whole state (two values
    /// and the heartbeat) and a request, so an ACK with more requests, or with
    /// more than one owner to send, cuts deltas short, to one field. Three rounds
    /// can make every node hold every owner's state. One duplicate, and one update
    /// by any one node. About 0.97 million states.
    pub const ONE_DELTA: Bounds = Bounds {
        gossips: 3,
        duplicates: 1,
        updates: 1,
        total_updates: 1,
        budget: 46,
        settle_rounds: 8,
        form: PageForm::Full,
    };

    /// A budget of 30 bytes: a message holds one field (and a SYN's page of three
    /// nodes), so nearly every delta is cut short. One duplicate, and one update by
    /// every node. Three rounds cannot make every node hold every owner's state
    /// (that takes at least nine messages with deltas), so [`CONVERGED`] is
    /// unreachable here; [`CONVERGENCE_REACHABLE`] still has to hold. About 0.88
    /// million states.
    pub const ONE_FIELD: Bounds = Bounds {
        gossips: 3,
        duplicates: 1,
        updates: 1,
        total_updates: 3,
        budget: 30,
        settle_rounds: 8,
        form: PageForm::Full,
    };

    /// [`Bounds::ONE_DELTA`] over hashed pages, with a budget of 64 bytes: a
    /// hashed page of three nodes fits (context, salt, 6-byte entries), and the
    /// answers' larger fixed part (context, check, whole list) still cuts deltas
    /// short, while three rounds can make every node hold everything. About 0.92
    /// million states.
    pub const HASHED: Bounds = Bounds { form: PageForm::Hashed, budget: 64, ..Bounds::ONE_DELTA };
}

/// A message in flight.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Packet {
    /// Sender (node index).
    pub from: u8,
    /// Receiver (node index).
    pub to: u8,
    /// The encoded envelope.
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codec = Codec::new(cluster());
        match codec.decode(&self.bytes) {
            Ok(env) => write!(f, "{}->{} ({} B) {:?}", self.from, self.to, self.bytes.len(), env.message),
            Err(e) => write!(f, "{}->{} undecodable ({e}): {:02x?}", self.from, self.to, self.bytes),
        }
    }
}

/// The state of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// What each node knows, its own state included.
    pub known: [Arc<BTreeMap<NodeId, EndpointState>>; NODES],
    /// Updates each node made.
    pub updates: [u8; NODES],
    /// Gossip rounds that may still be started.
    pub gossips_left: u8,
    /// Duplications the network may still make.
    pub duplicates_left: u8,
    /// Messages in flight, sorted.
    pub net: Vec<Packet>,
}

/// An action of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `from` starts a round with `to`: it sends a SYN.
    Gossip {
        /// The node starting the round.
        from: u8,
        /// Its peer.
        to: u8,
    },
    /// The node writes one of its keys again.
    Update(u8),
    /// The network delivers the message at this index.
    Deliver(usize),
    /// The network loses the message at this index.
    Drop(usize),
    /// The network copies the message at this index.
    Duplicate(usize),
}

/// What an owner wrote at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Written {
    Heartbeat,
    Value(Key, VersionedValue),
}

/// The model: three nodes, their ids, codec, budgets, and every owner's history.
pub struct GossipModel {
    bounds: Bounds,
    ids: [NodeId; NODES],
    codec: Codec,
    headers: [Header; NODES],
    budgets: [Budget; NODES],
    /// Each owner's initial state.
    initial: [EndpointState; NODES],
    /// Every field each owner ever writes within the bounds, by version.
    history: [BTreeMap<Version, Written>; NODES],
    /// What delivering a message does, by receiver's knowledge and message.
    delivered: Memo<(Known, Packet), (Known, Option<Packet>)>,
    /// The rounds of [`GossipModel::settle`], by what the nodes know once the
    /// messages in flight are delivered.
    settled: Memo<[Known; NODES], Option<usize>>,
}

/// What one node knows, its own state included.
pub type Known = Arc<BTreeMap<NodeId, EndpointState>>;

/// A memo of a pure function, shared by the checker's threads.
///
/// Every step of the model is a pure function of the receiver's knowledge and the
/// message (the RNG is seeded afresh for each), and far fewer such pairs exist
/// than states, so each distinct input runs the real code once.
struct Memo<K, V> {
    shards: [Mutex<HashMap<K, V>>; 16],
    hasher: RandomState,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    fn new() -> Self {
        Memo { shards: std::array::from_fn(|_| Mutex::new(HashMap::new())), hasher: RandomState::new() }
    }

    fn get_or(&self, key: K, f: impl FnOnce(&K) -> V) -> V {
        let shard = &self.shards[self.hasher.hash_one(&key) as usize % self.shards.len()];
        if let Some(v) = shard.lock().expect("not poisoned").get(&key) {
            return v.clone();
        }
        let v = f(&key);
        shard.lock().expect("not poisoned").insert(key, v.clone());
        v
    }

    fn values(&self) -> Vec<V> {
        self.shards.iter().flat_map(|s| s.lock().expect("not poisoned").values().cloned().collect::<Vec<_>>()).collect()
    }
}

fn cluster() -> ClusterName {
    ClusterName::new("m").expect("a short name")
}

/// The keys each node sets.
fn keys() -> [Key; 2] {
    [Key::STATUS, Key::new("LOAD").expect("a short key")]
}

/// The `n`th write of `owner` (0 and 1: the initial values; then the updates,
/// alternating between the two keys).
fn write(view: &mut View, owner: usize, n: u8) {
    let key = keys()[usize::from(n % 2)].clone();
    let value = format!("{}{n}-----", (b'a' + owner as u8) as char);
    view.set_local(key, value).expect("a small write");
}

impl GossipModel {
    /// The model within `bounds`.
    pub fn new(bounds: Bounds) -> GossipModel {
        let ids: [NodeId; NODES] = std::array::from_fn(|i| NodeId::new([b'a' + i as u8]).expect("a one-letter id"));
        let headers: [Header; NODES] =
            std::array::from_fn(|i| Header { cluster: cluster(), sender: ids[i].clone(), generation: GENERATION });
        let budgets = std::array::from_fn(|i| Budget::new(bounds.budget, &headers[i]).expect("a usable budget"));
        let mut initial = Vec::new();
        let mut history = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            // set, set, beat: the heartbeat lies above both keys
            let mut view = View::new(id.clone(), GENERATION);
            write(&mut view, i, 0);
            write(&mut view, i, 1);
            view.beat().expect("a fresh counter");
            initial.push(view.local_state().clone());
            let mut log = BTreeMap::new();
            let mut record = |s: &EndpointState| {
                log.insert(s.heartbeat(), Written::Heartbeat);
                for (k, vv) in s.values() {
                    log.insert(vv.version, Written::Value(k.clone(), vv.clone()));
                }
            };
            record(view.local_state());
            for n in 0..bounds.updates {
                write(&mut view, i, n + 2);
                record(view.local_state());
            }
            history.push(log);
        }
        GossipModel {
            bounds,
            ids,
            codec: Codec::new(cluster()),
            headers,
            budgets,
            initial: initial.try_into().expect("one per node"),
            history: history.try_into().expect("one per node"),
            delivered: Memo::new(),
            settled: Memo::new(),
        }
    }

    /// The bounds.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// The initial state: each node knows only itself.
    pub fn initial_state(&self) -> State {
        State {
            known: std::array::from_fn(|i| Arc::new(BTreeMap::from([(self.ids[i].clone(), self.initial[i].clone())]))),
            updates: [0; NODES],
            gossips_left: self.bounds.gossips,
            duplicates_left: self.bounds.duplicates,
            net: Vec::new(),
        }
    }

    /// Node `i`'s view, rebuilt from what it knows.
    fn view(&self, i: usize, known: &Known) -> View {
        View::from_states(self.ids[i].clone(), known.iter().map(|(id, s)| (id.clone(), s.clone())))
            .expect("the local state is there")
    }

    /// What `view` knows (`old` if that is unchanged).
    fn known(view: &View, old: &Known) -> Known {
        let new: BTreeMap<NodeId, EndpointState> = view.iter().map(|(id, s)| (id.clone(), s.clone())).collect();
        if new == **old { old.clone() } else { Arc::new(new) }
    }

    /// Encodes a message from `from` to `to`; it must fit the budget.
    fn packet(&self, from: usize, to: usize, message: Message) -> Packet {
        let bytes = Envelope { header: self.headers[from].clone(), message }.encode();
        assert!(bytes.len() <= self.bounds.budget, "{} bytes over a budget of {}", bytes.len(), self.bounds.budget);
        Packet { from: from as u8, to: to as u8, bytes: bytes.into() }
    }

    /// The SYN `from` sends to start a round with `to`.
    fn syn(&self, view: &View, from: usize, to: usize) -> Packet {
        let built = build_syn(view, self.budgets[from], None, self.bounds.form).expect("a page fits the budget");
        assert_eq!(built.covered, view.len(), "the budget must leave room for a page of every node");
        self.packet(from, to, Message::Syn(built.syn))
    }

    /// Delivers `p` to its receiver, which knows `known`: what the receiver knows
    /// then, and its reply, if one can change anything. A pure function (memoized).
    fn deliver(&self, known: &Known, p: &Packet) -> (Known, Option<Packet>) {
        self.delivered.get_or((known.clone(), p.clone()), |(known, p)| {
            let mut view = self.view(usize::from(p.to), known);
            let reply = self.receive(&mut view, p);
            (Self::known(&view, known), reply)
        })
    }

    /// What the receiver of `p`, whose view is `view`, does with it: the real
    /// handlers, after decoding.
    fn receive(&self, view: &mut View, p: &Packet) -> Option<Packet> {
        let (r, s) = (usize::from(p.to), usize::from(p.from));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let env = self.codec.decode(&p.bytes).expect("what the model encodes decodes");
        assert_eq!(env.header, self.headers[s], "the header round-trips");
        match env.message {
            Message::Syn(syn) => {
                let ack = handle_syn(view, &syn, self.budgets[r], &mut rng).message;
                assert!(ack.resend.is_none(), "no page of the model is compact");
                assert_eq!(
                    ack.compact.as_ref().map(|c| c.answers_hashed()),
                    (self.bounds.form == PageForm::Hashed).then_some(true),
                    "full pages get full answers, hashed pages hashed ones"
                );
                let compact = ack.compact.as_ref().map_or(0, |c| c.request_count() + c.delta_count());
                let useful = !ack.requests.is_empty() || !ack.deltas.is_empty() || compact > 0;
                useful.then(|| self.packet(r, s, Message::Ack(ack)))
            }
            Message::Ack(ack) => {
                let received = handle_ack(view, &ack);
                view.apply(&received.deltas, NOW);
                let ack2 = build_ack2(view, &received.requests, self.budgets[r], &mut rng).message;
                let useful = !ack2.deltas.is_empty() || ack2.compact.is_some();
                useful.then(|| self.packet(r, s, Message::Ack2(ack2)))
            }
            Message::Ack2(ack2) => {
                let received = handle_ack2(view, &ack2);
                view.apply(&received.deltas, NOW);
                None
            }
            other => panic!("unexpected message {other:?}"),
        }
    }

    fn insert(net: &mut Vec<Packet>, p: Packet) {
        let at = net.binary_search(&p).unwrap_or_else(|at| at);
        net.insert(at, p);
    }

    fn all_hold_all(&self, known: &[Known; NODES]) -> bool {
        (0..NODES).all(|q| (0..NODES).all(|p| known[q].get(&self.ids[p]) == known[p].get(&self.ids[p])))
    }

    /// Whether every node holds every owner's exact state.
    pub fn converged(&self, state: &State) -> bool {
        self.all_hold_all(&state.known)
    }

    /// Delivers every message in `net`, and their replies, in order.
    fn drain(&self, known: &mut [Known; NODES], net: &mut VecDeque<Packet>) {
        while let Some(p) = net.pop_front() {
            let r = usize::from(p.to);
            let (after, reply) = self.deliver(&known[r], &p);
            known[r] = after;
            net.extend(reply);
        }
    }

    /// The lossless continuation of `state`: every message in flight is delivered
    /// (and their replies, until none is left), then rounds of exchanges between
    /// every ordered pair of nodes, each delivered at once, run under the same
    /// budget. Returns the number of rounds after which every node holds every
    /// owner's exact state, or `None` if that takes more than
    /// [`Bounds::settle_rounds`].
    pub fn settle(&self, state: &State) -> Option<usize> {
        let mut known = state.known.clone();
        self.drain(&mut known, &mut state.net.iter().cloned().collect());
        self.settled.get_or(known, |known| {
            let mut known = known.clone();
            for round in 0..=self.bounds.settle_rounds {
                if self.all_hold_all(&known) {
                    return Some(round);
                }
                if round == self.bounds.settle_rounds {
                    break;
                }
                for a in 0..NODES {
                    for b in (0..NODES).filter(|&b| b != a) {
                        let syn = self.syn(&self.view(a, &known[a]), a, b);
                        self.drain(&mut known, &mut VecDeque::from([syn]));
                    }
                }
            }
            None
        })
    }

    /// The most rounds [`GossipModel::settle`] took from any state checked so far.
    pub fn most_settle_rounds(&self) -> Option<usize> {
        self.settled.values().into_iter().flatten().max()
    }

    /// C(p, q) for every owner p and holder q: every field of p's own state is
    /// held by q exactly, or lies above q's max version of p.
    pub fn scuttlebutt(&self, state: &State) -> bool {
        (0..NODES).all(|p| {
            let owner = &state.known[p][&self.ids[p]];
            (0..NODES).all(|q| {
                let Some(held) = state.known[q].get(&self.ids[p]) else { return true };
                let max = held.max_version();
                (owner.heartbeat() == held.heartbeat() || owner.heartbeat() > max)
                    && owner.values().iter().all(|(k, vv)| held.get(k) == Some(vv) || vv.version > max)
            })
        })
    }

    /// No holder has a max version of p above p's own, and every field it holds of
    /// p is what p wrote at that version (and has written already).
    pub fn no_version_beyond_owner(&self, state: &State) -> bool {
        (0..NODES).all(|p| {
            let owner = &state.known[p][&self.ids[p]];
            let log = &self.history[p];
            let top = owner.max_version();
            (0..NODES).all(|q| {
                let Some(held) = state.known[q].get(&self.ids[p]) else { return true };
                held.generation() == owner.generation()
                    && held.max_version() <= top
                    && held.purged() == Version::ZERO
                    && (held.heartbeat() == Version::ZERO
                        || held.heartbeat() <= top && log.get(&held.heartbeat()) == Some(&Written::Heartbeat))
                    && held.values().iter().all(|(k, vv)| {
                        vv.version <= top && log.get(&vv.version) == Some(&Written::Value(k.clone(), vv.clone()))
                    })
            })
        })
    }

    /// Whether some holder has a strict, non-empty prefix of an owner's initial
    /// state: a delta was cut short by the budget.
    pub fn truncated(&self, state: &State) -> bool {
        (0..NODES).any(|p| {
            let top = self.initial[p].max_version();
            (0..NODES).filter(|&q| q != p).any(|q| {
                state.known[q]
                    .get(&self.ids[p])
                    .is_some_and(|s| s.max_version() > Version::ZERO && s.max_version() < top)
            })
        })
    }
}

impl Model for GossipModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![self.initial_state()]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.gossips_left > 0 {
            for from in 0..NODES as u8 {
                for to in (0..NODES as u8).filter(|&to| to != from) {
                    actions.push(Action::Gossip { from, to });
                }
            }
        }
        let updated: u8 = state.updates.iter().sum();
        for node in 0..NODES {
            if state.updates[node] < self.bounds.updates && updated < self.bounds.total_updates {
                actions.push(Action::Update(node as u8));
            }
        }
        for (i, p) in state.net.iter().enumerate() {
            // copies of one message lead to the same states
            if i > 0 && state.net[i - 1] == *p {
                continue;
            }
            actions.push(Action::Deliver(i));
            actions.push(Action::Drop(i));
            if state.duplicates_left > 0 {
                actions.push(Action::Duplicate(i));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut next = last.clone();
        match action {
            Action::Gossip { from, to } => {
                let (from, to) = (usize::from(from), usize::from(to));
                next.gossips_left -= 1;
                Self::insert(&mut next.net, self.syn(&self.view(from, &last.known[from]), from, to));
            }
            Action::Update(node) => {
                let i = usize::from(node);
                let mut view = self.view(i, &last.known[i]);
                write(&mut view, i, last.updates[i] + 2);
                next.updates[i] += 1;
                next.known[i] = Self::known(&view, &last.known[i]);
            }
            Action::Deliver(at) => {
                let p = next.net.remove(at);
                let r = usize::from(p.to);
                let (known, reply) = self.deliver(&last.known[r], &p);
                next.known[r] = known;
                if let Some(reply) = reply {
                    Self::insert(&mut next.net, reply);
                }
            }
            Action::Drop(at) => {
                next.net.remove(at);
            }
            Action::Duplicate(at) => {
                next.duplicates_left -= 1;
                let copy = next.net[at].clone();
                Self::insert(&mut next.net, copy);
            }
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(SCUTTLEBUTT, |m: &GossipModel, s: &State| m.scuttlebutt(s)),
            Property::always(NO_VERSION_BEYOND_OWNER, |m: &GossipModel, s: &State| m.no_version_beyond_owner(s)),
            Property::always(CONVERGENCE_REACHABLE, |m: &GossipModel, s: &State| m.settle(s).is_some()),
            Property::sometimes(CONVERGED, |m: &GossipModel, s: &State| m.converged(s)),
            Property::sometimes(TRUNCATED, |m: &GossipModel, s: &State| m.truncated(s)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumormill::Ack;

    fn decode_ack(m: &GossipModel, p: &Packet) -> Ack {
        match m.codec.decode(&p.bytes).unwrap().message {
            Message::Ack(ack) => ack,
            other => panic!("not an ACK: {other:?}"),
        }
    }

    #[test]
    fn under_the_one_field_budget_a_delta_carries_one_field() {
        let m = GossipModel::new(Bounds::ONE_FIELD);
        let s = m.initial_state();
        let s = m.next_state(&s, Action::Gossip { from: 0, to: 1 }).unwrap();
        let s = m.next_state(&s, Action::Deliver(0)).unwrap();
        // b asks for a; its request leaves no room for its own first field
        let ack = decode_ack(&m, &s.net[0]);
        assert_eq!((ack.requests.len(), ack.deltas.len()), (1, 0), "{ack:?}");
        let s = m.next_state(&s, Action::Deliver(0)).unwrap();
        // a answers with its first field only: the heartbeat lies above it and
        // stays behind, by the prefix rule
        let Message::Ack2(ack2) = m.codec.decode(&s.net[0].bytes).unwrap().message else { panic!("an ACK2") };
        assert_eq!(ack2.deltas.len(), 1);
        let delta = &ack2.deltas[0];
        assert_eq!(delta.values.len(), 1, "{delta:?}");
        assert_eq!(delta.values[0].1.version, Version(2));
        assert!(s.net[0].bytes.len() <= Bounds::ONE_FIELD.budget);
        let s = m.next_state(&s, Action::Deliver(0)).unwrap();
        assert!(s.net.is_empty());
        if cfg!(feature = "mutant") {
            // the planted bug attaches the heartbeat anyway: b now claims version 4
            // of a while it misses a's value at 3
            assert_eq!(delta.heartbeat, Some(Version(4)));
            assert_eq!(s.known[1][&m.ids[0]].max_version(), Version(4));
            assert!(!m.scuttlebutt(&s));
        } else {
            // b holds a up to version 2 only: a delta was cut short
            assert_eq!(delta.heartbeat, None);
            assert_eq!(s.known[1][&m.ids[0]].max_version(), Version(2));
            assert!(m.truncated(&s) && m.scuttlebutt(&s) && m.no_version_beyond_owner(&s));
            assert!(m.settle(&s).is_some_and(|rounds| rounds > 1));
        }
    }

    #[test]
    fn under_the_one_delta_budget_one_round_syncs_a_pair() {
        let m = GossipModel::new(Bounds::ONE_DELTA);
        let mut s = m.initial_state();
        for action in [Action::Gossip { from: 0, to: 1 }, Action::Deliver(0), Action::Deliver(0), Action::Deliver(0)] {
            s = m.next_state(&s, action).unwrap();
        }
        assert!(s.net.is_empty());
        assert_eq!(s.known[0], s.known[1]);
        assert!(!m.truncated(&s) && m.scuttlebutt(&s) && m.no_version_beyond_owner(&s));
        if !cfg!(feature = "mutant") {
            assert_eq!(m.settle(&m.initial_state()), Some(1));
        }
    }

    #[test]
    fn updates_and_duplicates_are_bounded() {
        let m = GossipModel::new(Bounds::ONE_DELTA);
        let s = m.initial_state();
        let s = m.next_state(&s, Action::Update(2)).unwrap();
        assert_eq!(s.known[2][&m.ids[2]].max_version(), Version(5));
        let mut actions = Vec::new();
        m.actions(&s, &mut actions);
        assert!(!actions.iter().any(|a| matches!(a, Action::Update(_))), "one update in all");
        let s = m.next_state(&s, Action::Gossip { from: 2, to: 0 }).unwrap();
        let s = m.next_state(&s, Action::Duplicate(0)).unwrap();
        assert_eq!(s.net.len(), 2);
        actions.clear();
        m.actions(&s, &mut actions);
        // two copies of one message: one delivery and one drop, no more copies
        assert_eq!(actions.iter().filter(|a| matches!(a, Action::Deliver(_) | Action::Drop(_))).count(), 2);
        assert!(!actions.iter().any(|a| matches!(a, Action::Duplicate(_))));
    }
}
