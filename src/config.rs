//! Gossiper settings, with the reference Gossiper's values as defaults.

use alloc::vec::Vec;
use core::time::Duration;

use crate::{ClusterName, DetectorConfig, Fanout, Key, Limits, NodeId, PhiModel};

/// Everything a [`Gossiper`](crate::Gossiper) can be told. Defaults follow the
/// reference Gossiper (Cassandra 5.0) unless noted.
///
/// ```
/// use rumormill::{ClusterName, Config, NodeId};
/// let mut config = Config::new(ClusterName::new("prod")?);
/// config.seeds = vec![NodeId::new("10.0.0.1:7000")?];
/// config.validate()?;
/// let lan = Config::lan(ClusterName::new("prod")?);
/// assert!(lan.detector.threshold > 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Config {
    /// The cluster; messages for any other are rejected.
    pub cluster: ClusterName,
    /// Seed nodes: contacted when nothing else is live, and by the seed-island
    /// rule. The local node is ignored if listed.
    pub seeds: Vec<NodeId>,
    /// Time between rounds (1 s).
    pub interval: Duration,
    /// Largest message, in bytes, header included (65,000: one UDP datagram). Every
    /// message the node sends fits; lower it below the path MTU (about 1,400) to
    /// avoid IP fragmentation, at the cost of more rounds for large changes.
    pub max_message_bytes: usize,
    /// Longest frame accepted, in bytes (65,535, above any UDP datagram): longer
    /// ones, which only a stream transport could deliver, are dropped undecoded
    /// and counted in [`Metrics::too_large`](crate::Metrics::too_large). At least
    /// `max_message_bytes`.
    pub max_receive_bytes: usize,
    /// Peers contacted per round.
    pub fanout: Fanout,
    /// Failure detector.
    pub detector: DetectorConfig,
    /// Bounds on what the view holds.
    pub limits: Limits,
    /// Use compact digests (member hash and 16-bit versions) when peers agree on
    /// the members (true). Off, every SYN lists ids in full or by fingerprint.
    pub compact_digests: bool,
    /// Name nodes by 32-bit fingerprint in SYNs to peers that may know other
    /// members (true): about 7 bytes per node where ids take tens, so a page
    /// covers five times as many nodes. Off, such SYNs list full ids, which
    /// survive the sender's members changing before the answer arrives.
    pub hashed_digests: bool,
    /// How long a deleted key's tombstone is kept before being purged (1 hour). A
    /// node away longer than this is rebuilt from a peer's whole state.
    pub tombstone_grace: Duration,
    /// If the node itself was not called for longer than this (a GC pause, a
    /// suspended VM), nobody is convicted for this long afterwards (5 s).
    pub pause_threshold: Duration,
    /// An echo not answered within this is given up (15 s, Scylla's).
    pub echo_timeout: Duration,
    /// A SYN not answered within this is taken as lost: its peer's ACK is no
    /// longer welcome, and a new SYN may go to that peer (200 ms; round trips on a
    /// LAN take about 1 ms).
    pub exchange_timeout: Duration,
    /// When a round's first exchange is lost (no ACK within `exchange_timeout`), it
    /// is tried again with another peer, at most this many times per round (2).
    /// Under 20 % message loss a round's exchange then fails about 5 % of the time
    /// instead of 36 %.
    pub round_retries: u32,
    /// Nodes whose status is LEFT or removed are forgotten after this (3 days).
    pub dead_state_expiry: Duration,
    /// How long a removal stays final ([`Gossiper::remove`](crate::Gossiper::remove)) (3 days).
    pub removal_expiry: Duration,
    /// Dead nodes without this key (a "fat client": no tokens) are forgotten after
    /// being silent this long. `None` keeps them (the default, since most users
    /// have no tokens); Cassandra's setting is `Some((Key::TOKENS, 30 s))`.
    pub fat_client: Option<(Key, Duration)>,
    /// After forgetting a node, refuse its state at the same generation and version
    /// for this long, so stale peers cannot bring it straight back (60 s).
    pub quarantine: Duration,
    /// Shadow round: how often the empty SYN is resent (5 s) and when to give up
    /// (30 s, RING_DELAY).
    pub shadow_retry: Duration,
    /// See `shadow_retry`.
    pub shadow_timeout: Duration,
    /// Settling: the view is settled once the node has run this long (5 s) ...
    pub settle_min: Duration,
    /// ... and nothing but heartbeats and chatter keys changed for this long (3 s).
    pub settle_quiet: Duration,
    /// Keys whose changes do not keep the view from settling (Scylla's: LOAD,
    /// VIEW_BACKLOG, CACHE_HITRATES, GROUP0_STATE_ID).
    pub chatter_keys: Vec<Key>,
    /// Seal every message with the keyring's primary key and open only messages
    /// sealed with one of its keys (feature `encryption`; `None`: plain messages).
    /// Sealing adds [`SEAL_OVERHEAD`](crate::SEAL_OVERHEAD) bytes, which budgets
    /// leave room for. Change it at run time with
    /// [`Gossiper::keyring_mut`](crate::Gossiper::keyring_mut). Never serialized.
    #[cfg(feature = "encryption")]
    #[cfg_attr(feature = "serde", serde(skip))]
    pub keyring: Option<crate::Keyring>,
}

