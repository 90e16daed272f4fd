//! The Gossiper: one node's sans-IO state machine. It turns time, received bytes
//! and local writes into bytes to send and events, by the reference Gossiper's
//! rules. The protocol itself lives in the pure functions of `reconcile`; this is
//! the bookkeeping around them: rounds, peer choice, liveness, lifecycle.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::time::Duration;

mod peer;
mod sealing;

use peer::{Echoing, Peer, Quiet, Survey, verdict};

use crate::entries::SortedMap;
use crate::event::{Event, Output, Transmit};
use crate::reconcile::{Beat, Beats, answer_syn, resolve_ack, resolve_ack2};
use crate::removal::{self, Removal};
use crate::selection::{self, Candidates, Walk};
use crate::snapshot::{Liveness, Member, Snapshot};
use crate::{
    ArrivalWindow, Budget, Change, Codec, Config, ConfigError, DecodeError, Delta, DigestPage, EndpointState, Envelope,
    Generation, Header, Ignored, Key, Message, Metrics, NodeId, PageForm, Status, Syn, Timestamp, Value, Version, View,
    WriteError, build_ack2, build_syn, handle_ack,
};

/// Exchanges in flight with one peer, whether or not its state is known.
#[derive(Clone, Copy, Debug, Default)]
struct Inflight {
    syn_sent: Option<Timestamp>,
    ack_sent: Option<Timestamp>,
    /// The ACK asked for state: if its ACK2 is lost, this node pulls the state
    /// with a SYN of its own (see [`Gossiper::pull_lost_pushes`]).
    ack_requested: bool,
}

/// The round's first exchange, retried with another peer if it is lost.
#[derive(Clone, Debug)]
struct Primary {
    peer: NodeId,
    sent: Timestamp,
    retries_left: u32,
}

/// A forgotten node that may not come back at its old state for a while.
#[derive(Clone, Copy, Debug)]
struct Quarantine {
    generation: Generation,
    version: Version,
    until: Timestamp,
}

#[derive(Clone, Debug)]
enum Mode {
    /// Learning the cluster from the seeds without joining it.
    Shadow {
        started: Timestamp,
        next_try: Timestamp,
        attempts: u32,
        states: BTreeMap<NodeId, EndpointState>,
        quiet_seeds: BTreeSet<NodeId>,
    },
    /// The shadow round is over; waiting for [`Gossiper::join`].
    AwaitingJoin,
    Running,
    /// Shut down gracefully: silent.
    ShutDown,
    /// Removed by another node: silent.
    Removed,
}

/// Index of a message kind in [`Metrics`]' per-kind arrays.
fn kind_index(m: &Message) -> usize {
    match m {
        Message::Syn(_) => 0,
        Message::Ack(_) => 1,
        Message::Ack2(_) => 2,
        Message::Echo(_) => 3,
        Message::EchoReply(_) => 4,
        _ => 5,
    }
}

/// [`ignored_index`] of the limits' reasons.
const LIMITS: usize = 5;

/// Index of an [`Ignored`] reason in [`Metrics::ignored_deltas`].
fn ignored_index(i: &Ignored) -> usize {
    match i {
        Ignored::OwnState { .. } => 0,
        Ignored::FutureGeneration { .. } => 1,
        Ignored::OlderGeneration { .. } => 2,
        Ignored::NotContiguous { .. } => 3,
        Ignored::BelowPurgeFloor { .. } => 4,
        Ignored::TooManyNodes { .. } | Ignored::TooManyKeys { .. } | Ignored::ValueTooLarge { .. } => LIMITS,
        _ => 6,
    }
}

/// One node of a gossip cluster, as a sans-IO state machine.
///
/// # Driving it
///
/// Every method that takes `now` returns an [`Output`]: messages to send, events,
/// and the time by which to call [`Gossiper::handle_timeout`] next. Nothing is kept
/// back for later, so there is nothing to drain. The loop:
///
/// 1. Create it with [`Gossiper::new`], giving the time and a seeded RNG.
/// 2. Send every [`Transmit`] of every `Output` to its node (your code maps node
///    ids to addresses); act on the events.
/// 3. When bytes arrive, call [`Gossiper::handle_datagram`].
/// 4. At `next_deadline` (or earlier, or more than once: harmless), call
///    [`Gossiper::handle_timeout`].
/// 5. To publish something, [`Gossiper::set`] or [`Gossiper::delete`]; to leave,
///    [`Gossiper::shutdown`].
///
/// Time is whatever you pass, in milliseconds since the Unix epoch; a time earlier
/// than one already seen is treated as that one. The same inputs and seed give the
/// same outputs, byte for byte.
///
/// # Backpressure
///
/// At most one exchange is in flight per peer: no new SYN goes to a peer whose
/// last SYN is unanswered (until `Config::exchange_timeout`). Incoming messages are
/// answered as they are handed in, so nothing queues inside the node: Scylla's
/// out-of-memory crashes came from queues of pending ACKs, and its fix (a newer SYN
/// from a peer replaces a queued one) is what this design does by construction. An
/// ACK is applied only if it answers our SYN to that peer still in flight, an ACK2
/// only if it answers our ACK; anything else is counted in
/// [`Metrics::unsolicited`] and dropped.
///
/// ```
/// use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
/// use rumormill::{ClusterName, Config, Generation, Gossiper, Key, NodeId, Timestamp};
///
/// let mut config = Config::new(ClusterName::new("demo")?);
/// config.seeds = vec![NodeId::new("a")?];
/// let mut now = Timestamp::from_secs(1_700_000_000);
/// let generation = Generation(now.as_secs());
/// let mut a = Gossiper::new(config.clone(), NodeId::new("a")?, generation, now, ChaCha8Rng::seed_from_u64(1))?;
/// let mut b = Gossiper::new(config, NodeId::new("b")?, generation, now, ChaCha8Rng::seed_from_u64(2))?;
/// b.set(now, Key::STATUS, "NORMAL")?;
///
/// // a tiny driver: deliver every transmit at once, tick both nodes every 100 ms
/// let mut inbox = Vec::new();
/// for _ in 0..50 {
///     now = now + core::time::Duration::from_millis(100);
///     for node in [&mut a, &mut b] {
///         inbox.extend(node.handle_timeout(now).transmits);
///     }
///     while let Some(t) = inbox.pop() {
///         let to = if t.to.as_bytes() == b"a" { &mut a } else { &mut b };
///         inbox.extend(to.handle_datagram(now, &t.bytes).transmits);
///     }
/// }
/// let status = a.view().get(&NodeId::new("b")?).unwrap().live_value(&Key::STATUS).unwrap();
/// assert_eq!(status.as_bytes(), b"NORMAL");
/// assert!(a.snapshot().live().any(|id| id.as_bytes() == b"b"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Gossiper<R> {
    config: Config,
    codec: Codec,
    view: View,
    rng: R,
    peers: SortedMap<Peer>,
    /// Moves whenever a peer is added or removed, goes up or down, or enters or
    /// leaves a dead state.
    peers_epoch: u64,
    /// The last walk over the peers found nothing to do (see `Gossiper::survey`).
    quiet: Option<Quiet>,
    /// Whether the peers lined up with the view's nodes (see
    /// `Gossiper::peers_line_up`), as of these view and peer epochs.
    lined_up: Option<(u64, u64, bool)>,
    inflight: BTreeMap<NodeId, Inflight>,
    primary: Option<Primary>,
    removed: BTreeMap<NodeId, Removal>,
    quarantined: BTreeMap<NodeId, Quarantine>,
    mode: Mode,
    now: Timestamp,
    started: Timestamp,
    next_round: Timestamp,
    last_round: Option<Timestamp>,
    pause_until: Timestamp,
    full_cursor: Option<NodeId>,
    compact_cursor: Option<NodeId>,
    walk: Walk,
    members_changed: Timestamp,
    settle_change: Timestamp,
    liveness_epoch: u64,
    cached: Option<Arc<Snapshot>>,
    metrics: Metrics,
    /// The nonces of the current generation, made at the first sealed message.
    #[cfg(feature = "encryption")]
    nonces: Option<crate::NonceSequence>,
}

