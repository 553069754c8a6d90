//! Monitors (one-way: the watcher hears of the exit) and links (two-way: an abnormal exit
//! takes the other down, unless it traps links), as in Erlang, and the delivery of the
//! events they produce within the receiver's `events` limit.
//!
//! Each entry lives on both sides (a target's `monitors` and its watcher's `watching`; a
//! link in both processes' `links`), so either one's exit finds and removes the other side:
//! nothing is left behind, and what a process watches is counted by the set itself, which
//! cannot drift. Each entry carries the receipt of the process that made it (`ledger.rs`).

use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::ledger::{Charged, OVERHEAD};
use super::node::Node;
use super::process::Process;
use super::{Event, ExitReason, Pid};

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
    };
    let data = match event {
        Event::Exit { from, reason: r } | Event::LinkDown { from, reason: r } => {
            from.host.len() + reason(r)
        }
        Event::Cancel { reason } => reason.len(),
    };
    OVERHEAD + data as u64
}

impl Node {
    /// Puts `event` in `to`'s event stream, paid for by `payer` (the node if `None`): what a
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
    pub(super) fn monitor(&self, watcher: &Process, target: &Pid) {
        let me = watcher.pid().id;
        {
            let mut control = watcher.control();
            if control.watching.contains(&target.id) {
                return;
            }
            let limit = watcher.limits().events;
            if control.watching.len() as u64 >= limit {
                drop(control);
                watcher.kill(ExitReason::Limit(format!(
                    "events: {} monitors {limit} processes, its limit",
                    watcher.pid()
                )));
                return;
            }
            // Its side first: a target that ends from here on finds it and removes it.
            control.watching.insert(target.id);
        }
        let receipt = match watcher.account().charge(ENTRY_COST) {
            Ok(receipt) => receipt,
            Err(refused) => {
                watcher.control().watching.remove(&target.id);
                watcher.kill(ExitReason::Limit(refused.to_string()));
                return;
            }
        };
        let added = self.table.find(target).is_some_and(|t| {
            let mut control = t.control();
            if control.exited {
                return false;
            }
            if let Entry::Vacant(entry) = control.monitors.entry(me) {
                entry.insert(receipt);
            }
            true
        });
        if !added {
            watcher.control().watching.remove(&target.id);
            let event = Event::Exit {
                from: target.clone(),
                reason: ExitReason::NoProcess,
            };
            self.deliver(watcher, event, Some(watcher));
        }
    }

    pub(super) fn unmonitor(&self, watcher: &Process, target: &Pid) {
        if !watcher.control().watching.remove(&target.id) {
            return;
        }
        if let Some(t) = self.table.get(target.id) {
            t.control().monitors.remove(&watcher.pid().id);
        }
    }

    /// Links `a` and `target`. Linking to a process that is gone counts as its abnormal
    /// exit.
    pub(super) fn link(&self, a: &Arc<Process>, target: &Pid) {
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
        a.control().links.entry(target.id).or_insert(mine);
        let linked = self.table.find(target).is_some_and(|b| {
            let mut control = b.control();
            if !control.exited {
                control.links.entry(me).or_insert(theirs);
            }
            !control.exited
        });
        if !linked {
            a.control().links.remove(&target.id);
            self.link_broken(a, target, &ExitReason::NoProcess);
        }
    }

    pub(super) fn unlink(&self, a: &Process, target: &Pid) {
        a.control().links.remove(&target.id);
        if let Some(b) = self.table.find(target) {
            b.control().links.remove(&a.pid().id);
        }
    }

    /// Tells `survivor` that a linked process ended abnormally: an event if it traps
    /// links, else it ends too.
    pub(super) fn link_broken(&self, survivor: &Process, from: &Pid, reason: &ExitReason) {
        let traps = survivor.control().trap_links;
        if traps {
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
