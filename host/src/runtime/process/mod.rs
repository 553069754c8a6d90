//! A process as the rest of the node sees it, and what it is charged for: its pid, entry,
//! privileges and lineage, mailbox, events, links and monitors (`Control`), its account
//! with the host, its CPU time, its log budget, its state while it hibernates. A leaf: it calls nothing else in the runtime.

mod authority;
mod control;
mod cpu;
mod hibernation;
mod ledger;
pub(in crate::runtime) mod log;
mod mailbox;
#[allow(clippy::module_inception)]
mod process;
mod queue;
mod text;

pub use authority::Privileges;
pub use cpu::CpuMeter;
pub use hibernation::{HIBERNATION_OVERHEAD, Hibernating, Hibernation};
pub use ledger::{Account, Charge, Charged, Refused};
pub use mailbox::{Mailbox, Message};
pub use process::Process;
pub use queue::Queue;

pub(in crate::runtime) use authority::{
    Caller, Reach, may_signal, may_spawn, may_spawn_as, reduced,
};
pub(in crate::runtime) use control::{AtLimit, Ended};
pub(in crate::runtime) use cpu::Throttle;
pub(in crate::runtime) use ledger::{NodeLedger, OVERHEAD};
pub(in crate::runtime) use log::LogBudget;
pub(in crate::runtime) use mailbox::cost;
pub(in crate::runtime) use text::{bounded, cut};