impl<R: rand_core::Rng> Gossiper<R> {
    /// A node that starts gossiping at once. Its first round comes at a random
    /// moment within the first interval, so that nodes started together spread out.
    ///
    /// `generation` must be newer than any this node used before (Cassandra
    /// persists it and takes `max(stored + 1, now in seconds)`): peers ignore an
    /// older one until the node renews it, and with sealing on, nonces are unique
    /// by construction only across generations (see [`NonceSequence`](crate::NonceSequence)
    /// for the salt that covers a mistaken reuse).
    pub fn new(
        config: Config,
        id: NodeId,
        generation: Generation,
        now: Timestamp,
        rng: R,
    ) -> Result<Self, ConfigError> {
        let mut g = Gossiper::build(config, id, generation, now, rng)?;
        let phase = g.rng.next_u64() % g.config.interval.as_millis().max(1) as u64;
        g.next_round = now + Duration::from_millis(phase);
        Ok(g)
    }

    /// A node that first runs a shadow round: it asks the seeds for the cluster's
    /// state (an empty SYN, resent every `shadow_retry`) without joining, reports
    /// what it learned in [`Event::ShadowRound`], and waits for [`Gossiper::join`].
    /// Meanwhile it answers only other shadow rounds, with empty ACKs.
    pub fn new_shadow(
        config: Config,
        id: NodeId,
        generation: Generation,
        now: Timestamp,
        rng: R,
    ) -> Result<Self, ConfigError> {
        let mut g = Gossiper::build(config, id, generation, now, rng)?;
        g.mode = Mode::Shadow {
            started: now,
            next_try: now,
            attempts: 0,
            states: BTreeMap::new(),
            quiet_seeds: BTreeSet::new(),
        };
        Ok(g)
    }

    fn build(config: Config, id: NodeId, generation: Generation, now: Timestamp, rng: R) -> Result<Self, ConfigError> {
        config.validate()?;
        let codec = Codec::new(config.cluster.clone()).with_max_value_len(config.limits.max_value_len);
        let view = View::new(id, generation).with_limits(config.limits.clone());
        Ok(Gossiper {
            codec,
            view,
            rng,
            peers: SortedMap::default(),
            peers_epoch: 0,
            lined_up: None,
            quiet: None,
            inflight: BTreeMap::new(),
            primary: None,
            removed: BTreeMap::new(),
            quarantined: BTreeMap::new(),
            mode: Mode::Running,
            now,
            started: now,
            next_round: now,
            last_round: None,
            pause_until: now,
            full_cursor: None,
            compact_cursor: None,
            walk: Walk::default(),
            members_changed: now,
            settle_change: now,
            liveness_epoch: 0,
            cached: None,
            metrics: Metrics::default(),
            #[cfg(feature = "encryption")]
            nonces: None,
            config,
        })
    }

    // ----- getters -----

    /// The local node's id.
    pub fn local_id(&self) -> &NodeId {
        self.view.local_id()
    }

    /// The replicated state as this node sees it.
    pub fn view(&self) -> &View {
        &self.view
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters of what was done and refused.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether `node` is up as this node judges it (the local node always is).
    pub fn is_up(&self, node: &NodeId) -> bool {
        node == self.local_id() || self.peers.get(node).is_some_and(|p| p.up)
    }

    /// The failure detector's arrival window for `node`, if it is a known peer.
    pub fn detector(&self, node: &NodeId) -> Option<&ArrivalWindow> {
        self.peers.get(node).map(|p| &p.window)
    }

    /// The time by which [`Gossiper::handle_timeout`] should be called next.
    pub fn next_deadline(&self) -> Timestamp {
        match &self.mode {
            Mode::Shadow { next_try, started, .. } => (*next_try).min(*started + self.config.shadow_timeout),
            // overdue echoes are given up at the next round: no need to wake sooner
            Mode::Running => {
                let retry = match &self.primary {
                    Some(p) if p.retries_left > 0 => p.sent + self.config.exchange_timeout,
                    _ => self.next_round,
                };
                let pull = self
                    .inflight
                    .values()
                    .filter(|i| i.ack_requested)
                    .filter_map(|i| i.ack_sent)
                    .min()
                    .map_or(self.next_round, |at| at + self.config.exchange_timeout);
                self.next_round.min(retry).min(pull)
            }
            // nothing to do until called
            _ => Timestamp::from_millis(u64::MAX),
        }
    }

    /// Whether the view has stopped changing (the reference's wait to settle): the
    /// node has been running at least `settle_min`, and for `settle_quiet` nothing
    /// changed but heartbeats and chatter keys.
    pub fn is_settled(&self, now: Timestamp) -> bool {
        let now = now.max(self.now);
        matches!(self.mode, Mode::Running)
            && now.saturating_since(self.started) >= self.config.settle_min
            && now.saturating_since(self.settle_change) >= self.config.settle_quiet
    }

    /// An immutable copy of the view with everyone's liveness, cheap to share with
    /// other threads. It is rebuilt only when something changed since the last one.
    pub fn snapshot(&mut self) -> Arc<Snapshot> {
        let revision = self.view.revision() + self.liveness_epoch;
        if let Some(s) = &self.cached
            && s.revision == revision
        {
            return s.clone();
        }
        let members = self
            .view
            .iter()
            .map(|(id, state)| {
                let peer = self.peers.get(id);
                let up = id == self.view.local_id() || peer.is_some_and(|p| p.up);
                let member = Member {
                    state: state.clone(),
                    liveness: if up { Liveness::Up } else { Liveness::Down },
                    status: Status::of(state),
                    phi: peer.map_or(0.0, |p| p.window.phi(&self.config.detector, self.now)),
                };
                (id.clone(), member)
            })
            .collect();
        let s = Arc::new(Snapshot { revision, local: self.view.local_id().clone(), members });
        self.cached = Some(s.clone());
        s
    }

    // ----- local writes -----

    /// Publishes a value of this node.
    pub fn set(&mut self, now: Timestamp, key: Key, value: impl Into<Value>) -> Result<Output, WriteError> {
        self.clock(now);
        self.view.set_local(key, value)?;
        Ok(self.finish(Vec::new(), Vec::new()))
    }

    /// Deletes a value of this node (a tombstone, purged after the grace period).
    pub fn delete(&mut self, now: Timestamp, key: &Key) -> Result<Output, WriteError> {
        let now = self.clock(now);
        self.view.delete_local(key, now)?;
        Ok(self.finish(Vec::new(), Vec::new()))
    }

    /// Sets this node's `STATUS`.
    pub fn set_status(&mut self, now: Timestamp, status: Status) -> Result<Output, WriteError> {
        self.set(now, Key::STATUS, status.as_str())
    }

    /// Removes `node` from the cluster for good (it was decommissioned or
    /// replaced): this node writes a removal record into its own state, forgets the
    /// node, and gossip carries the record to everyone, who forget it too and refuse
    /// its state at that generation until the record expires
    /// (`Config::removal_expiry`). The node itself goes silent when the record
    /// reaches it. A later generation of it can join again.
    pub fn remove(&mut self, now: Timestamp, node: &NodeId) -> Result<Output, RemoveError> {
        let now = self.clock(now);
        if node == self.local_id() {
            return Err(RemoveError::Local);
        }
        let generation = self.view.get(node).ok_or(RemoveError::Unknown)?.generation();
        let record = Removal { node: node.clone(), generation, expires: now + self.config.removal_expiry };
        let mut records = self.own_removals(now);
        records.retain(|r| r.node != *node);
        records.push(record.clone());
        self.view.set_local(removal::removed_key(), removal::encode(&records)).map_err(RemoveError::Write)?;
        let mut events = Vec::new();
        self.absorb_removals(now, &[record], &mut events);
        Ok(self.finish(Vec::new(), events))
    }

    /// Leaves gracefully: sets `STATUS` to shutdown, tells every live peer so they
    /// mark this node down at once, and goes silent.
    pub fn shutdown(&mut self, now: Timestamp) -> Output {
        self.clock(now);
        let mut transmits = Vec::new();
        if matches!(self.mode, Mode::Running) {
            // a local write cannot fail here but for an exhausted counter, and then
            // the shutdown message still goes out
            let _ = self.view.set_local(Key::STATUS, Status::Shutdown.as_str());
            let live: Vec<NodeId> = self.peers.iter().filter(|(_, p)| p.up).map(|(id, _)| id.clone()).collect();
            for id in live {
                self.send(&id, Message::Shutdown, &mut transmits);
            }
        }
        self.mode = Mode::ShutDown;
        self.finish(transmits, Vec::new())
    }

    /// Ends the shadow round (if it is still running) and starts gossiping.
    pub fn join(&mut self, now: Timestamp) -> Output {
        let now = self.clock(now);
        if matches!(self.mode, Mode::Shadow { .. } | Mode::AwaitingJoin) {
            self.mode = Mode::Running;
            self.started = now;
            self.next_round = now;
        }
        self.finish(Vec::new(), Vec::new())
    }

    // ----- inputs -----

    /// Advances time: runs a gossip round when one is due (giving up overdue echoes
    /// there), and drives the shadow round. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Output {
        let now = self.clock(now);
        let (mut transmits, mut events) = (Vec::new(), Vec::new());
        match self.mode {
            Mode::Shadow { .. } => self.shadow_tick(now, &mut transmits, &mut events),
            Mode::Running => {
                if now >= self.next_round {
                    // (echoes expire in the round's walk over the peers)
                    self.pull_lost_pushes(now, &mut transmits);
                    self.round(now, &mut transmits, &mut events);
                } else {
                    self.retry_lost_exchange(now, &mut transmits);
                    self.pull_lost_pushes(now, &mut transmits);
                }
            }
            _ => {}
        }
        self.finish(transmits, events)
    }

