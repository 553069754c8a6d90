//! Monitors (one-way: the watcher hears of the exit) and links (two-way: an abnormal exit
//! takes the other down, unless it traps links), as in Erlang, and the delivery of the
//! events they produce within the receiver's `events` limit.

use std::sync::Arc;

use super::node::Node;
use super::process::Process;
use super::{Event, ExitReason, Pid};

impl Node {
    /// Puts `event` in `to`'s event stream. A process whose stream is full has watched more
    /// than it reads: it is ended, as for any broken limit.
    pub(super) fn deliver(&self, to: &Process, event: Event) {
        let limit = to.limits().events;
        if to.events().push_within(event, limit).is_err() {
            to.kill(ExitReason::Limit(format!(
                "events: {limit} events are waiting, its limit"
            )));
        }
    }

    /// `watcher` monitors `target`; an exit already past is reported at once.
    pub(super) fn monitor(&self, watcher: &Process, target: &Pid) {
        let limit = watcher.limits().events;
        if watcher.control().monitoring >= limit {
            watcher.kill(ExitReason::Limit(format!(
                "events: {} monitors {limit} processes, its limit",
                watcher.pid()
            )));
            return;
        }
        let added = self.table.find(target).and_then(|t| {
            let mut control = t.control();
            (!control.exited).then(|| control.monitors.insert(watcher.pid().id))
        });
        match added {
            Some(true) => watcher.control().monitoring += 1,
            Some(false) => {}
            None => self.deliver(
                watcher,
                Event::Exit {
                    from: target.clone(),
                    reason: ExitReason::NoProcess,
                },
            ),
        }
    }

    pub(super) fn unmonitor(&self, watcher: &Process, target: &Pid) {
        let removed = self
            .table
            .get(target.id)
            .is_some_and(|t| t.control().monitors.remove(&watcher.pid().id));
        if removed {
            let mut control = watcher.control();
            control.monitoring = control.monitoring.saturating_sub(1);
        }
    }

    /// Links `a` and `target`. Linking to a process that is gone counts as its abnormal
    /// exit.
    pub(super) fn link(&self, a: &Arc<Process>, target: &Pid) {
        if a.pid().id == target.id {
            return;
        }
        let linked = self.table.find(target).is_some_and(|b| {
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
            self.deliver(survivor, event);
        } else {
            survivor.kill(ExitReason::LinkDown(from.clone()));
        }
    }
}
