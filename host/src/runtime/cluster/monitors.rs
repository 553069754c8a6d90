//! Monitors across nodes, kept on both sides as a local monitor is. The watcher's node keeps
//! each of its processes' monitors of other nodes' processes (charged to the watcher) by the
//! target's node, so a node that goes down gives each one exactly one exit, `no-connection`.
//! The target's node keeps who watches each of its processes from elsewhere (charged to the
//! watcher's node), and sends each an exit frame when the process ends. Either side forgets a
//! peer's entries when it takes that peer for down.

use std::collections::HashMap;
use std::sync::Mutex;

use super::join::Cluster;
use super::wire::Signal;
use crate::runtime::process::{Charge, OVERHEAD, Process, reduced};
use wasmhost_types::{ExitReason, NodeId, Pid};

/// A peer node's incarnation, as the tables key it.
type PeerKey = (String, u64);

fn peer_of(node: &NodeId) -> PeerKey {
    (node.name.to_string(), node.incarnation)
}

#[derive(Default)]
pub(super) struct RemoteMonitors {
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    /// Watcher side: per peer, each target there → its watchers here (with their receipts).
    watching: HashMap<PeerKey, HashMap<Pid, HashMap<u64, Charge>>>,
    /// Watcher side: a watcher's targets on other nodes, for its exit.
    by_watcher: HashMap<u64, Vec<Pid>>,
    /// Target side: a process here → its watchers on other nodes.
    watched: HashMap<u64, Vec<(Pid, Charge)>>,
}

/// What a monitor of another node's process does now.
pub(in crate::runtime) enum Monitored {
    /// The target's node was told; its exit (or its node's loss) will come as an event.
    Watching,
    /// An exit to report at once: its node is down (`no-connection`), or the pid names no
    /// node this one can reach.
    ExitNow(ExitReason),
    /// The watcher's `host_memory` refuses the entry.
    Refused(String),
}

impl Cluster {
    /// `watcher` monitors `target`, a process of another node.
    pub(in crate::runtime) fn monitor(&self, watcher: &Process, target: &Pid) -> Monitored {
        let Some(node) = &target.node else {
            return Monitored::ExitNow(ExitReason::NoProcess);
        };
        if self.peers.is_down(&node.name, node.incarnation) {
            return Monitored::ExitNow(ExitReason::NoConnection(node.to_string()));
        }
        let me = watcher.pid().id;
        {
            let Ok(mut tables) = self.monitors.inner.lock() else {
                return Monitored::Watching;
            };
            let watchers = tables
                .watching
                .entry(peer_of(node))
                .or_default()
                .entry(target.clone())
                .or_default();
            if watchers.contains_key(&me) {
                return Monitored::Watching;
            }
            let receipt = match watcher.account().charge(OVERHEAD) {
                Ok(receipt) => receipt,
                Err(refused) => return Monitored::Refused(refused.to_string()),
            };
            watchers.insert(me, receipt);
            tables
                .by_watcher
                .entry(me)
                .or_default()
                .push(target.clone());
        }
        let signal = Signal::Monitor {
            watcher: watcher.pid().clone(),
            target: target.clone(),
        };
        self.control(node, signal, watcher.account());
        Monitored::Watching
    }

    /// `watcher` no longer monitors `target`, a process of another node.
    pub(in crate::runtime) fn unmonitor(&self, watcher: &Process, target: &Pid) {
        let Some(node) = &target.node else {
            return;
        };
        let me = watcher.pid().id;
        let removed = match self.monitors.inner.lock() {
            Ok(mut tables) => {
                let removed = forget(&mut tables, &peer_of(node), target, me);
                if let Some(targets) = tables.by_watcher.get_mut(&me) {
                    targets.retain(|t| t != target);
                }
                removed
            }
            Err(_) => false,
        };
        if removed {
            let signal = Signal::Demonitor {
                watcher: watcher.pid().clone(),
                target: target.clone(),
            };
            self.control(node, signal, watcher.account());
        }
    }

    /// A process of this node ended: its links across nodes break or go (`links.rs`), its
    /// monitors of other nodes' processes go (their nodes are told), and its watchers on other
    /// nodes hear of the exit — its kind only, as any process that is not its ancestor does.
    pub(in crate::runtime) fn process_exited(&self, process: &Process, reason: &ExitReason) {
        self.links_of_exited(process, reason);
        self.children_of_exited(process.pid().id);
        let pid = process.pid();
        let (targets, watchers) = match self.monitors.inner.lock() {
            Ok(mut tables) => {
                let targets = tables.by_watcher.remove(&pid.id).unwrap_or_default();
                for target in &targets {
                    if let Some(node) = &target.node {
                        forget(&mut tables, &peer_of(node), target, pid.id);
                    }
                }
                (targets, tables.watched.remove(&pid.id).unwrap_or_default())
            }
            Err(_) => return,
        };
        let Some(node) = self.node() else {
            return;
        };
        let account = node.account.clone();
        for target in targets {
            if let Some(peer) = &target.node {
                let signal = Signal::Demonitor {
                    watcher: pid.clone(),
                    target: target.clone(),
                };
                self.control(peer, signal, &account);
            }
        }
        let reason = reduced(reason);
        for (watcher, _receipt) in watchers {
            if let Some(peer) = &watcher.node {
                let signal = Signal::Exit {
                    from: pid.clone(),
                    to: watcher.clone(),
                    reason: reason.clone(),
                };
                self.control(peer, signal, &account);
            }
        }
    }

