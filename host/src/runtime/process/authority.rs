//! Authority: what one process may do to another. The rule is that a process affects only
//! itself, the processes it spawned (its descendants) and what its registry entry grants
//! (`authority`, `names`), and never gains authority by spawning: it may spawn only entries
//! granted no more than its own (modules, reserved names, authority), unless its entry's
//! `authority.spawn` names them. SECURITY.md explains the model; this file decides.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::process::Process;
use crate::app::{Authority, ProcessEntry};
use wasmhost_types::{Denied, ExitReason, SpawnError};

/// What an entry's processes are granted.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    modules: BTreeSet<String>,
    names: BTreeSet<String>,
    authority: Authority,
}

impl Privileges {
    /// Whether its `authority.signal` reaches every entry (`any`).
    pub fn signals_every_entry(&self) -> bool {
        self.authority.signal == crate::app::Scope::Any
    }
    pub fn of(entry: &ProcessEntry) -> Self {
        Privileges {
            modules: entry.modules.iter().map(|m| m.name.clone()).collect(),
            names: entry.names.iter().cloned().collect(),
            authority: entry.authority.clone(),
        }
    }

    /// What `other` is granted that `self` is not, if anything.
    fn excess(&self, other: &Privileges) -> Option<String> {
        if let Some(module) = other.modules.difference(&self.modules).next() {
            return Some(format!("it is granted the module `{module}`"));
        }
        if let Some(name) = other.names.difference(&self.names).next() {
            return Some(format!("it reserves the name `{name}`"));
        }
        if !self.authority.signal.includes(&other.authority.signal) {
            return Some("its `authority.signal` reaches further".into());
        }
        if !self.authority.spawn.includes(&other.authority.spawn) {
            return Some("its `authority.spawn` reaches further".into());
        }
        if !self.authority.hosts.includes(&other.authority.hosts) {
            return Some("its `authority.hosts` reaches further".into());
        }
        None
    }
}

/// Where a process stands in the spawn tree: its id, whether it is still alive, and its
/// nearest ancestor that was alive when last looked at. Shared by a process's descendants,
/// so authority over grandchildren outlives a child that ended.
///
/// Only live ancestors matter (an ended process acts on no one), so a walk up the tree
/// skips ended ones and shortens the path it took (union-find's path compression): a
/// "relay race" — each process spawns its successor and ends — keeps a chain of two, not
/// one as long as the race, and a check walks at most the live ancestors.
#[derive(Debug)]
pub struct Lineage {
    id: u64,
    alive: AtomicBool,
    parent: Mutex<Option<Arc<Lineage>>>,
}

impl Lineage {
    /// A process started by the node itself (a service, `wasmhost run`).
    pub fn root(id: u64) -> Arc<Lineage> {
        Arc::new(Lineage {
            id,
            alive: AtomicBool::new(true),
            parent: Mutex::new(None),
        })
    }

    /// A process spawned by the process of `parent`.
    pub fn child_of(parent: &Arc<Lineage>, id: u64) -> Arc<Lineage> {
        Arc::new(Lineage {
            id,
            alive: AtomicBool::new(true),
            parent: Mutex::new(Some(parent.clone())),
        })
    }

    /// Its process ended.
    pub fn ended(&self) {
        self.alive.store(false, Ordering::Release);
    }

    fn parent_link(&self) -> std::sync::MutexGuard<'_, Option<Arc<Lineage>>> {
        self.parent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nearest ancestor still alive; ended ones on the way are cut out of the path.
    fn live_parent(&self) -> Option<Arc<Lineage>> {
        let mut at = self.parent_link().clone();
        let mut skipped = false;
        while let Some(lineage) = at.take_if(|l| !l.alive.load(Ordering::Acquire)) {
            at = lineage.parent_link().clone();
            skipped = true;
        }
        if skipped {
            *self.parent_link() = at.clone();
        }
        at
    }

