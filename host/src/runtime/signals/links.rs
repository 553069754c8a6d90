//! Monitors (one-way: the watcher hears of the exit) and links (two-way: an abnormal exit
//! takes the other down, unless it traps links), as in Erlang, and the delivery of the
//! events they produce within the receiver's `events` limit. Each entry lives on both sides,
//! kept in step by `process/control.rs`; each carries the receipt of the process that made it.

use std::sync::Arc;

use crate::runtime::cluster::{Linked, Monitored};
use crate::runtime::node::Node;
use crate::runtime::process::{AtLimit, Charged, OVERHEAD, Process};
use wasmhost_types::{Event, ExitReason, Pid};

/// What a monitor or one side of a link costs its maker: a map entry and its receipt.
const ENTRY_COST: u64 = OVERHEAD;

/// What an event costs whoever pays for it: its reason's text or value, the pid it names.
pub(super) fn event_cost(event: &Event) -> u64 {
    let reason = |reason: &ExitReason| match reason {
        ExitReason::Normal(value) => value.len(),
        ExitReason::Error(m)
        | ExitReason::Trap(m)
        | ExitReason::Limit(m)
        | ExitReason::Killed(m)
        | ExitReason::Cancelled(m) => m.len(),
        ExitReason::LinkDown(pid) => pid.host.len(),
        ExitReason::NoProcess => 0,
        ExitReason::NoConnection(node) => node.len(),
    };
    let data = match event {
        Event::Exit { from, reason: r } | Event::LinkDown { from, reason: r } => {
            from.host.len() + reason(r)
        }
        Event::Cancel { reason } => reason.len(),
        Event::Upgrade => 0,
    };
    OVERHEAD + data as u64
}

impl Node {
    /// Puts `event` in `to`'s events, paid for by `payer` (the node if `None`): what a
    /// process is owed, so only its own `host_memory` refuses it, and a process past it
    /// ends. A process whose stream is full has watched more than it reads: it is ended,
    /// as for any broken limit.
    pub(super) fn deliver(&self, to: &Process, event: Event, payer: Option<&Process>) {
        let account = payer.map_or(&self.account, |p| p.account());
        let receipt = match account.owe(event_cost(&event)) {
            Ok(receipt) => receipt,
            Err(refused) => {
                if let Some(payer) = payer {
                    payer.kill(ExitReason::Limit(refused.to_string()));
                }
                return;
            }
        };
        let limit = to.limits().events;
        if to
            .events()
            .push_within(Charged::new(event, receipt), limit)
            .is_err()
        {
            to.kill(ExitReason::Limit(format!(
                "events: {limit} events are waiting, its limit"
            )));
        }
    }

    /// `watcher` monitors `target`; an exit already past is reported at once.
    pub(in crate::runtime) fn monitor(&self, watcher: &Process, target: &Pid) {
        if target.node.as_ref() != self.node_id() {
            return self.monitor_remote(watcher, target);
        }
        // Its side first: a target that ends from here on finds it and removes it.
        match watcher.watch(target.id) {
            Ok(true) => {}
            Ok(false) => return,
            Err(AtLimit(message)) => {
                watcher.kill(ExitReason::Limit(message));
                return;
            }
        }
        let receipt = match watcher.account().charge(ENTRY_COST) {
            Ok(receipt) => receipt,
            Err(refused) => {
                watcher.unwatch(target.id);
                watcher.kill(ExitReason::Limit(refused.to_string()));
                return;
            }
        };
        let me = watcher.pid().id;
        let added = self
            .table
            .find(target)
            .is_some_and(|t| t.add_watcher(me, receipt));
        if !added {
            watcher.unwatch(target.id);
            let event = Event::Exit {
                from: target.clone(),
                reason: ExitReason::NoProcess,
            };
            self.deliver(watcher, event, Some(watcher));
        }
    }

