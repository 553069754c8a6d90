//! The only wasmtime code: the engine and its instance pool, what the machine allows, the
//! node's configuration, the compile cache, compiling and linking each entry with the host
//! interfaces it is granted, a process's store (its limiter, handles, hostcall fuel,
//! preemption) and the task that runs it.
//!
//! Its one loop with the rest of the runtime is the store's data: a store holds the
//! process's `ProcessCtx` (a door of `node/`), and `run` reports an exit to the node.

mod compile_cache;
mod config;
#[allow(clippy::module_inception)]
mod engine;
mod extensions;
mod hibernated;
mod interfaces;
mod limits;
mod machine;
mod not_granted;
mod pool;
mod programs;
mod run;
mod stderr;
mod store;
mod wasi;

pub use compile_cache::{CompileCache, CompileProgress, Compiled};
pub use config::{ConfigError, MAX_PROCESSES, NodeConfig};
pub use interfaces::{HostInterface, LinkFn, Provides};
pub use machine::{mappings, mappings_needed, processes_that_fit};
pub use pool::Share;
pub use programs::{Compiler, Import, Program, compile_all, compile_entry, sha256_of};
#[cfg(fuzzing)]
pub use store::HOST_CALLS;
pub use store::{ProcessCtxView, ProcessState, ProcessView, new_store};
pub use wasi::add_to_linker as link_wasi;

pub(in crate::runtime) use engine::engine;
pub(in crate::runtime) use extensions::NodeState;
pub(in crate::runtime) use limits::check_against_pool;
pub(in crate::runtime) use pool::{Full, Pool, Reserved};
pub(in crate::runtime) use run::run;
