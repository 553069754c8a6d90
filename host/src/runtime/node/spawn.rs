//! Spawning: every reason to refuse is checked before the child exists (unknown entry or
//! host, the parent's authority, a full pool, the parent's `children`, the number and size
//! of the arguments, the parent's `host_memory` for holding them until the child starts, a
//! bound terminal), so `spawn` either returns an error or a pid whose exit will be
//! reported.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::names::MAX_NAME_LEN;
use super::node::{Host, Node, Threads};
use crate::runtime::engine::{Full, run};
use crate::runtime::process::{Account, Caller, OVERHEAD, Process, cut, may_spawn, may_spawn_as};
use wasmhost_types::{ExitReason, Pid, SpawnError};

/// The most arguments an entry point takes (Erlang's largest arity).
pub const MAX_ARGS: usize = 255;

/// What the host keeps for one argument besides its bytes.
const ARG_COST: u64 = 24;

/// `text` as an error shows it: at most a name's length, so a refusal never echoes back a
/// huge string.
fn shown(text: String) -> String {
    cut(text, MAX_NAME_LEN)
}

/// What to spawn and who hears of it.
///
/// ```
/// use wasmhost::runtime::SpawnOptions;
///
/// let (exit, _exited) = tokio::sync::oneshot::channel();
/// let options = SpawnOptions::new("app:worker", "app:processes")
///     .args(vec![wasmhost_types::payload::encode("hello")])
///     .on_exit(exit);
/// ```
pub struct SpawnOptions {
    entry: String,
    host: String,
    args: Vec<Vec<u8>>,
    parent: Option<(Arc<Process>, Watch)>,
    on_exit: Option<oneshot::Sender<ExitReason>>,
    from_peer: Option<FromPeer>,
    service: Option<Arc<str>>,
}

/// A spawn another node of the cluster asked for (`cluster/spawn.rs`).
pub(in crate::runtime) struct FromPeer {
    /// The asking process's entry and host: its authority is decided from them.
    pub caller_entry: String,
    pub caller_host: String,
    /// Who pays for the arguments until the child starts: the asking node.
    pub payer: Arc<Account>,
    /// Called with the child's pid once it is in the table, before it runs.
    pub before_start: Box<dyn FnOnce(&Pid) + Send>,
}

/// How a spawned child is tied to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Not at all (`spawn`).
    None,
    /// The parent monitors the child (`spawn-monitored`).
    Monitor,
    /// Parent and child are linked (`spawn-linked`).
    Link,
}

impl SpawnOptions {
    /// Spawn the `process.wasm` entry `entry` on the host `host`.
    pub fn new(entry: impl Into<String>, host: impl Into<String>) -> Self {
        SpawnOptions {
            entry: entry.into(),
            host: host.into(),
            args: Vec::new(),
            parent: None,
            on_exit: None,
            from_peer: None,
            service: None,
        }
    }

    /// A spawn asked for by another node of the cluster.
    pub(in crate::runtime) fn for_peer(mut self, from: FromPeer) -> Self {
        self.from_peer = Some(from);
        self
    }

    /// The entry point's arguments, one CBOR payload each.
    pub fn args(mut self, args: Vec<Vec<u8>>) -> Self {
        self.args = args;
        self
    }

    /// The process runs as the service `id` (its log lines, and its children's, say so).
    pub fn service(mut self, id: &str) -> Self {
        self.service = Some(id.into());
        self
    }

    /// Send the child's exit reason here when it ends.
    pub fn on_exit(mut self, exit: oneshot::Sender<ExitReason>) -> Self {
        self.on_exit = Some(exit);
        self
    }

    /// The child of `parent`, which counts it against its `children` and watches it so.
    pub(in crate::runtime) fn child_of(mut self, parent: &Arc<Process>, watch: Watch) -> Self {
        self.parent = Some((parent.clone(), watch));
        self
    }
}

impl Node {
    /// Starts a process. It is in the process table before it runs, so a monitor or link
    /// set here cannot miss its exit.
    /// The threads the processes of `host` run on; `None` if it has none of its own and the
    /// node was built outside an async runtime.
    fn threads_of<'a>(&'a self, host: &'a Host) -> Option<&'a Threads> {
        host.threads.as_ref().or(self.shared.as_ref())
    }

    /// The threads the processes of the host `host` names run on.
    pub(in crate::runtime) fn threads_for(&self, host: &str) -> Option<&Threads> {
        self.threads_of(self.hosts.get(host)?)
    }