    /// `watcher` monitors a process of another node: through the cluster, which reports its
    /// exit, or its node's loss as `no-connection`.
    fn monitor_remote(&self, watcher: &Process, target: &Pid) {
        let now = match &self.cluster {
            Some(cluster) => match cluster.monitor(watcher, target) {
                Monitored::Watching => return,
                Monitored::Refused(why) => {
                    watcher.kill(ExitReason::Limit(why));
                    return;
                }
                Monitored::ExitNow(reason) => reason,
            },
            // A node outside a cluster reaches no other node.
            None => match &target.node {
                Some(node) => ExitReason::NoConnection(node.to_string()),
                None => ExitReason::NoProcess,
            },
        };
        let event = Event::Exit {
            from: target.clone(),
            reason: now,
        };
        self.deliver(watcher, event, Some(watcher));
    }

    /// The process `to` of this node hears that `from`, a process it monitored on another
    /// node, ended (or its node was lost); paid for by `to`.
    pub(in crate::runtime) fn exit_event(&self, to: u64, from: Pid, reason: ExitReason) {
        if let Some(watcher) = self.table.get(to) {
            self.deliver(&watcher, Event::Exit { from, reason }, Some(&watcher));
        }
    }

    pub(in crate::runtime) fn unmonitor(&self, watcher: &Process, target: &Pid) {
        if target.node.as_ref() != self.node_id() {
            if let Some(cluster) = &self.cluster {
                cluster.unmonitor(watcher, target);
            }
            return;
        }
        if !watcher.unwatch(target.id) {
            return;
        }
        if let Some(t) = self.table.get(target.id) {
            t.remove_watcher(watcher.pid().id);
        }
    }

    /// Links `a` and `target`. Linking to a process that is gone counts as its abnormal
    /// exit.
    pub(in crate::runtime) fn link(&self, a: &Arc<Process>, target: &Pid) {
        if target.node.as_ref() != self.node_id() {
            return self.link_remote(a, target);
        }
        let me = a.pid().id;
        if me == target.id {
            return;
        }
        let receipts = a
            .account()
            .charge(ENTRY_COST)
            .and_then(|mine| Ok((mine, a.account().charge(ENTRY_COST)?)));
        let (mine, theirs) = match receipts {
            Ok(receipts) => receipts,
            Err(refused) => {
                a.kill(ExitReason::Limit(refused.to_string()));
                return;
            }
        };
        // Its side first, as for a monitor: a target that ends from here on removes it.
        a.add_link(target.id, mine);
        let linked = self
            .table
            .find(target)
            .is_some_and(|b| b.add_link(me, theirs));
        if !linked {
            a.remove_link(target.id);
            self.link_broken(a, target, &ExitReason::NoProcess);
        }
    }

    /// Links `a` and a process of another node, through the cluster; a node that is down, or
    /// outside the cluster, breaks the link at once.
    fn link_remote(&self, a: &Process, target: &Pid) {
        let broken = match &self.cluster {
            Some(cluster) => match cluster.link(a, target) {
                Linked::Held => return,
                Linked::Refused(why) => {
                    a.kill(ExitReason::Limit(why));
                    return;
                }
                Linked::BrokenNow(reason) => reason,
            },
            None => match &target.node {
                Some(node) => ExitReason::NoConnection(node.to_string()),
                None => ExitReason::NoProcess,
            },
        };
        self.link_broken(a, target, &broken);
    }

    /// The process `to` of this node hears that `from`, a process of another node linked to
    /// it, ended abnormally (or its node was lost).
    pub(in crate::runtime) fn link_broken_by(&self, to: &Pid, from: &Pid, reason: &ExitReason) {
        if let Some(survivor) = self.table.find(to) {
            self.link_broken(&survivor, from, reason);
        }
    }

    pub(in crate::runtime) fn unlink(&self, a: &Process, target: &Pid) {
        if target.node.as_ref() != self.node_id() {
            if let Some(cluster) = &self.cluster {
                cluster.unlink(a, target);
            }
            return;
        }
        a.remove_link(target.id);
        if let Some(b) = self.table.find(target) {
            b.remove_link(a.pid().id);
        }
    }

    /// Tells `survivor` that a linked process ended abnormally: an event if it traps
    /// links, else it ends too.
    pub(super) fn link_broken(&self, survivor: &Process, from: &Pid, reason: &ExitReason) {
        if survivor.traps_links() {
            let event = Event::LinkDown {
                from: from.clone(),
                reason: reason.clone(),
            };
            self.deliver(survivor, event, Some(survivor));
        } else {
            survivor.kill(ExitReason::LinkDown(from.clone()));
        }
    }
}