    /// Handles bytes received from the network. Bytes that do not decode, belong to
    /// another cluster, or come from this node are counted and otherwise ignored;
    /// nothing here can fail.
    pub fn handle_datagram(&mut self, now: Timestamp, bytes: &[u8]) -> Output {
        let now = self.clock(now);
        let (mut transmits, mut events) = (Vec::new(), Vec::new());
        self.metrics.received_bytes += bytes.len() as u64;
        if bytes.len() > self.config.max_receive_bytes {
            self.metrics.too_large += 1;
            return self.finish(transmits, events);
        }
        let Some(bytes) = self.unseal(bytes) else {
            return self.finish(transmits, events);
        };
        match self.codec.decode(&bytes) {
            Err(DecodeError::WrongCluster) => self.metrics.wrong_cluster += 1,
            Err(_) => self.metrics.decode_errors += 1,
            Ok(env) => {
                self.metrics.received[kind_index(&env.message)] += 1;
                if env.header.sender == *self.local_id() {
                    self.metrics.from_self += 1;
                } else {
                    self.receive(now, env, &mut transmits, &mut events);
                }
            }
        }
        self.finish(transmits, events)
    }

    // ----- internals -----

    /// Time never goes back: an earlier `now` is taken as the latest seen.
    fn clock(&mut self, now: Timestamp) -> Timestamp {
        self.now = self.now.max(now);
        self.now
    }

    fn finish(&mut self, transmits: Vec<Transmit>, events: Vec<Event>) -> Output {
        for e in &events {
            match e {
                Event::Changed { key, .. } if self.config.chatter_keys.contains(key) => {}
                Event::Alive { .. } | Event::Dead { .. } | Event::ShutDown { .. } => self.liveness_epoch += 1,
                _ => {}
            }
            if !matches!(e, Event::Changed { key, .. } if self.config.chatter_keys.contains(key)) {
                self.settle_change = self.now;
            }
        }
        Output { transmits, events, next_deadline: self.next_deadline() }
    }

    fn header(&self) -> Header {
        Header {
            cluster: self.config.cluster.clone(),
            sender: self.view.local_id().clone(),
            generation: self.view.local_generation(),
        }
    }

    fn budget(&self) -> Budget {
        let bytes = self.config.max_message_bytes - self.config.seal_overhead();
        Budget::new(bytes, &self.header()).expect("validated: the budget holds a header")
    }

    fn send(&mut self, to: &NodeId, message: Message, transmits: &mut Vec<Transmit>) {
        let kind = kind_index(&message);
        let plain = Envelope { header: self.header(), message }.encode();
        let Some(bytes) = self.seal(plain) else {
            self.metrics.seal_failures += 1;
            return;
        };
        debug_assert!(bytes.len() <= self.config.max_message_bytes, "a builder exceeded its budget");
        self.metrics.sent[kind] += 1;
        self.metrics.sent_bytes[kind] += bytes.len() as u64;
        transmits.push(Transmit { to: to.clone(), bytes });
    }

    /// The page form for a SYN to `to`: compact only if the peer is a member this
    /// node knows (a node it does not know certainly knows other members), this
    /// node's members have not changed lately (peers are unlikely to agree yet), and
    /// the peer has not lately been unable to use a compact page.
    fn page_form(&self, now: Timestamp, to: &NodeId) -> PageForm {
        let full = !self.config.compact_digests
            || now.saturating_since(self.members_changed) < self.config.interval * 2
            || self.peers.get(to).is_none_or(|p| p.full_pages_until().is_some_and(|t| t > now));
        if full { self.uncompact_form() } else { PageForm::Compact }
    }

    /// The form of pages for peers that may know other members than we do.
    fn uncompact_form(&self) -> PageForm {
        if self.config.hashed_digests { PageForm::Hashed } else { PageForm::Full }
    }

