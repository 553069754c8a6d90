//! What links, monitors, names and children need, under one lock per process, and the one
//! place their rules live.
//!
//! A monitor or link lives on both sides (a target's `monitors` and its watcher's
//! `watching`; a link in both processes' `links`), so either one's exit finds and removes
//! the other side: nothing is left behind, and what a process watches is counted by the set
//! itself, which cannot drift. Every entry another process made here carries that process's
//! receipt, so whichever path removes the entry gives its bytes back. The signal layer
//! (`signals/`) decides when to call these; only this file touches the sets.

use std::collections::{HashMap, HashSet};

use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use wasmhost_types::ExitReason;

use super::ledger::Charge;
use super::process::Process;

#[derive(Default)]
pub(super) struct Control {
    /// Its monitors, links and names; boxed, and only once it has one: most processes have
    /// none, and a process at rest (a hibernated one) should cost little more than its pid.
    relations: Option<Box<Relations>>,
    trap_links: bool,
    /// Live children.
    children: u64,
    /// A cancel is pending (the first one wins).
    cancel_pending: bool,
    /// The pending cancel's grace timer, stopped when the process ends first.
    grace: Option<AbortHandle>,
    /// Set once: why the process must stop (terminate, cancel timeout, link down).
    pub(super) kill: Option<ExitReason>,
    /// Set once the process has ended; monitors and links added after see it.
    pub(super) exited: bool,
    /// Who hears of the exit besides monitors (a supervisor, `wasmhost run`).
    on_exit: Option<oneshot::Sender<ExitReason>>,
    /// While it hibernates: the size of its state.
    pub(super) hibernated: Option<u64>,
}

#[derive(Default)]
struct Relations {
    /// The processes monitoring this one, each with the receipt its watcher paid.
    monitors: HashMap<u64, Charge>,
    /// The processes this one monitors: their `monitors` to leave when it ends, and how many
    /// (its `events` limit counts them).
    watching: HashSet<u64>,
    /// The processes linked to this one, each with the receipt of whoever made the link.
    links: HashMap<u64, Charge>,
    /// Names this process holds.
    names: Vec<String>,
}

impl Control {
    /// Its relations, made at the first one.
    fn relations(&mut self) -> &mut Relations {
        self.relations.get_or_insert_with(Box::default)
    }

    /// Its relations, if it has any.
    fn existing(&self) -> Option<&Relations> {
        self.relations.as_deref()
    }
}

/// Why a process may not watch one more: the text of its broken `events` limit.
#[derive(Debug)]
pub(in crate::runtime) struct AtLimit(pub String);

/// Everything others must hear of when a process ends, taken from it at once.
pub(in crate::runtime) struct Ended {
    /// The processes that monitored it.
    pub monitors: Vec<u64>,
    /// The processes it monitored.
    pub watching: Vec<u64>,
    /// The processes linked to it.
    pub links: Vec<u64>,
    pub names: Vec<String>,
    pub on_exit: Option<oneshot::Sender<ExitReason>>,
}

impl Process {
    /// The watcher's side of a monitor of `target`, within its `events` limit. `Ok(false)`
    /// if it already watches it.
    pub(in crate::runtime) fn watch(&self, target: u64) -> Result<bool, AtLimit> {
        let mut control = self.control();
        if control
            .existing()
            .is_some_and(|r| r.watching.contains(&target))
        {
            return Ok(false);
        }
        self.may_watch_one_more(&control)?;
        control.relations().watching.insert(target);
        Ok(true)
    }

    /// Whether it watches fewer processes than its `events` limit.
    fn may_watch_one_more(&self, control: &Control) -> Result<(), AtLimit> {
        let limit = self.limits().events;
        let watching = control.existing().map_or(0, |r| r.watching.len());
        match watching as u64 >= limit {
            true => Err(AtLimit(format!(
                "events: {} monitors {limit} processes, its limit",
                self.pid()
            ))),
            false => Ok(()),
        }
    }

    /// Leaves the watcher's side; false if it did not watch `target`.
    pub(in crate::runtime) fn unwatch(&self, target: u64) -> bool {
        let mut control = self.control();
        control
            .relations
            .as_mut()
            .is_some_and(|r| r.watching.remove(&target))
    }

    /// The target's side of a monitor, paid by the watcher with `receipt`; false (and the
    /// receipt given back) if this process has ended.
    pub(in crate::runtime) fn add_watcher(&self, watcher: u64, receipt: Charge) -> bool {
        self.add_unless_ended(|relations| &mut relations.monitors, watcher, receipt)
    }

    pub(in crate::runtime) fn remove_watcher(&self, watcher: u64) {
        if let Some(relations) = self.control().relations.as_mut() {
            relations.monitors.remove(&watcher);
        }
    }

    /// This process's side of a link to `other`; false if it has ended.
    pub(in crate::runtime) fn add_link(&self, other: u64, receipt: Charge) -> bool {
        self.add_unless_ended(|relations| &mut relations.links, other, receipt)
    }

