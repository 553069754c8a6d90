//! Monitors (one-way: the watcher hears of the exit) and links (two-way: an abnormal exit
//! takes the other down, unless it traps links), as in Erlang.

use std::sync::Arc;

use super::node::Node;
use super::process::Process;
use super::{Event, ExitReason, Pid};

impl Node {
    /// `watcher` monitors `target`; an exit already past is reported at once.
    pub(super) fn monitor(&self, watcher: &Process, target: &Pid) {
        let alive = self.table.get(target.id).and_then(|t| {
            let mut control = t.control();
            (!control.exited).then(|| control.monitors.insert(watcher.pid().id))
        });
        if alive.is_none() {
            watcher.events().push(Event::Exit {
                from: target.clone(),
                reason: ExitReason::NoProcess,
            });
        }
    }

    pub(super) fn unmonitor(&self, watcher: &Process, target: &Pid) {
        if let Some(t) = self.table.get(target.id) {
            t.control().monitors.remove(&watcher.pid().id);
        }
    }

    /// Links `a` and `target`. Linking to a process that is gone counts as its abnormal
    /// exit.
    pub(super) fn link(&self, a: &Arc<Process>, target: &Pid) {
        if a.pid().id == target.id {
            return;
        }
        let linked = self.table.get(target.id).is_some_and(|b| {
            let mut control = b.control();
            if !control.exited {
                control.links.insert(a.pid().id);
            }
            !control.exited
        });
        if linked {
            a.control().links.insert(target.id);
        } else {
            self.link_broken(a, target, &ExitReason::NoProcess);
        }
    }

    pub(super) fn unlink(&self, a: &Process, target: &Pid) {
        a.control().links.remove(&target.id);
        if let Some(b) = self.table.get(target.id) {
            b.control().links.remove(&a.pid().id);
        }
    }

    /// Tells `survivor` that a linked process ended abnormally: an event if it traps
    /// links, else it ends too.
    pub(super) fn link_broken(&self, survivor: &Process, from: &Pid, reason: &ExitReason) {
        let traps = survivor.control().trap_links;
        if traps {
            survivor.events().push(Event::LinkDown {
                from: from.clone(),
                reason: reason.clone(),
            });
        } else {
            survivor.kill(ExitReason::LinkDown(from.clone()));
        }
    }
}