    pub fn spawn(self: &Arc<Self>, options: SpawnOptions) -> Result<Pid, SpawnError> {
        let SpawnOptions {
            entry,
            host,
            args,
            parent,
            on_exit,
            from_peer,
            service,
        } = options;
        let Some(program) = self.program(&entry) else {
            return Err(SpawnError::UnknownEntry(shown(entry)));
        };
        let Some(host) = self.hosts.get(&host) else {
            return Err(SpawnError::UnknownHost(shown(host)));
        };
        if let Some((parent, _)) = &parent {
            may_spawn(
                parent,
                (&program.id, &program.privileges),
                &host.id,
                host.terminal,
            )?;
        }
        if let Some(peer) = &from_peer {
            let Some(caller) = self.program(&peer.caller_entry) else {
                return Err(SpawnError::Denied(format!(
                    "{} is not an entry of this node's registry",
                    shown(peer.caller_entry.clone())
                )));
            };
            let caller = Caller {
                entry: &caller.id,
                host: &peer.caller_host,
                privileges: &caller.privileges,
            };
            may_spawn_as(
                caller,
                (&program.id, &program.privileges),
                &host.id,
                host.terminal,
            )?;
        }
        let limits = match host.limits_of.get(&program.id) {
            Some(limits) => limits.clone(),
            None => Arc::new(self.defaults.resolve(&program.entry.limits, &host.limits)),
        };
        if args.len() > MAX_ARGS {
            return Err(SpawnError::Limit(format!(
                "args: {} arguments, the most is {MAX_ARGS}",
                args.len()
            )));
        }
        let args_size: u64 = args.iter().map(|a| a.len() as u64).sum();
        if args_size > limits.message_size {
            return Err(SpawnError::Limit(format!(
                "args: {args_size} bytes of arguments, over {}'s message_size of {}",
                program.id, limits.message_size
            )));
        }
        // The arguments wait on the host until the child starts: its parent pays for them.
        let payer = match (&parent, &from_peer) {
            (Some((parent, _)), _) => parent.account(),
            (None, Some(peer)) => &peer.payer,
            (None, None) => &self.account,
        };
        let receipt = |bytes| {
            payer
                .charge(bytes)
                .map_err(|refused| SpawnError::Limit(refused.to_string()))
        };
        let args_receipt = receipt(args_size + OVERHEAD + ARG_COST * args.len() as u64)?;
        // A monitor is one entry, a link one on each side, each paid by the parent.
        let watch = match &parent {
            Some((_, Watch::Monitor)) => (Some(receipt(OVERHEAD)?), None),
            Some((_, Watch::Link)) => (Some(receipt(OVERHEAD)?), Some(receipt(OVERHEAD)?)),
            _ => (None, None),
        };
        let threads = self.threads_of(host).ok_or_else(|| {
            SpawnError::Limit("threads: the node was built outside an async runtime".into())
        })?;
        // The app's own spawns leave the reserved slots to the node (services, the CLI).
        let reserve = if parent.is_some() || from_peer.is_some() {
            self.config.reserved()
        } else {
            0
        };
        let slot = self.table.reserve(program.share, reserve).map_err(|full| {
            let kept = match reserve {
                0 => String::new(),
                n => format!(" ({n} are kept for services)"),
            };
            SpawnError::Limit(match full {
                Full::Processes { capacity } => {
                    format!("processes: the node's pool of {capacity} processes is full{kept}")
                }
                Full::Share {
                    what,
                    in_use,
                    limit,
                    wanted,
                } => format!(
                    "processes: the node's pool is full: {in_use} of its {limit} {what} are \
                         in use and {} takes {wanted}{kept}",
                    program.id
                ),
            })
        })?;
        if let Some((parent, how)) = &parent {
            parent
                .add_child(matches!(how, Watch::Monitor))
                .map_err(SpawnError::Limit)?;
        }

        let id = self.table.next_id();
        if host.terminal && !self.terminal.bind(id) {
            if let Some((parent, _)) = &parent {
                parent.child_gone();
            }
            return Err(SpawnError::Limit(format!(
                "terminal: {} is already bound to another process",
                host.id
            )));
        }
        // Outside a cluster a pid names no node.
        let pid = Pid {
            node: self.node_id().cloned(),
            host: host.id.clone(),
            id,
        };
        let process = Arc::new(Process::new(
            pid.clone(),
            program.identity(),
            limits,
            (parent.as_ref().map(|(p, _)| p), service),
            &self.ledger,
        ));
        if let Some(on_exit) = on_exit {
            process.on_exit(on_exit);
        }
        // No one else sees the child before it is in the table: no exit can be missed, and
        // no lock is held across another.
        if let Some((parent, how)) = &parent {
            match (how, watch) {
                (Watch::Monitor, (Some(receipt), _)) => parent.watch_child(&process, receipt),
                (Watch::Link, (Some(mine), Some(theirs))) => {
                    parent.link_child(&process, (mine, theirs))
                }
                _ => {}
            }
        }
        self.table.insert(process.clone());
        if let Some(peer) = from_peer {
            (peer.before_start)(&pid);
        }
        threads.spawn(run(
            self.clone(),
            program,
            process,
            args,
            args_receipt,
            slot,
        ));
        Ok(pid)
    }
}
