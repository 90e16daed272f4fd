//! What a node keeps about each peer besides its state: the detector's window,
//! liveness, pending echoes, and the round's walk over them.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::{ArrivalWindow, Config, Generation, NodeId, Timestamp, View};

/// What the node knows of one peer besides its state (144 bytes with its id, the
/// detector's window included: a 4,096-node cluster holds 16 million).
#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub(super) window: ArrivalWindow,
    /// When its state last advanced (the reference's update timestamp).
    pub(super) heard: Timestamp,
    /// What most peers do not have, boxed (`None` when all is at its default).
    pub(super) rare: Option<Box<Rare>>,
    pub(super) up: bool,
    /// It announced a shutdown of its current generation.
    pub(super) shutdown: bool,
}

/// A peer's state that is usually absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Rare {
    /// An echo awaiting its reply.
    pub(super) echo: Option<Echoing>,
    /// Since when its status has been a dead state.
    pub(super) dead_state_since: Option<Timestamp>,
    /// Until then, SYNs to it carry full pages (it could not use a compact one).
    pub(super) full_pages_until: Option<Timestamp>,
}

impl Peer {
    /// A newer heartbeat of its generation arrived: the detector counts it, and
    /// the peer is running (not shut down). Whether it is down and due an echo to
    /// be marked alive again.
    pub(super) fn heard_heartbeat(&mut self, config: &Config, now: Timestamp) -> bool {
        self.window.heartbeat(&config.detector, now);
        self.heard = now;
        self.shutdown = false;
        let due = self.echo().is_none_or(|e| now.saturating_since(e.last) >= config.interval);
        !self.up && due
    }

    pub(super) fn echo(&self) -> Option<&Echoing> {
        self.rare.as_ref()?.echo.as_ref()
    }

    pub(super) fn dead_state_since(&self) -> Option<Timestamp> {
        self.rare.as_ref()?.dead_state_since
    }

    pub(super) fn full_pages_until(&self) -> Option<Timestamp> {
        self.rare.as_ref()?.full_pages_until
    }

    /// Changes the rare state, dropping the box when all is back at its default.
    pub(super) fn update<T>(&mut self, f: impl FnOnce(&mut Rare) -> T) -> T {
        let rare = self.rare.get_or_insert_with(Box::default);
        let out = f(rare);
        if **rare == Rare::default() {
            self.rare = None;
        }
        out
    }
}

/// What the round's walk over the peers found (see `Gossiper::survey`).
#[derive(Default)]
pub(super) struct Survey {
    pub(super) convicted: Vec<NodeId>,
    pub(super) evict: Vec<NodeId>,
    /// Positions among the peers.
    pub(super) live: Vec<usize>,
    pub(super) unreachable: Vec<usize>,
}

/// A walk that found nothing to do, and until when the next would find the same:
/// its lists stand while the peers keep their epoch (no peer added, removed, gone
/// up or down, or into or out of a dead state) and the time is before `until`.
#[derive(Debug)]
pub(super) struct Quiet {
    /// The live and unreachable positions; `None` when every peer is live (the
    /// usual case, kept without a list: 4,096 nodes would hold 64 MiB of them).
    pub(super) lists: Option<(Vec<u32>, Vec<u32>)>,
    pub(super) until: Timestamp,
    pub(super) peers_epoch: u64,
}

impl Quiet {
    pub(super) fn lists(&self, peers: usize) -> (Vec<usize>, Vec<usize>) {
        let wide = |l: &Vec<u32>| l.iter().map(|&i| i as usize).collect();
        match &self.lists {
            None => ((0..peers).collect(), Vec::new()),
            Some((live, unreachable)) => (wide(live), wide(unreachable)),
        }
    }
}

/// What the round's walk does about one peer: whether its echo is given up,
/// whether the detector convicts it, and whether it is to be forgotten.
pub(super) fn verdict(
    config: &Config,
    view: &View,
    id: &NodeId,
    p: &Peer,
    now: Timestamp,
    paused: bool,
) -> (bool, bool, bool) {
    let echo_expired = p.echo().is_some_and(|e| now.saturating_since(e.since) >= config.echo_timeout);
    let convicts = p.up && p.window.phi(&config.detector, now) > config.detector.threshold;
    // up once the convictions take effect (a paused node convicts nobody)
    let up = p.up && (paused || !convicts);
    let expired = p.dead_state_since().is_some_and(|t| now.saturating_since(t) >= config.dead_state_expiry);
    let fat = config.fat_client.as_ref().is_some_and(|(key, timeout)| {
        !up && p.dead_state_since().is_none()
            && now.saturating_since(p.heard) >= *timeout
            && view.get(id).is_some_and(|s| s.live_value(key).is_none())
    });
    (echo_expired, convicts, expired || fat)
}

impl Survey {
    /// Lists the peer at position `i` among the round's targets: live if up,
    /// unreachable if down but not in a dead state.
    pub(super) fn list(&mut self, i: usize, p: &Peer) {
        if p.up {
            self.live.push(i);
        } else if p.dead_state_since().is_none() {
            self.unreachable.push(i);
        }
    }
}

/// An echo awaiting its reply. It is sent again (same nonce) at most once per
/// interval while the peer's state keeps advancing, so one lost datagram delays
/// marking a node up by a round rather than by the whole echo timeout.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Echoing {
    pub(super) nonce: u64,
    /// When the first was sent (the echo timeout runs from here).
    pub(super) since: Timestamp,
    /// When the last was sent.
    pub(super) last: Timestamp,
    /// The generation of the node it was sent to.
    pub(super) generation: Generation,
}