    /// A SYN to `to`: the next page of the walk of that form (full and hashed pages
    /// share one walk).
    fn send_syn(&mut self, now: Timestamp, to: &NodeId, form: PageForm, transmits: &mut Vec<Transmit>) {
        let full = form != PageForm::Compact;
        let cursor = if full { self.full_cursor.clone() } else { self.compact_cursor.clone() };
        // A full page that covers every node beats a hashed one: its answer names
        // nodes by id, so it survives our members changing before it arrives.
        let whole_full = (form == PageForm::Hashed)
            .then(|| build_syn(&self.view, self.budget(), None, PageForm::Full).ok())
            .flatten()
            .filter(|b| b.covered == self.view.len());
        match whole_full.map_or_else(|| build_syn(&self.view, self.budget(), cursor.as_ref(), form), Ok) {
            Ok(built) => {
                if full {
                    self.full_cursor = built.next;
                } else {
                    self.compact_cursor = built.next;
                }
                self.inflight.entry(to.clone()).or_default().syn_sent = Some(now);
                self.send(to, Message::Syn(built.syn), transmits);
            }
            // the validated budget holds a page of one node; count it if not
            Err(_) => self.metrics.budget_hits += 1,
        }
    }

    /// One gossip round: heartbeat, status check, housekeeping, then SYNs.
    fn round(&mut self, now: Timestamp, transmits: &mut Vec<Transmit>, events: &mut Vec<Event>) {
        self.metrics.rounds += 1;
        if let Some(last) = self.last_round {
            let gap = now.saturating_since(last);
            if gap > self.config.pause_threshold {
                self.metrics.pauses += 1;
                self.pause_until = now + self.config.pause_threshold;
                events.push(Event::LocalPause { millis: gap.as_millis() as u64 });
            }
        }
        self.last_round = Some(now);
        self.next_round = self.next_round + self.config.interval;
        if self.next_round <= now {
            self.next_round = now + self.config.interval;
        }
        // the heartbeat; an exhausted counter needs a new generation
        if self.view.beat().is_err() {
            let renewed = Generation(self.view.local_generation().0.saturating_add(1));
            let previous = self.view.local_generation();
            if self.view.renew_local_generation(renewed).is_ok() {
                events.push(Event::GenerationRenewed { previous, generation: renewed });
            }
        }
        self.view.purge_local(now, self.config.tombstone_grace);
        // One walk over the peers: expired echoes, convictions, evictions, and the
        // live and unreachable peers to pick from (every round walks every peer,
        // so one walk rather than four)
        let survey = self.survey(now);
        let settled = survey.convicted.is_empty() && survey.evict.is_empty();
        self.convict(now, survey.convicted, events);
        self.housekeeping(now, survey.evict, events);

        let seeds: Vec<NodeId> = self.config.seeds.iter().filter(|s| *s != self.local_id()).cloned().collect();
        let targets = {
            // (`dead_state_since` follows the STATUS of every state applied: reading
            // it is what keeps this O(peers) when most peers are down)
            let (live, unreachable) = if settled {
                (survey.live, survey.unreachable)
            } else {
                // peers went down or away: sort them again
                let mut again = Survey::default();
                for (i, (_, p)) in self.peers.iter().enumerate() {
                    again.list(i, p);
                }
                (again.live, again.unreachable)
            };
            let ids = |positions: Vec<usize>| positions.into_iter().map(|i| &self.peers.ids()[i]).collect();
            let (live, unreachable) = (ids(live), ids(unreachable));
            let candidates = Candidates { live, unreachable, seeds: seeds.iter().collect() };
            selection::choose(&candidates, self.config.fanout, &mut self.walk, &mut self.rng)
        };
        self.primary = None;
        for to in targets {
            // at most one exchange in flight per peer
            let busy = self
                .inflight
                .get(&to)
                .and_then(|i| i.syn_sent)
                .is_some_and(|at| now.saturating_since(at) < self.config.exchange_timeout);
            if !busy {
                let form = self.page_form(now, &to);
                self.send_syn(now, &to, form, transmits);
                if self.primary.is_none() {
                    let retries_left = self.config.round_retries;
                    self.primary = Some(Primary { peer: to.clone(), sent: now, retries_left });
                }
            }
        }
    }

    /// If the round's first exchange got no ACK within the exchange timeout, it is
    /// taken as lost and tried again with another live peer (or, with none, a seed
    /// or the same peer), while retries are left.
    fn retry_lost_exchange(&mut self, now: Timestamp, transmits: &mut Vec<Transmit>) {
        let Some(p) = &self.primary else { return };
        if p.retries_left == 0 || now < p.sent + self.config.exchange_timeout {
            return;
        }
        let (failed, retries_left) = (p.peer.clone(), p.retries_left - 1);
        let live: Vec<&NodeId> = self.peers.iter().filter(|(id, p)| p.up && **id != failed).map(|(id, _)| id).collect();
        let to = if live.is_empty() {
            let seeds: Vec<&NodeId> = self.config.seeds.iter().filter(|s| *s != self.local_id()).collect();
            if seeds.is_empty() { failed } else { seeds[(self.rng.next_u64() % seeds.len() as u64) as usize].clone() }
        } else {
            live[(self.rng.next_u64() % live.len() as u64) as usize].clone()
        };
        let form = self.page_form(now, &to);
        self.send_syn(now, &to, form, transmits);
        self.primary = Some(Primary { peer: to, sent: now, retries_left });
    }

    /// A peer whose SYN this node answered with requests sent no ACK2 within the
    /// exchange timeout: the exchange's push half was lost (the SYN's sender
    /// retries only when its own pull half is lost). This node pulls the state
    /// itself, with a SYN to that peer, once per lost ACK2. Under 20 % loss an
    /// ACK2 is lost about half the time (its ACK or itself), and without this a
    /// cold start took 2.2 times the loss-free rounds.
    fn pull_lost_pushes(&mut self, now: Timestamp, transmits: &mut Vec<Transmit>) {
        let timeout = self.config.exchange_timeout;
        let mut lost = Vec::new();
        for (peer, i) in &mut self.inflight {
            if i.ack_requested && i.ack_sent.is_some_and(|at| now.saturating_since(at) >= timeout) {
                i.ack_sent = None;
                i.ack_requested = false;
                if i.syn_sent.is_none_or(|at| now.saturating_since(at) >= timeout) {
                    lost.push(peer.clone());
                }
            }
        }
        for to in lost {
            let form = self.page_form(now, &to);
            self.send_syn(now, &to, form, transmits);
        }
    }

