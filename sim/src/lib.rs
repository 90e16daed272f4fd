//! # rumormill-sim
//!
//! A deterministic cluster simulator for [rumormill]: N real
//! `Gossiper`s on a virtual clock over a simulated network (latency, loss,
//! duplication, reordering, partitions, crashes, restarts, shutdowns, removals).
//! The same settings and seed give the same run. It measures convergence, bytes,
//! CPU and memory, and holds the model check of the reconciliation functions.

#![warn(missing_docs)]

pub mod engine;
pub mod memory;
pub mod model;
pub mod plot;
pub mod report;
pub mod scenario;

pub use engine::{Cpu, Network, Sim, Tracker, Traffic};
pub use report::{CpuByCall, Report, RoundStats};
pub use scenario::{Params, Scenario, push_pull_curve, push_pull_rounds, run};