    /// A peer's process monitors `target`, a process of this node: kept until `target` ends
    /// (its exit is sent then), or at once an exit `no-process` if it is not alive.
    pub(super) fn monitored(&self, watcher: Pid, target: Pid, receipt: Charge) {
        let Some(node) = self.node() else {
            return;
        };
        if let Ok(mut tables) = self.monitors.inner.lock() {
            let watchers = tables.watched.entry(target.id).or_default();
            if !watchers.iter().any(|(w, _)| *w == watcher) {
                watchers.push((watcher.clone(), receipt));
            }
        }
        // The target may have ended before the entry was made: whoever removes the entry
        // reports the exit, the exit protocol (with its reason) or this (`no-process`).
        if node.is_alive(&target) {
            return;
        }
        let removed = match self.monitors.inner.lock() {
            Ok(mut tables) => match tables.watched.get_mut(&target.id) {
                Some(watchers) => {
                    let before = watchers.len();
                    watchers.retain(|(w, _)| *w != watcher);
                    let removed = watchers.len() < before;
                    if watchers.is_empty() {
                        tables.watched.remove(&target.id);
                    }
                    removed
                }
                None => false,
            },
            Err(_) => false,
        };
        if removed && let Some(peer) = watcher.node.clone() {
            let signal = Signal::Exit {
                from: target,
                to: watcher,
                reason: ExitReason::NoProcess,
            };
            self.control(&peer, signal, &node.account);
        }
    }

    /// The watcher side of a monitor a spawn made on another node: kept before the answer
    /// reaches the parent, so the child's exit, which comes after the answer, finds it.
    pub(super) fn watching_child(&self, child: &Pid, watcher: u64, receipt: Charge) {
        let Some(node) = &child.node else {
            return;
        };
        if let Ok(mut tables) = self.monitors.inner.lock() {
            tables
                .watching
                .entry(peer_of(node))
                .or_default()
                .entry(child.clone())
                .or_default()
                .insert(watcher, receipt);
            tables
                .by_watcher
                .entry(watcher)
                .or_default()
                .push(child.clone());
        }
    }

    /// The target side of a monitor a peer's spawn made here: kept before the child runs.
    pub(super) fn watched_child(&self, child: u64, watcher: Pid, receipt: Charge) {
        if let Ok(mut tables) = self.monitors.inner.lock() {
            tables
                .watched
                .entry(child)
                .or_default()
                .push((watcher, receipt));
        }
    }

    /// A peer's process no longer monitors `target`.
    pub(super) fn demonitored(&self, watcher: &Pid, target: &Pid) {
        if let Ok(mut tables) = self.monitors.inner.lock()
            && let Some(watchers) = tables.watched.get_mut(&target.id)
        {
            watchers.retain(|(w, _)| w != watcher);
            if watchers.is_empty() {
                tables.watched.remove(&target.id);
            }
        }
    }

    /// A peer's process that `to` monitors ended: `to` hears of it, if it still monitors it.
    pub(super) fn exit_arrived(&self, from: Pid, to: &Pid, reason: ExitReason) {
        let Some(peer) = &from.node else {
            return;
        };
        let watched = match self.monitors.inner.lock() {
            Ok(mut tables) => {
                let removed = forget(&mut tables, &peer_of(peer), &from, to.id);
                if let Some(targets) = tables.by_watcher.get_mut(&to.id) {
                    targets.retain(|t| *t != from);
                }
                removed
            }
            Err(_) => false,
        };
        if watched && let Some(node) = self.node() {
            node.exit_event(to.id, from, reason);
        }
    }

    /// A peer went down: each monitor of its processes gets one `no-connection`, and its
    /// processes' monitors of this node's go.
    pub(super) fn monitors_lost(&self, name: &str, incarnation: u64) {
        let key = (name.to_string(), incarnation);
        let watching = match self.monitors.inner.lock() {
            Ok(mut tables) => {
                tables.watched.retain(|_, watchers| {
                    watchers.retain(|(w, _)| {
                        w.node
                            .as_ref()
                            .is_none_or(|n| *n.name != *name || n.incarnation != incarnation)
                    });
                    !watchers.is_empty()
                });
                let watching = tables.watching.remove(&key).unwrap_or_default();
                for (target, watchers) in &watching {
                    for watcher in watchers.keys() {
                        if let Some(targets) = tables.by_watcher.get_mut(watcher) {
                            targets.retain(|t| t != target);
                        }
                    }
                }
                watching
            }
            Err(_) => return,
        };
        let Some(node) = self.node() else {
            return;
        };
        let lost = format!("{name}.{incarnation}");
        for (target, watchers) in watching {
            for (watcher, _receipt) in watchers {
                node.exit_event(
                    watcher,
                    target.clone(),
                    ExitReason::NoConnection(lost.clone()),
                );
            }
        }
    }
}

/// Removes `watcher`'s monitor of `target` (of `peer`) from the watcher side; whether it was
/// there.
fn forget(tables: &mut Tables, peer: &PeerKey, target: &Pid, watcher: u64) -> bool {
    let Some(targets) = tables.watching.get_mut(peer) else {
        return false;
    };
    let Some(watchers) = targets.get_mut(target) else {
        return false;
    };
    let removed = watchers.remove(&watcher).is_some();
    if watchers.is_empty() {
        targets.remove(target);
    }
    if targets.is_empty() {
        tables.watching.remove(peer);
    }
    removed
}