    /// The ids of its live ancestors, nearest first.
    pub fn ancestors(&self) -> impl Iterator<Item = u64> {
        std::iter::successors(self.live_parent(), |l| l.live_parent()).map(|l| l.id)
    }

    /// Whether the live process `ancestor` spawned this one, or spawned its parent, and so
    /// on.
    pub fn descends_from(&self, ancestor: u64) -> bool {
        self.ancestors().any(|id| id == ancestor)
    }
}

/// A chain of spawns can be as long as a guest makes it: it is unlinked in a loop, not by
/// the recursion dropping nested `Arc`s would do.
impl Drop for Lineage {
    fn drop(&mut self) {
        let mut parent = self.parent_link().take();
        while let Some(lineage) = parent {
            parent = match Arc::try_unwrap(lineage) {
                Ok(only) => only.parent_link().take(),
                Err(_) => None,
            };
        }
    }
}

/// Whether `caller` may terminate, cancel, link or unlink `target`: itself, its
/// descendants, and what its entry's `authority.signal` covers.
pub fn may_signal(caller: &Process, target: &Process) -> Result<(), Denied> {
    if reaches(caller, target) {
        return Ok(());
    }
    Err(Denied(format!(
        "{} is not a descendant of {}: {} may act only on itself and the processes it spawned (the registry can allow more with `authority.signal`)",
        target.pid(),
        caller.pid(),
        caller.entry()
    )))
}

fn reaches(caller: &Process, target: &Process) -> bool {
    caller.pid().id == target.pid().id
        || caller.privileges().authority.signal.covers(target.entry())
        || target.lineage().descends_from(caller.pid().id)
}

/// Who reaches a process that ended, worked out once for all its monitors: its live
/// ancestors are looked up once, not once per monitor.
pub struct Reach<'a> {
    target: &'a Process,
    ancestors: std::cell::OnceCell<Vec<u64>>,
}

impl<'a> Reach<'a> {
    pub fn of(target: &'a Process) -> Self {
        Reach {
            target,
            ancestors: std::cell::OnceCell::new(),
        }
    }

    fn reaches(&self, watcher: &Process) -> bool {
        let id = watcher.pid().id;
        if id == self.target.pid().id
            || watcher
                .privileges()
                .authority
                .signal
                .covers(self.target.entry())
        {
            return true;
        }
        // Most often the parent, which needs no list.
        if self.ancestors.get().is_none() && self.target.lineage().ancestors().next() == Some(id) {
            return true;
        }
        let ancestors = self.ancestors.get_or_init(|| {
            let mut ids: Vec<u64> = self.target.lineage().ancestors().collect();
            ids.sort_unstable();
            ids
        });
        ancestors.binary_search(&id).is_ok()
    }

    /// What `watcher` learns of the exit: all of it if it reaches the process as
    /// [`may_signal`] does; otherwise only its kind, since an exit value or message can be
    /// private.
    pub fn reason_for(&self, watcher: &Process, reason: &ExitReason) -> ExitReason {
        if self.reaches(watcher) {
            return reason.clone();
        }
        reduced(reason)
    }
}

/// An exit reason as a process that does not reach the one that ended learns it: its kind,
/// without the value or message, which can be private.
pub fn reduced(reason: &ExitReason) -> ExitReason {
    match reason {
        ExitReason::Normal(_) => ExitReason::Normal(vec![0xf6]),
        ExitReason::Error(_) => ExitReason::Error(String::new()),
        ExitReason::Trap(_) => ExitReason::Trap(String::new()),
        ExitReason::Limit(_) => ExitReason::Limit(String::new()),
        ExitReason::Killed(_) => ExitReason::Killed(String::new()),
        ExitReason::Cancelled(_) => ExitReason::Cancelled(String::new()),
        ExitReason::LinkDown(pid) => ExitReason::LinkDown(pid.clone()),
        ExitReason::NoProcess => ExitReason::NoProcess,
        // Which node was lost is the cluster's, not the process's.
        ExitReason::NoConnection(node) => ExitReason::NoConnection(node.clone()),
    }
}