    /// The round's walk over the peers. Gives up echoes unanswered for
    /// `echo_timeout`; finds the peers the failure detector convicts (the
    /// reference's doStatusCheck) and those to forget (a dead state past
    /// `dead_state_expiry`, a fat client silent past its timeout, judged as if
    /// the convictions had happened); lists the live and unreachable peers by
    /// position, as they are before any of that.
    ///
    /// A walk that finds nothing to do tells until when the next would find the
    /// same (`Quiet`): an echo, a dead state or a fat client expires no sooner
    /// than the earliest it saw (or, for one that starts later, than its
    /// timeout from now), and no peer is convicted sooner than its last heartbeat
    /// plus the detector's quiet floor (heartbeats only move that later). Until
    /// then, while no peer changed, rounds take its lists without walking: the
    /// walk read every peer, and was a tenth of the CPU time once converged.
    fn survey(&mut self, now: Timestamp) -> Survey {
        if let Some(q) = &self.quiet
            && q.peers_epoch == self.peers_epoch
            && now < q.until
        {
            #[cfg(debug_assertions)]
            self.assert_quiet(now, q);
            let (live, unreachable) = q.lists(self.peers.len());
            return Survey { convicted: Vec::new(), evict: Vec::new(), live, unreachable };
        }
        let paused = now < self.pause_until;
        let floor = self.config.detector.quiet_floor();
        let fat_timeout = self.config.fat_client.as_ref().map(|(_, t)| *t);
        let mut until = (now + self.config.echo_timeout).min(now + self.config.dead_state_expiry);
        if let Some(t) = fat_timeout {
            until = until.min(now + t);
        }
        let mut out = Survey::default();
        for (i, (id, p)) in self.peers.iter_mut().enumerate() {
            let (echo_expired, convicts, evict) = verdict(&self.config, &self.view, id, p, now, paused);
            if p.rare.is_some() {
                if echo_expired {
                    p.update(|r| r.echo = None);
                    self.metrics.echo_timeouts += 1;
                }
                if p.full_pages_until().is_some_and(|t| t <= now) {
                    p.update(|r| r.full_pages_until = None);
                }
                if let Some(e) = p.echo() {
                    until = until.min(e.since + self.config.echo_timeout);
                }
                if let Some(t) = p.dead_state_since() {
                    until = until.min(t + self.config.dead_state_expiry);
                }
            }
            if convicts {
                out.convicted.push(id.clone());
            } else if p.up {
                until = until.min(p.window.last() + floor);
            }
            if let Some(t) = fat_timeout {
                until = until.min(p.heard + t);
            }
            if evict {
                out.evict.push(id.clone());
            }
            out.list(i, p);
        }
        let narrow = |l: &Vec<usize>| l.iter().map(|&i| i as u32).collect();
        let all_live = out.live.len() == self.peers.len();
        self.quiet = (out.convicted.is_empty() && out.evict.is_empty()).then(|| Quiet {
            lists: (!all_live).then(|| (narrow(&out.live), narrow(&out.unreachable))),
            until,
            peers_epoch: self.peers_epoch,
        });
        out
    }

    /// Tests hold every round that skips the walk to what the walk would find.
    #[cfg(debug_assertions)]
    fn assert_quiet(&self, now: Timestamp, q: &Quiet) {
        let paused = now < self.pause_until;
        let mut fresh = Survey::default();
        for (i, (id, p)) in self.peers.iter().enumerate() {
            let found = verdict(&self.config, &self.view, id, p, now, paused);
            assert_eq!(found, (false, false, false), "a quiet round found work for {id}");
            fresh.list(i, p);
        }
        assert_eq!((fresh.live, fresh.unreachable), q.lists(self.peers.len()), "quiet lists went stale");
    }

    /// Marks down the peers the detector convicted, unless this node was paused.
    fn convict(&mut self, now: Timestamp, convicted: Vec<NodeId>, events: &mut Vec<Event>) {
        let paused = now < self.pause_until;
        for id in convicted {
            if paused {
                self.metrics.convictions_paused += 1;
                continue;
            }
            self.metrics.convictions += 1;
            self.mark_down(&id, events);
        }
    }

    /// Forgets what has expired: peers to `evict`, quarantines, removals, stale
    /// exchanges, our own expired removal records.
    fn housekeeping(&mut self, now: Timestamp, evict: Vec<NodeId>, events: &mut Vec<Event>) {
        for id in evict {
            self.forget(now, &id);
            events.push(Event::Evicted { node: id });
        }
        self.quarantined.retain(|_, q| q.until > now);
        self.removed.retain(|_, r| r.expires > now);
        let timeout = self.config.exchange_timeout;
        self.inflight.retain(|_, i| {
            let fresh = |t: Option<Timestamp>| t.filter(|at| now.saturating_since(*at) < timeout);
            i.syn_sent = fresh(i.syn_sent);
            i.ack_sent = fresh(i.ack_sent);
            i.syn_sent.is_some() || i.ack_sent.is_some()
        });
        // our own expired removal records
        let current = self.view.local_state().live_value(&removal::removed_key()).cloned();
        if let Some(current) = current {
            let records = self.own_removals(now);
            if removal::encode(&records) != current {
                let _ = if records.is_empty() {
                    self.view.delete_local(&removal::removed_key(), now).map(|_| ())
                } else {
                    self.view.set_local(removal::removed_key(), removal::encode(&records)).map(|_| ())
                };
            }
        }
    }

    /// This node's removal records that have not expired.
    fn own_removals(&self, now: Timestamp) -> Vec<Removal> {
        let current = self.view.local_state().live_value(&removal::removed_key());
        let mut records = current.and_then(|v| removal::decode(v.as_bytes())).unwrap_or_default();
        records.retain(|r| r.expires > now);
        records
    }

    /// Forgets a node (its state and bookkeeping) and quarantines its last state.
    fn forget(&mut self, now: Timestamp, id: &NodeId) {
        if let Some(state) = self.view.remove(id) {
            let q = Quarantine {
                generation: state.generation(),
                version: state.max_version(),
                until: now + self.config.quarantine,
            };
            self.quarantined.insert(id.clone(), q);
        }
        self.peers_epoch += 1;
        if self.peers.remove(id).is_some_and(|p| p.up) {
            self.liveness_epoch += 1;
        }
        self.members_changed = now;
    }

    /// Whether state of `node` at this generation and version must be refused: it
    /// was removed, or forgotten and quarantined.
    fn blocked(&self, node: &NodeId, generation: Generation, version: Version) -> bool {
        self.removed.get(node).is_some_and(|r| generation <= r.generation)
            || self
                .quarantined
                .get(node)
                .is_some_and(|q| generation < q.generation || (generation == q.generation && version <= q.version))
    }

    fn mark_down(&mut self, id: &NodeId, events: &mut Vec<Event>) {
        if let Some(p) = self.peers.get_mut(id)
            && p.up
        {
            p.up = false;
            self.peers_epoch += 1;
            events.push(Event::Dead { node: id.clone() });
        }
    }

    /// The reference's markAlive: a node is declared up only when it answers an
    /// echo itself. Nodes in a dead state or shut down are not asked.
    fn mark_alive(&mut self, now: Timestamp, id: &NodeId, transmits: &mut Vec<Transmit>) {
        let Some(state) = self.view.get(id) else { return };
        let generation = state.generation();
        if Status::of(state).is_some_and(|s| s.is_dead_state() || s == Status::Shutdown) {
            return;
        }
        let interval = self.config.interval;
        let fresh = self.rng.next_u64();
        let Some(p) = self.peers.get_mut(id) else { return };
        if p.up || p.shutdown {
            return;
        }
        let nonce = p.update(|r| match &mut r.echo {
            // answered by a later generation's echo only if it is this one
            Some(e) if e.generation == generation => {
                if now.saturating_since(e.last) < interval {
                    return None;
                }
                e.last = now;
                Some(e.nonce)
            }
            slot => {
                *slot = Some(Echoing { nonce: fresh, since: now, last: now, generation });
                Some(fresh)
            }
        });
        let Some(nonce) = nonce else { return };
        self.metrics.echoes += 1;
        self.send(id, Message::Echo(crate::Echo { nonce }), transmits);
    }

    fn new_peer(&self, now: Timestamp) -> Peer {
        Peer {
            window: ArrivalWindow::new(&self.config.detector, now),
            up: false,
            heard: now,
            rare: None,
            shutdown: false,
        }
    }

