//! The exit protocol: everything that happens when a process ends, however it ends.

use super::authority::reason_for;
use super::node::Node;
use super::process::Process;
use super::{Event, ExitReason};

impl Node {
    /// A process ended with `reason`: it leaves the table, its names and the terminal are
    /// freed, its parent counts one child less, its monitors hear why (as much of it as each
    /// may know), and its links follow it if the exit was abnormal.
    pub(super) fn exited(&self, process: &Process, reason: ExitReason) {
        let id = process.pid().id;
        let (monitors, links, names, on_exit) = {
            let mut control = process.control();
            control.exited = true;
            (
                std::mem::take(&mut control.monitors),
                std::mem::take(&mut control.links),
                std::mem::take(&mut control.names),
                control.on_exit.take(),
            )
        };
        self.table.remove(id);
        self.terminal.unbind(id);
        self.release_names(id, names);
        if let Some(parent) = process.parent() {
            let mut control = parent.control();
            control.children = control.children.saturating_sub(1);
        }
        for watcher in monitors.into_iter().filter_map(|id| self.table.get(id)) {
            {
                let mut control = watcher.control();
                control.monitoring = control.monitoring.saturating_sub(1);
            }
            let event = Event::Exit {
                from: process.pid().clone(),
                reason: reason_for(&watcher, process, &reason),
            };
            self.deliver(&watcher, event);
        }
        for linked in links.into_iter().filter_map(|id| self.table.get(id)) {
            linked.control().links.remove(&id);
            if !reason.is_normal() {
                self.link_broken(&linked, process.pid(), &reason);
            }
        }
        if let Some(on_exit) = on_exit {
            let _ = on_exit.send(reason);
        }
    }
}
