//! Links across nodes, kept on both sides as monitors across nodes are (`monitors.rs`): each
//! side keeps its processes' links to the other node's, charged to its own process. When
//! either process ends, the other side is told: an abnormal exit breaks the link there
//! (the survivor ends with `link-down`, or hears `link-down` if it traps links), a normal one
//! just removes it; a node lost breaks every link to its processes with `no-connection`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::join::Cluster;
use super::wire::Signal;
use crate::runtime::process::{Charge, OVERHEAD, Process, reduced};
use wasmhost_types::{ExitReason, NodeId, Pid};

/// Per process of this node: its links to processes of other nodes, with the receipt of each.
#[derive(Default)]
pub(super) struct RemoteLinks {
    by_local: Mutex<HashMap<u64, HashMap<Pid, Charge>>>,
}

/// What a link to another node's process does now.
pub(in crate::runtime) enum Linked {
    /// Both sides will hold it once the other node has the frame.
    Held,
    /// It breaks at once: its node is down, or the pid names no node this one reaches.
    BrokenNow(ExitReason),
    /// The process's `host_memory` refuses the entry.
    Refused(String),
}

impl RemoteLinks {
    /// Adds `local`'s link to `remote`; false if it was there.
    pub(super) fn add(&self, local: u64, remote: &Pid, receipt: Charge) -> bool {
        let Ok(mut links) = self.by_local.lock() else {
            return false;
        };
        let partners = links.entry(local).or_default();
        if partners.contains_key(remote) {
            return false;
        }
        partners.insert(remote.clone(), receipt);
        true
    }

    /// Removes `local`'s link to `remote`; whether it was there.
    fn remove(&self, local: u64, remote: &Pid) -> bool {
        let Ok(mut links) = self.by_local.lock() else {
            return false;
        };
        let Some(partners) = links.get_mut(&local) else {
            return false;
        };
        let removed = partners.remove(remote).is_some();
        if partners.is_empty() {
            links.remove(&local);
        }
        removed
    }
}

impl Cluster {
    /// `process` links to `target`, a process of another node.
    pub(in crate::runtime) fn link(&self, process: &Process, target: &Pid) -> Linked {
        let Some(node) = &target.node else {
            return Linked::BrokenNow(ExitReason::NoProcess);
        };
        if self.peers.is_down(&node.name, node.incarnation) {
            return Linked::BrokenNow(ExitReason::NoConnection(node.to_string()));
        }
        let receipt = match process.account().charge(OVERHEAD) {
            Ok(receipt) => receipt,
            Err(refused) => return Linked::Refused(refused.to_string()),
        };
        if self.links.add(process.pid().id, target, receipt) {
            let signal = Signal::Link {
                from: process.pid().clone(),
                to: target.clone(),
            };
            self.control(node, signal, process.account());
        }
        Linked::Held
    }

    /// The caller's side of a `spawn-linked` onto another node, once the child's node
    /// answered (its side was made before the child ran). A caller that ended meanwhile
    /// breaks the link on the child's side, as its exit would have.
    pub(super) fn linked_child(&self, parent: &Pid, child: &Pid, receipt: Charge) {
        self.links.add(parent.id, child, receipt);
        let Some(node) = self.node() else {
            return;
        };
        if !node.is_alive(parent) && self.links.remove(parent.id, child) {
            self.refuse_link(parent, child.clone(), ExitReason::NoProcess);
        }
    }

    /// `process` unlinks from `target`, a process of another node.
    pub(in crate::runtime) fn unlink(&self, process: &Process, target: &Pid) {
        if let Some(node) = &target.node
            && self.links.remove(process.pid().id, target)
        {
            let signal = Signal::Unlink {
                from: process.pid().clone(),
                to: target.clone(),
            };
            self.control(node, signal, process.account());
        }
    }

    /// `process` ends `target`, a process of another node (its authority already checked).
    pub(in crate::runtime) fn terminate(&self, process: &Process, target: &Pid) {
        if let Some(node) = &target.node {
            let signal = Signal::Terminate {
                from: process.pid().clone(),
                to: target.clone(),
            };
            self.control(node, signal, process.account());
        }
    }