    fn receive(&mut self, now: Timestamp, env: Envelope, transmits: &mut Vec<Transmit>, events: &mut Vec<Event>) {
        let from = env.header.sender.clone();
        if let Mode::Shadow { .. } = self.mode {
            return self.receive_shadow(now, env, transmits, events);
        }
        if !matches!(self.mode, Mode::Running) {
            self.metrics.ignored_not_gossiping += 1;
            return;
        }
        match env.message {
            Message::Syn(mut syn) => {
                self.filter_page(&mut syn);
                // heartbeats of quiet members we are just behind on come from the
                // page itself: no request, no ACK2 delta
                let mut beats = Beats::default();
                let built = answer_syn(&self.view, &syn, self.budget(), &mut self.rng, Some(&mut beats));
                self.note_built(built.left_out, built.context_error.is_some());
                self.metrics.heartbeats_taken += beats.list.len() as u64;
                let wake = self.apply_beats(now, &beats);
                // at most max_nodes exchanges tracked: a flood of sender ids cannot
                // grow memory; an untracked exchange's ACK2 is refused as unsolicited
                if self.inflight.len() < self.config.limits.max_nodes || self.inflight.contains_key(&from) {
                    let entry = self.inflight.entry(from.clone()).or_default();
                    entry.ack_sent = Some(now);
                    entry.ack_requested = !built.message.requests.is_empty()
                        || built.message.compact.as_ref().is_some_and(|c| c.request_count() > 0);
                } else {
                    self.metrics.inflight_full += 1;
                }
                self.send(&from, Message::Ack(built.message), transmits);
                for node in wake {
                    self.mark_alive(now, &node, transmits);
                }
            }
            Message::Ack(ack) => {
                // an ACK must answer a SYN of ours still in flight (the reference only
                // checks that some SYN was ever sent, CASSANDRA-12653)
                // (no entry is made for a stranger's ACK: memory is not its to grow)
                let answered = self
                    .inflight
                    .get_mut(&from)
                    .and_then(|entry| entry.syn_sent.take())
                    .is_some_and(|at| now.saturating_since(at) < self.config.exchange_timeout);
                if !answered {
                    self.metrics.unsolicited += 1;
                    return;
                }
                if self.primary.as_ref().is_some_and(|p| p.peer == from) {
                    self.primary = None;
                }
                let mut beats = Beats::default();
                let received = resolve_ack(&self.view, &ack, Some(&mut beats));
                if received.context_error.is_some() {
                    self.metrics.context_errors += 1;
                }
                self.apply_with_beats(now, &beats, received.deltas, transmits, events);
                if !matches!(self.mode, Mode::Running) {
                    return; // this node learned it was removed
                }
                let built = build_ack2(&self.view, &received.requests, self.budget(), &mut self.rng);
                self.note_built(built.left_out, false);
                self.send(&from, Message::Ack2(built.message), transmits);
                if received.resend.is_some() {
                    let until = now + self.config.interval * 5;
                    if let Some(p) = self.peers.get_mut(&from) {
                        p.update(|r| r.full_pages_until = Some(until));
                    }
                    // the next full page at once: repeated resends walk every node
                    let form = self.uncompact_form();
                    self.send_syn(now, &from, form, transmits);
                }
            }
            Message::Ack2(ack2) => {
                let answered = self
                    .inflight
                    .get_mut(&from)
                    .and_then(|entry| entry.ack_sent.take())
                    .is_some_and(|at| now.saturating_since(at) < self.config.exchange_timeout);
                if !answered {
                    self.metrics.unsolicited += 1;
                    return;
                }
                let mut beats = Beats::default();
                let received = resolve_ack2(&self.view, &ack2, Some(&mut beats));
                if received.context_error.is_some() {
                    self.metrics.context_errors += 1;
                }
                self.apply_with_beats(now, &beats, received.deltas, transmits, events);
            }
            Message::Echo(e) => self.send(&from, Message::EchoReply(e), transmits),
            Message::EchoReply(e) => {
                let known = self.view.get(&from).map(EndpointState::generation);
                if let Some(p) = self.peers.get_mut(&from)
                    && p.echo().is_some_and(|pending| {
                        pending.nonce == e.nonce
                            && pending.generation == env.header.generation
                            && known == Some(pending.generation)
                    })
                {
                    p.update(|r| r.echo = None);
                    p.up = true;
                    self.peers_epoch += 1;
                    p.window.heartbeat(&self.config.detector, now);
                    if let crate::Fanout::Chunked(_) = self.config.fanout {
                        self.walk.bring_forward(&from);
                    }
                    events.push(Event::Alive { node: from });
                } else {
                    // late duplicates (an echo is re-sent with its nonce) or forged
                    self.metrics.unsolicited += 1;
                }
            }
            Message::Shutdown => {
                let known = self.view.get(&from).map(EndpointState::generation);
                if known == Some(env.header.generation)
                    && let Some(p) = self.peers.get_mut(&from)
                {
                    p.shutdown = true;
                    p.update(|r| r.echo = None);
                    events.push(Event::ShutDown { node: from.clone() });
                    self.mark_down(&from, events);
                } else {
                    // from a node, or a generation of it, this node does not hold
                    self.metrics.unsolicited += 1;
                }
            }
        }
    }

    fn note_built(&mut self, left_out: usize, context_error: bool) {
        if left_out > 0 {
            self.metrics.budget_hits += 1;
        }
        if context_error {
            self.metrics.context_errors += 1;
        }
    }

    /// Drops digests of removed or quarantined nodes from a page, so they are not
    /// requested.
    fn filter_page(&mut self, syn: &mut Syn) {
        let keep = |d: &crate::Digest| !self.blocked(&d.node, d.generation, d.max_version);
        let digests = match &mut syn.page {
            DigestPage::Listed(ds) => ds,
            DigestPage::Range { digests, .. } => digests,
            // (by fingerprint, nothing to filter by: what a request for a removed
            // node brings back is refused when applied, and counted)
            DigestPage::Compact(_) | DigestPage::Hashed(_) => return,
        };
        let before = digests.len();
        digests.retain(keep);
        self.metrics.refused_removed += (before - digests.len()) as u64;
    }