/// Whether `parent` may spawn the entry `id`, granted `privileges`, on `host`: never on a terminal host (only
/// `wasmhost run` binds a process to the terminal), on a host other than its own only if its
/// `authority.hosts` names it, and only an entry granted no more than its own unless its
/// `authority.spawn` names it.
pub fn may_spawn(
    parent: &Process,
    child: (&str, &Privileges),
    host: &str,
    terminal: bool,
) -> Result<(), SpawnError> {
    let caller = Caller {
        entry: parent.entry(),
        host: &parent.pid().host,
        privileges: parent.privileges(),
    };
    may_spawn_as(caller, child, host, terminal)
}

/// Who asks for a spawn: a process of this node, or of another node of the cluster (every
/// node runs the same registry, so its entry's privileges are known here).
pub struct Caller<'a> {
    pub entry: &'a str,
    pub host: &'a str,
    pub privileges: &'a Privileges,
}

/// [`may_spawn`] for a caller known by its entry and host.
pub fn may_spawn_as(
    parent: Caller<'_>,
    (id, privileges): (&str, &Privileges),
    host: &str,
    terminal: bool,
) -> Result<(), SpawnError> {
    if terminal {
        return Err(SpawnError::Denied(format!(
            "{host} is a terminal host: only `wasmhost run` binds a process to the terminal"
        )));
    }
    if parent.host != host && !parent.privileges.authority.hosts.covers(host) {
        return Err(SpawnError::Denied(format!(
            "{} runs on {} and may not spawn on {host} (the registry can allow it with `authority.hosts`)",
            parent.entry, parent.host
        )));
    }
    if parent.privileges.authority.spawn.covers(id) {
        return Ok(());
    }
    match parent.privileges.excess(privileges) {
        None => Ok(()),
        Some(excess) => Err(SpawnError::Denied(format!(
            "{} may not spawn {}: {excess}, which {} is not (the registry can allow it with `authority.spawn`)",
            parent.entry, id, parent.entry
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Scope;

    #[test]
    fn a_long_lineage_is_searched_and_dropped_without_recursion() {
        let mut lineage = Lineage::root(1);
        for id in 2..=200_000 {
            lineage = Lineage::child_of(&lineage, id);
        }
        assert!(lineage.descends_from(1));
        assert!(lineage.descends_from(199_999));
        assert!(!lineage.descends_from(200_000), "not its own descendant");
        assert!(!lineage.descends_from(300_000));
        drop(lineage);
    }

    #[test]
    fn a_relay_race_keeps_a_short_chain() {
        // Each process spawns its successor and ends; the first stays.
        let first = Lineage::root(1);
        let mut last = Lineage::child_of(&first, 2);
        for id in 3..=100_000 {
            let next = Lineage::child_of(&last, id);
            last.ended();
            // The successor checks its authority now and then, as a racer would.
            if id % 10 == 0 {
                assert!(next.descends_from(1));
            }
            last = next;
        }
        assert!(last.descends_from(1), "the first's authority holds");
        assert_eq!(last.ancestors().collect::<Vec<_>>(), vec![1]);
        // What is left of the chain: the last, its live ancestors and at most the racers
        // ended since the last check.
        let mut kept = 0;
        let mut at = last.parent_link().clone();
        while let Some(lineage) = at {
            kept += 1;
            at = lineage.parent_link().clone();
        }
        assert!(kept <= 12, "{kept} lineages kept");
    }

    #[test]
    fn scopes_compare_by_reach() {
        let entries = |e: &[&str]| Scope::Entries(e.iter().map(|s| s.to_string()).collect());
        assert!(Scope::Any.includes(&entries(&["a"])));
        assert!(entries(&["a", "b"]).includes(&entries(&["a"])));
        assert!(!entries(&["a"]).includes(&entries(&["a", "b"])));
        assert!(!entries(&["a"]).includes(&Scope::Any));
        assert!(Scope::Own.includes(&Scope::Own));
    }
}