    /// `process` cancels `target`, a process of another node (its authority already checked).
    pub(in crate::runtime) fn cancel(
        &self,
        process: &Process,
        target: &Pid,
        reason: String,
        grace: std::time::Duration,
    ) {
        if let Some(node) = &target.node {
            let signal = Signal::Cancel {
                from: process.pid().clone(),
                to: target.clone(),
                reason: crate::runtime::process::bounded(reason),
                grace_ms: grace.as_millis().try_into().unwrap_or(u64::MAX),
            };
            self.control(node, signal, process.account());
        }
    }

    /// A process of this node ended: each of its partners on other nodes is told — the
    /// exit's kind if it was abnormal (their link breaks), an unlink if it was normal.
    pub(super) fn links_of_exited(&self, process: &Process, reason: &ExitReason) {
        let partners = match self.links.by_local.lock() {
            Ok(mut links) => links.remove(&process.pid().id).unwrap_or_default(),
            Err(_) => return,
        };
        let Some(node) = self.node() else {
            return;
        };
        for (partner, _receipt) in partners {
            let Some(peer) = partner.node.clone() else {
                continue;
            };
            let from = process.pid().clone();
            let signal = match reason.is_normal() {
                true => Signal::Unlink { from, to: partner },
                false => Signal::LinkExit {
                    from,
                    to: partner,
                    reason: reduced(reason),
                },
            };
            self.control(&peer, signal, &node.account);
        }
    }

    /// A peer's process `from` links to `to`, a process of this node: kept on this side,
    /// charged to `to` as its own links are; broken at once (`no-process`) if `to` is gone.
    pub(super) fn linked_from(&self, from: Pid, to: &Pid) {
        let Some(node) = self.node() else {
            return;
        };
        let Some(process) = node.process_of(to) else {
            return self.refuse_link(to, from, ExitReason::NoProcess);
        };
        let receipt = match process.account().charge(OVERHEAD) {
            Ok(receipt) => receipt,
            Err(refused) => {
                // The process pays for its side of the link, as for a local one.
                process.kill(ExitReason::Limit(refused.to_string()));
                return self.refuse_link(to, from, ExitReason::Limit(String::new()));
            }
        };
        self.links.add(to.id, &from, receipt);
        // It may have ended before its side was made: whoever removes the entry tells the
        // other node.
        if !node.is_alive(to) && self.links.remove(to.id, &from) {
            self.refuse_link(to, from, ExitReason::NoProcess);
        }
    }

    fn refuse_link(&self, ours: &Pid, theirs: Pid, reason: ExitReason) {
        let (Some(node), Some(peer)) = (self.node(), theirs.node.clone()) else {
            return;
        };
        let signal = Signal::LinkExit {
            from: ours.clone(),
            to: theirs,
            reason,
        };
        self.control(&peer, signal, &node.account);
    }

    /// A peer's process `from` unlinked from `to`, or ended normally.
    pub(super) fn unlinked_from(&self, from: &Pid, to: &Pid) {
        self.links.remove(to.id, from);
    }

    /// A peer's process `from`, linked to `to`, ended abnormally: the link breaks here.
    pub(super) fn link_exit_arrived(&self, from: Pid, to: &Pid, reason: ExitReason) {
        if self.links.remove(to.id, &from)
            && let Some(node) = self.node()
        {
            node.link_broken_by(to, &from, &reason);
        }
    }

    /// A peer was lost: every link to its processes breaks with `no-connection`.
    pub(super) fn links_lost(&self, lost: &NodeId) {
        let broken: Vec<(u64, Pid)> = match self.links.by_local.lock() {
            Ok(mut links) => {
                let mut broken = Vec::new();
                links.retain(|local, partners| {
                    partners.retain(|partner, _| {
                        let on_lost = partner.node.as_ref() == Some(lost);
                        if on_lost {
                            broken.push((*local, partner.clone()));
                        }
                        !on_lost
                    });
                    !partners.is_empty()
                });
                broken
            }
            Err(_) => return,
        };
        let Some(node) = self.node() else {
            return;
        };
        let reason = ExitReason::NoConnection(lost.to_string());
        for (local, partner) in broken {
            if let Some(process) = node.process(local) {
                node.link_broken_by(process.pid(), &partner, &reason);
            }
        }
    }
}