    /// Applies deltas from a peer and turns what changed into events and echoes.
    fn apply(
        &mut self,
        now: Timestamp,
        mut deltas: Vec<Delta>,
        transmits: &mut Vec<Transmit>,
        events: &mut Vec<Event>,
    ) {
        let before = deltas.len();
        deltas.retain(|d| !self.blocked(&d.node, d.generation, d.highest_version().unwrap_or(d.from)));
        self.metrics.refused_removed += (before - deltas.len()) as u64;
        let applied = self.view.apply(&deltas, now);
        for ignored in &applied.ignored {
            self.metrics.ignored_deltas[ignored_index(ignored)] += 1;
            if let Ignored::OwnState { generation, version } = *ignored {
                self.own_state_claimed(now, generation, version, events);
            }
        }
        // new peers first, in one batch (a message may bring hundreds)
        let joined: Vec<(NodeId, Peer)> = applied
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::Joined { node, .. } => Some((node.clone(), self.new_peer(now))),
                _ => None,
            })
            .collect();
        if !joined.is_empty() {
            self.peers_epoch += 1;
            self.peers.merge(joined);
        }
        let mut removals = Vec::new();
        // changes come in the deltas' order, usually sorted by node: peer lookups
        // start where the last one ended
        let mut cursor = 0;
        // (walked in place: a change is large, and most are heartbeats that need
        // only their node)
        let mut changes = applied.changes;
        for change in &mut changes {
            match change {
                Change::Joined { node, generation } => {
                    self.members_changed = now;
                    events.push(Event::Joined { node: node.clone(), generation: *generation });
                    self.note_state(now, node, &mut removals, events);
                    self.mark_alive(now, node, transmits);
                }
                Change::Restarted { node, previous, generation } => {
                    let was_up = self.peers.get(node).is_some_and(|p| p.up);
                    let peer = self.new_peer(now);
                    self.peers_epoch += 1;
                    self.peers.insert(node.clone(), peer);
                    if was_up {
                        self.liveness_epoch += 1;
                    }
                    self.members_changed = now;
                    events.push(Event::Restarted { node: node.clone(), previous: *previous, generation: *generation });
                    self.note_state(now, node, &mut removals, events);
                    self.mark_alive(now, node, transmits);
                }
                Change::Heartbeat { node, .. } => {
                    let Some(p) = self.peers.get_mut_from(node, &mut cursor) else { continue };
                    if p.heard_heartbeat(&self.config, now) {
                        self.mark_alive(now, node, transmits);
                    }
                }
                Change::Value { node, key, old, new } => {
                    if *key == Key::STATUS || *key == removal::removed_key() {
                        self.note_state(now, node, &mut removals, events);
                    }
                    let old = old.take().and_then(|v| v.value);
                    let new = new.take().and_then(|v| v.value);
                    if old != new {
                        events.push(Event::Changed { node: node.clone(), key: key.clone(), old, new });
                    }
                }
                _ => {}
            }
        }
        self.absorb_removals(now, &removals, events);
    }

    /// Applies what an ACK or ACK2 brought: its beats first (their positions hold
    /// only for the view they were resolved against), then its other deltas, then
    /// echoes to the peers the beats found down.
    fn apply_with_beats(
        &mut self,
        now: Timestamp,
        beats: &Beats,
        deltas: Vec<Delta>,
        transmits: &mut Vec<Transmit>,
        events: &mut Vec<Event>,
    ) {
        let wake = self.apply_beats(now, beats);
        self.apply(now, deltas, transmits, events);
        for node in wake {
            self.mark_alive(now, &node, transmits);
        }
    }

    /// Applies beats (deltas that only raise a heartbeat, resolved against the
    /// current view) and feeds the detector, as [`Gossiper::apply`] does for
    /// heartbeat changes. Returns the peers that are down and due an echo: the
    /// caller wakes them after applying the message's other deltas, so echoes go
    /// out in the order the deltas came (full ones, then compact ones).
    #[must_use = "peers to wake"]
    fn apply_beats(&mut self, now: Timestamp, beats: &Beats) -> Vec<NodeId> {
        let mut wake = Vec::new();
        if beats.list.is_empty() {
            return wake;
        }
        // as for deltas, state of removed or quarantined nodes is refused
        let kept;
        let beats = if self.removed.is_empty() && self.quarantined.is_empty() {
            beats
        } else {
            let (ids, states) = (self.view.nodes().ids(), self.view.nodes().values());
            let list: Vec<Beat> = (beats.list.iter().copied())
                .filter(|b| !self.blocked(&ids[b.position], states[b.position].generation(), b.heartbeat))
                .collect();
            self.metrics.refused_removed += (beats.list.len() - list.len()) as u64;
            kept = Beats { revision: beats.revision, list };
            &kept
        };
        // peers are the view's nodes but the local one: a node's peer sits at its
        // position, or one before it past the local node
        let local = self.view.local_position();
        let lined_up = self.peers_line_up();
        let mut cursor = 0;
        let mut ignored = Vec::new();
        let (peers, config) = (&mut self.peers, &self.config);
        // each peer as its node's heartbeat advances, in the same walk
        self.view.apply_beats(beats, now, &mut ignored, |position, node| {
            let hint = position - usize::from(position > local);
            // (reading each peer's id only to compare it was a cold cache line per
            // beat)
            let peer = if lined_up {
                debug_assert!(peers.ids().get(hint) == Some(node));
                peers.at_mut(hint).map(|(_, p)| p)
            } else {
                peers.get_mut_hinted(node, hint, &mut cursor)
            };
            if peer.is_some_and(|p| p.heard_heartbeat(config, now)) {
                wake.push(node.clone());
            }
        });
        for i in &ignored {
            self.metrics.ignored_deltas[ignored_index(i)] += 1;
        }
        wake
    }

    /// Whether the peers are exactly the view's nodes but the local one, in the
    /// same order; checked again only after the members or the peers changed.
    fn peers_line_up(&mut self) -> bool {
        let epochs = (self.view.members_epoch(), self.peers_epoch);
        if let Some((view, peers, lined_up)) = self.lined_up
            && (view, peers) == epochs
        {
            return lined_up;
        }
        let local = self.view.local_id();
        let nodes = self.view.nodes();
        let lined_up = self.peers.len() + 1 == nodes.len()
            && nodes.iter().map(|(id, _)| id).filter(|id| *id != local).eq(self.peers.iter().map(|(id, _)| id));
        self.lined_up = Some((epochs.0, epochs.1, lined_up));
        lined_up
    }

    /// Reacts to a node's status and removal records after its state changed: a
    /// node that enters a dead state or shuts down is marked down.
    fn note_state(&mut self, now: Timestamp, node: &NodeId, removals: &mut Vec<Removal>, events: &mut Vec<Event>) {
        let Some(state) = self.view.get(node) else { return };
        if let Some(value) = state.live_value(&removal::removed_key()) {
            match removal::decode(value.as_bytes()) {
                Some(records) => removals.extend(records.into_iter().filter(|r| r.expires > now)),
                // ignored whole
                None => self.metrics.removals_ignored += 1,
            }
        }
        let status = Status::of(state);
        let dead_state = status.as_ref().is_some_and(Status::is_dead_state);
        let shutdown = status == Some(Status::Shutdown);
        let mut down = false;
        if let Some(p) = self.peers.get_mut(node) {
            if dead_state != p.dead_state_since().is_some() {
                self.peers_epoch += 1;
            }
            if dead_state {
                p.update(|r| {
                    r.dead_state_since.get_or_insert(now);
                });
            } else if p.rare.is_some() {
                p.update(|r| r.dead_state_since = None);
            }
            if shutdown {
                p.shutdown = true;
            }
            down = dead_state || shutdown;
        }
        if down {
            self.mark_down(node, events);
        }
    }

    /// Applies removal records: forgets removed nodes, or goes silent if this node
    /// is the one removed.
    fn absorb_removals(&mut self, now: Timestamp, records: &[Removal], events: &mut Vec<Event>) {
        let longest = now + self.config.removal_expiry;
        for r in records {
            // a record lasts at most removal_expiry here, whatever its sender says,
            // and names a generation that can exist (u64::MAX would ban every one)
            let r = &Removal { expires: r.expires.min(longest), ..r.clone() };
            if r.expires <= now || !r.generation.is_believable(now) {
                self.metrics.removals_ignored += u64::from(r.expires > now);
                continue;
            }
            if r.node == *self.local_id() {
                if self.view.local_generation() <= r.generation && matches!(self.mode, Mode::Running) {
                    self.mode = Mode::Removed;
                    events.push(Event::SelfRemoved { removal: r.clone() });
                }
                continue;
            }
            let known = self.removed.get(&r.node);
            if known.is_some_and(|k| k.generation >= r.generation && k.expires >= r.expires) {
                continue;
            }
            if known.is_none() && self.removed.len() >= self.config.limits.max_nodes {
                self.metrics.removals_ignored += 1;
                continue;
            }
            self.removed.insert(r.node.clone(), r.clone());
            if self.view.get(&r.node).is_some_and(|s| s.generation() <= r.generation) {
                self.forget(now, &r.node);
                events.push(Event::Removed { removal: r.clone() });
            }
        }
    }

    /// A peer holds state of this very node that this node never wrote: a newer
    /// version of its current generation, or a newer generation. Either way an
    /// earlier incarnation used them and this process has lost that state, so it
    /// moves past them to a newer generation, keeping its current values: peers then
    /// replace the old incarnation's state whole, keys it had included, rather than
    /// keep old keys this process no longer knows of. (Only advancing the version
    /// would leave values written before the advance below what peers hold, and the
    /// old incarnation's other keys in their views.)
    fn own_state_claimed(&mut self, now: Timestamp, generation: Generation, version: Version, events: &mut Vec<Event>) {
        let mine = self.view.local_generation();
        let newer_version = generation == mine && version > self.view.local_state().max_version();
        let newer_generation = generation > mine && generation.is_believable(now);
        if !(newer_version || newer_generation) || generation.0 == u64::MAX {
            return;
        }
        let renewed = Generation(generation.0.max(mine.0) + 1);
        if self.view.renew_local_generation(renewed).is_ok() {
            events.push(Event::GenerationRenewed { previous: mine, generation: renewed });
        }
    }

    // ----- shadow round -----

    fn shadow_tick(&mut self, now: Timestamp, transmits: &mut Vec<Transmit>, events: &mut Vec<Event>) {
        let Mode::Shadow { started, next_try, attempts, states, .. } = &mut self.mode else { return };
        if now.saturating_since(*started) >= self.config.shadow_timeout {
            // Cassandra: a non-seed gives up (its caller decides), a seed carries on
            events.push(Event::ShadowRound { states: Vec::new(), timed_out: true });
            self.mode = Mode::AwaitingJoin;
            return;
        }
        if now < *next_try {
            return;
        }
        *next_try = now + self.config.shadow_retry;
        *attempts += 1;
        let mut targets: Vec<NodeId> =
            self.config.seeds.iter().filter(|s| *s != self.view.local_id()).cloned().collect();
        if *attempts > 1 {
            // from the second attempt on, every node heard of so far too
            targets.extend(states.keys().filter(|id| *id != self.view.local_id()).cloned());
            targets.sort();
            targets.dedup();
        }
        for to in targets {
            self.inflight.entry(to.clone()).or_default().syn_sent = Some(now);
            self.send(&to, Message::Syn(Syn { page: DigestPage::Listed(Vec::new()) }), transmits);
        }
    }

    fn receive_shadow(
        &mut self,
        now: Timestamp,
        env: Envelope,
        transmits: &mut Vec<Transmit>,
        events: &mut Vec<Event>,
    ) {
        let from = env.header.sender;
        match env.message {
            // another shadow round: an empty answer; anything else is not answered
            Message::Syn(Syn { page: DigestPage::Listed(ds) }) if ds.is_empty() => {
                self.send(&from, Message::Ack(crate::Ack::default()), transmits);
            }
            Message::Ack(ack) => {
                // only from a node this round asked: a stranger cannot end the round
                // with states of its choosing
                if self.inflight.get(&from).and_then(|i| i.syn_sent).is_none() {
                    self.metrics.unsolicited += 1;
                    return;
                }
                let received = handle_ack(&self.view, &ack);
                if received.context_error.is_some() {
                    self.metrics.context_errors += 1;
                }
                let local = self.view.local_id().clone();
                let limits = self.config.limits.clone();
                let seeds: BTreeSet<NodeId> = self.config.seeds.iter().filter(|s| **s != local).cloned().collect();
                let Mode::Shadow { states, quiet_seeds, .. } = &mut self.mode else { return };
                if received.deltas.is_empty() {
                    // the responder is in its own shadow round
                    quiet_seeds.insert(from);
                    if !seeds.is_empty() && seeds.is_subset(quiet_seeds) {
                        // every seed is starting too: nothing to learn
                        events.push(Event::ShadowRound { states: Vec::new(), timed_out: false });
                        self.mode = Mode::AwaitingJoin;
                    }
                    return;
                }
                for d in &received.deltas {
                    // whole states only, within the limits a view keeps, each refusal
                    // counted as `View::apply` counts it
                    let incoming = match crate::merge::whole_state(d, &limits, now) {
                        Ok(state) => state,
                        Err(why) => {
                            self.metrics.ignored_deltas[ignored_index(&why)] += 1;
                            continue;
                        }
                    };
                    let merged = match states.get(&d.node) {
                        Some(s) => s.join(&incoming),
                        // max_nodes in all, this node's own entry always among them
                        None if d.node != local && states.len() + 1 >= limits.max_nodes => {
                            self.metrics.ignored_deltas[LIMITS] += 1;
                            continue;
                        }
                        None => incoming,
                    };
                    // two answers, each within the key limit, may join beyond it
                    if merged.values().len() > limits.max_keys_per_node {
                        self.metrics.ignored_deltas[LIMITS] += 1;
                        continue;
                    }
                    states.insert(d.node.clone(), merged);
                }
                // the reference's exit: unless the answer shows this node's own entry
                // alive and still without a HOST_ID (another answer may have more)
                let own = states.get(&local);
                let undecided = own.is_some_and(|s| {
                    s.live_value(&Key::HOST_ID).is_none() && !Status::of(s).is_some_and(|st| st.is_dead_state())
                });
                if undecided {
                    return;
                }
                let learned: Vec<(NodeId, EndpointState)> = core::mem::take(states).into_iter().collect();
                events.push(Event::ShadowRound { states: learned, timed_out: false });
                self.mode = Mode::AwaitingJoin;
            }
            _ => self.metrics.ignored_not_gossiping += 1,
        }
    }
}