    /// Adds `id` with its receipt to one of its sets (an entry already there is kept);
    /// false if the process has ended.
    fn add_unless_ended(
        &self,
        set: fn(&mut Relations) -> &mut HashMap<u64, Charge>,
        id: u64,
        receipt: Charge,
    ) -> bool {
        let mut control = self.control();
        if control.exited {
            return false;
        }
        set(control.relations()).entry(id).or_insert(receipt);
        true
    }

    pub(in crate::runtime) fn remove_link(&self, other: u64) {
        if let Some(relations) = self.control().relations.as_mut() {
            relations.links.remove(&other);
        }
    }

    pub(in crate::runtime) fn set_trap_links(&self, enabled: bool) {
        self.control().trap_links = enabled;
    }

    pub(in crate::runtime) fn traps_links(&self) -> bool {
        self.control().trap_links
    }

    /// Counts one more live child, within its `children` limit and, if it will watch the
    /// child, its `events` limit. `Err` says which limit, as the spawn reports it.
    pub(in crate::runtime) fn add_child(&self, watched: bool) -> Result<(), String> {
        let mut control = self.control();
        let limits = self.limits();
        if control.children >= limits.children {
            return Err(format!(
                "children: {} already has {} live children, its limit",
                self.pid(),
                control.children
            ));
        }
        if watched {
            self.may_watch_one_more(&control)
                .map_err(|AtLimit(message)| message)?;
        }
        control.children += 1;
        Ok(())
    }

    /// A child ended, or its spawn failed after `add_child`.
    pub(in crate::runtime) fn child_gone(&self) {
        let mut control = self.control();
        control.children = control.children.saturating_sub(1);
    }

    /// A child `add_child` counted, watched by this process: both sides at once, before the
    /// child is in the table, so no one else sees one side only.
    pub(in crate::runtime) fn watch_child(&self, child: &Process, receipt: Charge) {
        child
            .control()
            .relations()
            .monitors
            .insert(self.pid().id, receipt);
        self.control().relations().watching.insert(child.pid().id);
    }

    /// A child linked to this process, as `watch_child`.
    pub(in crate::runtime) fn link_child(&self, child: &Process, (mine, theirs): (Charge, Charge)) {
        child
            .control()
            .relations()
            .links
            .insert(self.pid().id, theirs);
        self.control()
            .relations()
            .links
            .insert(child.pid().id, mine);
    }

    /// How many names it holds.
    pub(in crate::runtime) fn names_held(&self) -> u64 {
        self.control()
            .existing()
            .map_or(0, |r| r.names.len() as u64)
    }

    /// The first name it holds, if any.
    pub(in crate::runtime) fn a_name_held(&self) -> Option<String> {
        self.control()
            .existing()
            .and_then(|r| r.names.first().cloned())
    }

    pub(in crate::runtime) fn hold_name(&self, name: &str) {
        self.control().relations().names.push(name.to_string());
    }

    pub(in crate::runtime) fn drop_name(&self, name: &str) {
        if let Some(relations) = self.control().relations.as_mut() {
            relations.names.retain(|n| n != name);
        }
    }

    /// Who hears of its exit besides monitors.
    pub(in crate::runtime) fn on_exit(&self, to: oneshot::Sender<ExitReason>) {
        self.control().on_exit = Some(to);
    }

    /// Marks a cancel pending. `None` if the process has ended, `Some(false)` if an earlier
    /// cancel is pending (the first one wins), `Some(true)` if this one is the first.
    pub(in crate::runtime) fn start_cancel(&self) -> Option<bool> {
        let mut control = self.control();
        if control.exited {
            return None;
        }
        Some(!std::mem::replace(&mut control.cancel_pending, true))
    }

    /// Keeps the pending cancel's grace timer, to stop it if the process ends first; a
    /// process that has already ended stops it now.
    pub(in crate::runtime) fn keep_grace_timer(&self, timer: AbortHandle) {
        let mut control = self.control();
        if control.exited {
            timer.abort();
        } else {
            control.grace = Some(timer);
        }
    }

    /// Marks the process ended and takes what the others must hear of; the grace timer of
    /// a pending cancel is stopped. Monitors and links added from here on see it ended.
    pub(in crate::runtime) fn end(&self) -> Ended {
        let mut control = self.control();
        control.exited = true;
        if let Some(grace) = control.grace.take() {
            grace.abort();
        }
        let relations = control.relations.take().map(|r| *r).unwrap_or_default();
        Ended {
            monitors: relations.monitors.into_keys().collect(),
            watching: relations.watching.into_iter().collect(),
            links: relations.links.into_keys().collect(),
            names: relations.names,
            on_exit: control.on_exit.take(),
        }
    }

    /// The ids it watches (for tests of the bookkeeping).
    #[cfg(test)]
    pub(in crate::runtime) fn watched(&self) -> Vec<u64> {
        let control = self.control();
        control
            .existing()
            .map(|r| r.watching.iter().copied().collect())
            .unwrap_or_default()
    }

    /// How many watch it (for tests of the bookkeeping).
    #[cfg(test)]
    pub(in crate::runtime) fn watchers(&self) -> usize {
        self.control().existing().map_or(0, |r| r.monitors.len())
    }
}