impl Config {
    /// The reference Gossiper's settings, for `cluster`.
    pub fn new(cluster: ClusterName) -> Self {
        Config {
            cluster,
            seeds: Vec::new(),
            interval: Duration::from_secs(1),
            max_message_bytes: 65_000,
            max_receive_bytes: 65_535,
            fanout: Fanout::Reference,
            detector: DetectorConfig::default(),
            limits: Limits { max_value_len: 60 * 1024, ..Limits::default() },
            compact_digests: true,
            hashed_digests: true,
            tombstone_grace: Duration::from_secs(3600),
            pause_threshold: Duration::from_secs(5),
            echo_timeout: Duration::from_secs(15),
            exchange_timeout: Duration::from_millis(200),
            round_retries: 2,
            dead_state_expiry: Duration::from_secs(3 * 24 * 3600),
            removal_expiry: Duration::from_secs(3 * 24 * 3600),
            fat_client: None,
            quarantine: Duration::from_secs(60),
            shadow_retry: Duration::from_secs(5),
            shadow_timeout: Duration::from_secs(30),
            settle_min: Duration::from_secs(5),
            settle_quiet: Duration::from_secs(3),
            chatter_keys: alloc::vec![Key::LOAD, Key::VIEW_BACKLOG, Key::CACHE_HITRATES, Key::GROUP0_STATE_ID],
            #[cfg(feature = "encryption")]
            keyring: None,
        }
    }

    /// For a LAN: the normal-model detector (convicts a silent peer in about 5 s
    /// rather than 18 s) and Scylla's chunked fanout.
    pub fn lan(cluster: ClusterName) -> Self {
        Config {
            detector: DetectorConfig { model: PhiModel::AKKA, ..DetectorConfig::default() },
            fanout: Fanout::Chunked(10),
            ..Config::new(cluster)
        }
    }

    /// For a WAN: datagrams under the usual path MTU, a slower round, and a more
    /// patient detector.
    pub fn wan(cluster: ClusterName) -> Self {
        Config {
            interval: Duration::from_secs(2),
            max_message_bytes: 1_400,
            // what fits beside the worst case of 255-byte ids and keys, sealed
            limits: Limits { max_value_len: 448, ..Limits::default() },
            detector: DetectorConfig {
                threshold: 12.0,
                max_interval: Duration::from_secs(4),
                ..DetectorConfig::default()
            },
            exchange_timeout: Duration::from_millis(800),
            ..Config::new(cluster)
        }
    }

    /// Bytes sealing adds to every message: 0 without a keyring.
    pub fn seal_overhead(&self) -> usize {
        #[cfg(feature = "encryption")]
        if self.keyring.is_some() {
            return crate::SEAL_OVERHEAD;
        }
        0
    }