/// A removal was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// A node cannot remove itself (use [`Gossiper::shutdown`]).
    #[error("a node cannot remove itself")]
    Local,
    /// The node is not known here, so its generation is not either.
    #[error("unknown node")]
    Unknown,
    /// Writing the removal record failed.
    #[error("writing the removal record: {0}")]
    Write(WriteError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per monitored peer with default settings: the bookkeeping, its
    /// arrival window and its in-flight record (its gossiped state is the view's).
    #[test]
    fn a_monitored_peer_costs_under_1_kib() {
        let config = Config::new(crate::ClusterName::new("c").unwrap());
        let window = ArrivalWindow::new(&config.detector, Timestamp::from_secs(0));
        // the map node (key + value) is the peer's share of the BTreeMap
        assert_eq!(window.memory(), core::mem::size_of::<ArrivalWindow>(), "nothing on the heap");
        let per_peer = core::mem::size_of::<(NodeId, Peer)>() + core::mem::size_of::<(NodeId, Inflight)>();
        println!("detector and bookkeeping per peer: {per_peer} bytes");
        assert!(per_peer <= 1024, "{per_peer} bytes per peer");
        // a 4,096-node cluster holds 16 million peers: 8 more bytes each is 128
        // MiB more (its simulation must stay within 16 GiB)
        assert_eq!(core::mem::size_of::<(NodeId, Peer)>(), 144);
    }
}
