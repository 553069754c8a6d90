//! The process runtime: a node that owns every process, and what happens on spawn, send,
//! monitor, link, register and exit — one file per concern (`node.rs` lists them).
//!
//! It knows neither YAML nor WIT: it runs the validated app (`crate::app`), and links each
//! process with the host interfaces of the table it was built with ([`HostInterface`]).
//! Host interfaces reach it through [`ProcessView`] → [`ProcessCtx`], the calling process
//! acting on the node.

mod authority;
mod compile_cache;
mod config;
mod cpu;
mod ctx;
mod denied;
mod engine;
mod exit;
mod extensions;
mod inspect;
mod interfaces;
mod ledger;
mod limits;
mod links;
mod log;
mod machine;
mod mailbox;
mod names;
mod node;
mod pool;
mod process;
mod programs;
mod queue;
mod run;
mod scheduler;
mod send;
mod signals;
mod spawn;
mod stderr;
mod store;
mod table;
#[cfg(test)]
mod testing;
mod wasi;

pub use crate::app::Limits;
pub use authority::Privileges;
pub use compile_cache::{CompileCache, CompileProgress, Compiled};
pub use config::{ConfigError, MAX_PROCESSES, NodeConfig};
pub use cpu::CpuMeter;
pub use ctx::ProcessCtx;
pub use inspect::ProcessInfo;
pub use interfaces::{HostInterface, LinkFn, Provides};
pub use ledger::{Account, Charge, Charged, Refused};
pub use log::{enabled as guest_log_enabled, payer as guest_log_payer, render as render_log_line};
pub use machine::{mappings, mappings_needed, processes_that_fit};
pub use mailbox::{Mailbox, Message};
pub use names::MAX_NAME_LEN;
pub use node::{HostThreads, Node, NodeBuilder, StartError};
pub use pool::Share;
pub use process::Process;
pub use programs::{Compiler, Import, Program, compile_all, sha256_of};
pub use queue::Queue;
pub use spawn::{SpawnOptions, Watch};
#[cfg(fuzzing)]
pub use store::HOST_CALLS;
pub use store::{ProcessCtxView, ProcessState, ProcessView, new_store};
pub use wasi::add_to_linker as link_wasi;
pub use wasmhost_types::{
    Denied, Destination, Event, ExitReason, Pid, RegisterError, SendError, SpawnError,
};
