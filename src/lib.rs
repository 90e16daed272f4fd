//! # rumormill
//!
//! Gossip for cluster membership, liveness and small per-node state, as
//! Cassandra, ScyllaDB and Akka use it, built as a **sans-IO state machine**.
//!
//! rumormill has no sockets, timers, threads, clock reads or OS randomness. You
//! hand it the time, a random number generator and the bytes you received; it
//! hands back the bytes to send and what changed. So it runs in any runtime,
//! simulates deterministically (same inputs and seed, same bytes out), fuzzes and
//! model-checks.
//!
//! Most users drive a [`Gossiper`]: one node, with rounds, peer choice, failure
//! detection and the node lifecycle; its docs show the driving loop. Underneath
//! are the replicated state ([`View`], [`EndpointState`]), the three-message
//! reconciliation round as pure functions ([`build_syn`], [`handle_syn`],
//! [`handle_ack`], [`build_ack2`], [`handle_ack2`]), merging ([`View::apply`],
//! [`EndpointState::join`]) and the wire format ([`Envelope`], [`Codec`]). The
//! protocol is described on the [`message`](Message) types.
//!
//! # A round by hand
//!
//! ```
//! use rand_chacha::{ChaCha8Rng, rand_core::SeedableRng};
//! use rumormill::*;
//!
//! let now = Timestamp::from_secs(1_700_000_000);
//! let mut a = View::new(NodeId::new("a")?, Generation(1_700_000_000));
//! let mut b = View::new(NodeId::new("b")?, Generation(1_700_000_000));
//! a.set_local(Key::STATUS, "NORMAL")?;
//! let mut rng = ChaCha8Rng::seed_from_u64(7);
//! let budget = Budget::unlimited();
//!
//! // A starts a round with B.
//! let syn = build_syn(&a, budget, None, PageForm::Full)?.syn;
//! // B answers (handling a SYN changes nothing).
//! let ack = handle_syn(&b, &syn, budget, &mut rng).message;
//! // A applies the ACK's deltas, then answers B's requests.
//! let received = handle_ack(&a, &ack);
//! a.apply(&received.deltas, now);
//! let ack2 = build_ack2(&a, &received.requests, budget, &mut rng).message;
//! // B applies the ACK2.
//! b.apply(&handle_ack2(&b, &ack2).deltas, now);
//!
//! let a_id = NodeId::new("a")?;
//! assert_eq!(b.get(&a_id), a.get(&a_id));
//! assert_eq!(a.get(&NodeId::new("b")?), b.get(&NodeId::new("b")?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - Every builder takes a [`Budget`] and never produces an encoded message
//!   larger than it, whatever the cluster size; what did not fit is counted.
//! - Deltas follow the scuttlebutt prefix rule, so truncation never loses data.
//! - Decoding never panics on any input, allocates at most a small constant times
//!   the input's length, and rejects anything non-canonical with a typed error.
//! - Merging is a join (commutative, associative, idempotent), the local node's
//!   state is never taken from a peer, and generations more than a year ahead of
//!   the clock are ignored for every node.
//!
//! # Features
//!
//! - `encryption`: seal every message with XChaCha20-Poly1305 and a `Keyring`
//!   that rotates in a live cluster (see `Config::keyring` and docs/security.md).
//! - `serde`: serde derives on public data types.
//! - `arbitrary`: `arbitrary::Arbitrary` on public data types.
//! - `fuzzing`: the fuzz harnesses in `rumormill::fuzzing` (docs/fuzzing.md).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

extern crate alloc;

mod config;
mod delta;
mod detector;
mod digest;
mod endpoint;
mod entries;
mod error;
mod event;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gossiper;
mod hash;
mod id;
mod key;
mod merge;
mod message;
mod metrics;
mod range;
mod reconcile;
mod removal;
#[cfg(feature = "encryption")]
mod seal;
mod selection;
mod small;
mod snapshot;
mod status;
mod time;
mod value;
mod values;
mod version;
mod view;
mod wire;

pub use config::{Config, ConfigError};
pub use detector::{ArrivalWindow, DetectorConfig, PhiModel};
pub use digest::{Budget, BuiltSyn, ContextError, PageForm, build_syn, shadow_syn};
pub use endpoint::EndpointState;
pub use error::{BudgetError, DecodeError, InvalidInput, WriteError};
pub use event::{Event, Output, Transmit};
pub use gossiper::{Gossiper, RemoveError};
pub use id::{MAX_NODE_ID_LEN, NodeId};
pub use key::{Key, MAX_KEY_LEN};
pub use merge::{Applied, Change, Ignored, Merge};
pub use message::{
    Ack, Ack2, ClusterName, CompactAck, CompactDeltas, CompactDigest, Context, Delta, Digest, DigestPage, Echo,
    Envelope, HashedDigest, Header, Message, QUIET_RUN, Syn,
};
pub use metrics::Metrics;
pub use range::NodeRange;
pub use reconcile::{Built, ReceivedAck, ReceivedAck2, Requests, build_ack2, handle_ack, handle_ack2, handle_syn};
pub use removal::{REMOVED_KEY, Removal};
#[cfg(feature = "encryption")]
pub use seal::{
    KeyId, Keyring, KeyringError, NonceSequence, OpenError, SEAL_MAGIC, SEAL_OVERHEAD, SEAL_VERSION, SealError,
    SecretKey,
};
pub use selection::Fanout;
pub use snapshot::{Liveness, Member, Snapshot};
pub use status::Status;
pub use time::Timestamp;
pub use value::{DEFAULT_MAX_VALUE_LEN, Value, VersionedValue};
pub use values::Values;
pub use version::{Generation, MAX_GENERATION_AHEAD_SECS, Version};
pub use view::{Limits, View};
pub use wire::{Codec, MAGIC, WIRE_VERSION, header_len};

pub(crate) use message::CompactDelta;

/// The README's examples run as doctests, so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
