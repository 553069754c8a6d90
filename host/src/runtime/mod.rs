//! The process runtime: a node that owns every process, and what happens on spawn, send,
//! monitor, link, register and exit — in subsystems, each a folder whose `mod.rs` is its door:
//! `process/` (a leaf), `engine/` (the only wasmtime code), `node/`, `signals/`, `cluster/`
//! (the only NATS code) and the `scheduler`. docs/architecture.md says what each may call; a test holds the code to it.
//!
//! It knows neither YAML nor WIT: it runs the validated app (`crate::app`), and links each
//! process with the host interfaces of the table it was built with ([`HostInterface`]).
//! Host interfaces reach it through [`ProcessView`] → [`ProcessCtx`], the calling process
//! acting on the node.

mod cluster;
mod engine;
mod node;
mod process;
mod scheduler;
mod signals;

pub use crate::app::Limits;
pub use cluster::{Cluster, ClusterConfig, JoinError, PeerView, Placement};
#[cfg(fuzzing)]
pub use engine::HOST_CALLS;
pub use engine::{
    CompileCache, CompileProgress, Compiled, Compiler, ConfigError, HostInterface, Import, LinkFn,
    MAX_PROCESSES, NodeConfig, ProcessCtxView, ProcessState, ProcessView, Program, Provides, Share,
    compile_all, link_wasi, mappings, mappings_needed, new_store, processes_that_fit, sha256_of,
};
pub use node::{
    HostThreads, MAX_NAME_LEN, Node, NodeBuilder, ProcessCtx, ProcessInfo, SpawnOptions,
    StartError, Watch,
};
pub use process::log::{
    JsonLine, enabled as guest_log_enabled, json_line as guest_log_json, payer as guest_log_payer,
    render as render_log_line, structured as guest_logs_as_json,
};
pub use process::{
    Account, Charge, Charged, CpuMeter, Mailbox, Message, Privileges, Process, Queue, Refused,
};
pub use signals::{Moved, UpgradeError, UpgradeReport};
pub use wasmhost_types::{
    Denied, Destination, Event, ExitReason, NodeId, Pid, RegisterError, SendError, SpawnError,
};
