//! What the node's processes are doing, at one moment, for people (`wasmhost ps`).

use std::time::Duration;

use super::Node;
use wasmhost_types::Pid;

/// One live process, seen from outside.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    pub pid: Pid,
    /// The `process.wasm` entry it runs.
    pub entry: String,
    /// The process that spawned it; `None` for those the node spawned (services, `run`).
    pub parent: Option<Pid>,
    pub uptime: Duration,
    /// Messages waiting in its mailbox.
    pub mailbox: usize,
    /// Bytes of linear memory and tables.
    pub memory: u64,
    /// Bytes the host holds for it (`host_memory`).
    pub held: u64,
    /// Running time so far.
    pub cpu: Duration,
    /// While it hibernates: the size of its state.
    pub hibernated: Option<u64>,
}

impl Node {
    /// How many live processes hibernate now.
    pub fn hibernated_count(&self) -> usize {
        self.table
            .all()
            .iter()
            .filter(|p| p.hibernated().is_some())
            .count()
    }

    /// Every live process, oldest first.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let mut all: Vec<ProcessInfo> = self
            .table
            .all()
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid().clone(),
                entry: p.entry().to_string(),
                parent: p.parent().map(|parent| parent.pid().clone()),
                uptime: p.started().elapsed(),
                mailbox: p.mailbox().len(),
                memory: p.memory(),
                held: p.account().held(),
                cpu: p.cpu().used(),
                hibernated: p.hibernated(),
            })
            .collect();
        all.sort_by_key(|p| p.pid.id);
        all
    }
}
