//! The cluster: nodes that meet over a NATS server with JetStream (Erlang's distribution, on
//! an engine that exists). The only code that speaks NATS. A node joins before it is built,
//! so its pids carry its name and incarnation; once built, the node is attached and messages
//! to pids of other nodes go out through here, and theirs come in.
//!
//! - `config.rs`: what a node needs to join, and why it could not.
//! - `join.rs`: the checks of a join and the claim of the node's name.
//! - `members.rs`: who is up — the members bucket watched, heartbeats, a node taken for down.
//! - `names.rs`: registered names cluster-wide — a compare-and-set in the names bucket, and a
//!   watched copy for lookups.
//! - `placements.rs`: which node runs a service or supervisor placed on a list of nodes, and
//!   its takeover by the next one up when that node is down.
//! - `wire.rs`: the frames nodes send each other, bounded and checked.
//! - `links.rs`: links across nodes, on both sides; broken by `no-connection` for a node lost.
//! - `monitors.rs`: monitors across nodes, on both sides; `no-connection` for a node lost.
//! - `spawn.rs`: a spawn onto another node (`c@app:processes`), asked and answered.
//! - `transport.rs`: a node's outboxes to its peers, and its inbox.

mod config;
mod join;
mod links;
mod members;
mod monitors;
mod names;
mod placements;
mod spawn;
mod transport;
mod wire;

pub use config::{ClusterConfig, JoinError};
pub use join::Cluster;
pub(in crate::runtime) use links::Linked;
pub use members::PeerView;
pub(in crate::runtime) use monitors::Monitored;
pub use placements::Placement;