    /// Checks the settings fit together. The one that matters most: the largest
    /// value, with its key and a delta's overhead, must fit a message, or a node
    /// holding it could never send it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::ZeroInterval);
        }
        if self.exchange_timeout.is_zero() || self.exchange_timeout > self.interval {
            return Err(ConfigError::ExchangeTimeout);
        }
        // header with the longest id, an empty ACK, one delta of one value
        let worst = 2 + 2 + 1 + self.cluster.as_bytes().len() + 256 + 10 // header
            + 4 + 1 + 256 + 10 + 1 + 10 + 10 + 10 + 1 // ACK with one delta head
            + 256 + 10 + 10 // key, gap, value length
            + self.seal_overhead();
        if self.limits.max_value_len + worst > self.max_message_bytes {
            return Err(ConfigError::ValueDoesNotFit {
                max_value_len: self.limits.max_value_len,
                max_message_bytes: self.max_message_bytes,
                overhead: worst,
            });
        }
        if self.max_receive_bytes < self.max_message_bytes {
            return Err(ConfigError::ReceiveLimit);
        }
        if let Fanout::Chunked(0) | Fanout::Random(0) = self.fanout {
            return Err(ConfigError::ZeroFanout);
        }
        if !(2..=DetectorConfig::MAX_WINDOW).contains(&self.detector.window)
            || self.detector.threshold.is_nan()
            || self.detector.threshold <= 0.0
        {
            return Err(ConfigError::Detector);
        }
        Ok(())
    }
}

/// Settings that do not fit together. Nothing was built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The largest value cannot fit a message.
    #[error(
        "values of {max_value_len} bytes cannot fit messages of {max_message_bytes} bytes \
         (a delta needs up to {overhead} bytes besides the value)"
    )]
    ValueDoesNotFit {
        /// The value limit.
        max_value_len: usize,
        /// The message limit.
        max_message_bytes: usize,
        /// What a message holding one value needs besides it, at most.
        overhead: usize,
    },
    /// The round interval is zero.
    #[error("the gossip interval is zero")]
    ZeroInterval,
    /// A fanout of zero peers.
    #[error("a fanout of zero peers")]
    ZeroFanout,
    /// `max_receive_bytes` is below `max_message_bytes`: nodes with this
    /// configuration would drop each other's messages.
    #[error("max_receive_bytes must be at least max_message_bytes")]
    ReceiveLimit,
    /// The exchange timeout must be positive and at most one interval.
    #[error("the exchange timeout must be positive and at most one interval")]
    ExchangeTimeout,
    /// A detector window outside 2 to [`DetectorConfig::MAX_WINDOW`](DetectorConfig::MAX_WINDOW)
    /// samples, or a threshold that is not positive.
    #[error("detector window must hold 2 to 65536 samples and its threshold be positive")]
    Detector,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid() {
        let cluster = ClusterName::new("a-cluster-name").unwrap();
        for config in [Config::new(cluster.clone()), Config::lan(cluster.clone()), Config::wan(cluster)] {
            assert_eq!(config.validate(), Ok(()), "{config:?}");
        }
    }

    #[test]
    fn a_value_that_cannot_fit_a_message_is_refused() {
        let mut config = Config::new(ClusterName::new("c").unwrap());
        config.max_message_bytes = 1_400;
        assert!(matches!(config.validate(), Err(ConfigError::ValueDoesNotFit { .. })));
        config.limits.max_value_len = 512;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn a_receive_limit_below_the_message_budget_is_refused() {
        let mut config = Config::new(ClusterName::new("c").unwrap());
        config.max_receive_bytes = config.max_message_bytes - 1;
        assert_eq!(config.validate(), Err(ConfigError::ReceiveLimit));
        config.max_receive_bytes += 1;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn a_detector_window_out_of_range_is_refused() {
        let mut config = Config::new(ClusterName::new("c").unwrap());
        for (window, ok) in
            [(1, false), (2, true), (DetectorConfig::MAX_WINDOW, true), (DetectorConfig::MAX_WINDOW + 1, false)]
        {
            config.detector.window = window;
            assert_eq!(config.validate().is_ok(), ok, "window {window}");
        }
        config.detector.window = 100;
        config.detector.threshold = f64::NAN;
        assert_eq!(config.validate(), Err(ConfigError::Detector));
    }
}
