//! Erlang's signal layer: messages (`send`), monitors and links and the events they deliver
//! (`links`), stop orders (`stop`: terminate, cancel), the exit protocol (`exit`) and hot
//! upgrade (`upgrade`: each process asked to hand over to a new component). Each
//! is a set of `Node` methods over the node's table and names; a remote node plugs in here.

mod exit;
mod links;
mod send;
mod stop;
mod upgrade;

pub use upgrade::{Moved, UpgradeError, UpgradeReport};
