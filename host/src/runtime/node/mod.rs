//! The node: `Node` and its builder, its hosts and their threads, the process table, the
//! registered names, spawning, the view from outside (`ps`), and `ProcessCtx` — the one door
//! host interfaces use to act on the node, where authority is checked.

mod ctx;
mod inspect;
mod names;
#[allow(clippy::module_inception)]
mod node;
mod spawn;
mod table;
#[cfg(test)]
mod testing;
mod upgrades;

pub use ctx::ProcessCtx;
pub use inspect::ProcessInfo;
pub use names::MAX_NAME_LEN;
pub use node::{HostThreads, Node, NodeBuilder, StartError};
pub(in crate::runtime) use spawn::FromPeer;
pub use spawn::{SpawnOptions, Watch};
pub use upgrades::Step;
pub(in crate::runtime) use upgrades::{Pending, Trial};

pub(in crate::runtime) use ctx::Fault;
#[cfg(test)]
pub(in crate::runtime) use testing::test_process;
