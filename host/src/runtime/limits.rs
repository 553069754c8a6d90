//! The limits in force for a process: its entry's, else its host's, else the node's; and
//! the check, before anything starts, that the registry asks for nothing the pool cannot
//! give.

use std::time::Duration;

use crate::app::{App, Diagnostic, Diagnostics, LimitOverrides, Origin, values::show_size};

use super::config::NodeConfig;

/// Limits in force for one process. SECURITY.md gives each one's default and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory, all its memories and tables together.
    pub memory: u64,
    /// Running time over its whole life; `None`: unlimited.
    pub cpu: Option<Duration>,
    /// The share of one core it may use, in per mille; over it, it is paused (not ended).
    pub cpu_rate: Option<u32>,
    /// Messages its mailbox holds.
    pub mailbox: u64,
    /// Bytes its mailbox holds (payloads and topics).
    pub mailbox_bytes: u64,
    /// Bytes of one message's payload; also of its exit value and of spawn arguments for it.
    pub message_size: u64,
    /// Live children it may have.
    pub children: u64,
    /// Events that may wait in its event stream, and monitors it may hold.
    pub events: u64,
    /// Names it may hold.
    pub names: u64,
    /// Resource handles (mailbox, timers, pollables, …) it may hold.
    pub handles: u64,
    /// Log lines per second (a burst of as many is allowed).
    pub log_rate: u64,
    /// Bytes the host may hold on its behalf (`ledger.rs`): messages it sent that wait in
    /// mailboxes, events waiting for it, names, monitors, links, pending cancels, arguments
    /// of children not yet started, queued log lines, timers.
    pub host_memory: u64,
}

impl Limits {
    /// `entry`'s limits where set, else `host`'s, else these.
    pub fn resolve(&self, entry: &LimitOverrides, host: &LimitOverrides) -> Limits {
        let set = entry.or(host);
        Limits {
            memory: set.memory.unwrap_or(self.memory),
            cpu: set.cpu.or(self.cpu),
            cpu_rate: set.cpu_rate.or(self.cpu_rate),
            mailbox: set.mailbox.unwrap_or(self.mailbox),
            mailbox_bytes: set.mailbox_bytes.unwrap_or(self.mailbox_bytes),
            message_size: set.message_size.unwrap_or(self.message_size),
            children: set.children.unwrap_or(self.children),
            events: set.events.unwrap_or(self.events),
            names: set.names.unwrap_or(self.names),
            handles: set.handles.unwrap_or(self.handles),
            log_rate: set.log_rate.unwrap_or(self.log_rate),
            host_memory: set.host_memory.unwrap_or(self.host_memory),
        }
    }
}

/// Every entry or host whose limits ask for more than the node's pool can give.
pub fn check_against_pool(app: &App, config: &NodeConfig) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let set = app
        .processes
        .values()
        .map(|e| (&e.id, &e.origin, &e.limits))
        .chain(app.hosts.values().map(|h| (&h.id, &h.origin, &h.limits)));
    for (id, origin, limits) in set {
        let problem = |message: String, hint: &str| {
            Diagnostic::new(&origin.file, message)
                .at(line(origin, limits))
                .entry(id.clone())
                .hint(hint)
        };
        if let Some(memory) = limits.memory.filter(|&m| m > config.max_memory) {
            problems.push(problem(
                format!(
                    "`limits.memory` is {}, more than the node's `max_memory` of {}",
                    show_size(memory),
                    show_size(config.max_memory)
                ),
                "raise `max_memory` in [node] of wasmhost.toml (or --max-memory), or lower the limit",
            ));
        }
        if let Some(children) = limits
            .children
            .filter(|&c| c > u64::from(config.max_processes))
        {
            problems.push(problem(
                format!(
                    "`limits.children` is {children}, more than the node's `max_processes` of {}",
                    config.max_processes
                ),
                "raise `max_processes` in [node] of wasmhost.toml (or --max-processes), or lower the limit",
            ));
        }
    }
    problems
}

fn line(origin: &Origin, limits: &LimitOverrides) -> u64 {
    if limits.line > 0 {
        limits.line
    } else {
        origin.line
    }
}
