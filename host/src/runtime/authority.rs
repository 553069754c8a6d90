//! Authority: what one process may do to another. The rule is that a process affects only
//! itself, the processes it spawned (its descendants) and what its registry entry grants
//! (`authority`, `names`), and never gains authority by spawning: it may spawn only entries
//! granted no more than its own (modules, reserved names, authority), unless its entry's
//! `authority.spawn` names them. SECURITY.md explains the model; this file decides.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::process::Process;
use super::programs::Program;
use super::{Denied, ExitReason, SpawnError};
use crate::app::{Authority, ProcessEntry};

/// What an entry's processes are granted.
#[derive(Debug, Clone, Default)]
pub struct Privileges {
    modules: BTreeSet<String>,
    names: BTreeSet<String>,
    authority: Authority,
}

impl Privileges {
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
        None
    }
}

/// Where a process stands in the spawn tree: its id, and its parent's lineage. Shared by
/// a process's descendants, so it outlives the processes it names.
#[derive(Debug)]
pub struct Lineage {
    id: u64,
    parent: Option<Arc<Lineage>>,
}

impl Lineage {
    /// A process started by the node itself (a service, `wasmhost run`).
    pub fn root(id: u64) -> Arc<Lineage> {
        Arc::new(Lineage { id, parent: None })
    }

    /// A process spawned by the process of `parent`.
    pub fn child_of(parent: &Arc<Lineage>, id: u64) -> Arc<Lineage> {
        Arc::new(Lineage {
            id,
            parent: Some(parent.clone()),
        })
    }

    /// Whether the process `ancestor` spawned this one, or spawned its parent, and so on.
    pub fn descends_from(&self, ancestor: u64) -> bool {
        let mut at = self.parent.as_deref();
        while let Some(lineage) = at {
            if lineage.id == ancestor {
                return true;
            }
            at = lineage.parent.as_deref();
        }
        false
    }
}

/// A chain of spawns can be as long as a guest makes it: it is unlinked in a loop, not by
/// the recursion dropping nested `Arc`s would do.
impl Drop for Lineage {
    fn drop(&mut self) {
        let mut parent = self.parent.take();
        while let Some(lineage) = parent {
            parent = match Arc::try_unwrap(lineage) {
                Ok(mut only) => only.parent.take(),
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
        || target.lineage().descends_from(caller.pid().id)
        || caller.privileges().authority.signal.covers(target.entry())
}

/// What `watcher` learns of `target`'s exit: all of it if it reaches `target` as
/// [`may_signal`] does; otherwise only its kind, since an exit value or message can be
/// private.
pub fn reason_for(watcher: &Process, target: &Process, reason: &ExitReason) -> ExitReason {
    if reaches(watcher, target) {
        return reason.clone();
    }
    match reason {
        ExitReason::Normal(_) => ExitReason::Normal(vec![0xf6]),
        ExitReason::Error(_) => ExitReason::Error(String::new()),
        ExitReason::Trap(_) => ExitReason::Trap(String::new()),
        ExitReason::Limit(_) => ExitReason::Limit(String::new()),
        ExitReason::Killed(_) => ExitReason::Killed(String::new()),
        ExitReason::Cancelled(_) => ExitReason::Cancelled(String::new()),
        ExitReason::LinkDown(pid) => ExitReason::LinkDown(pid.clone()),
        ExitReason::NoProcess => ExitReason::NoProcess,
    }
}

/// Whether `parent` may spawn `program` on `host`: never on a terminal host (only
/// `wasmhost run` binds a process to the terminal), and only an entry granted no more than
/// its own unless its `authority.spawn` names it.
pub fn may_spawn(
    parent: &Process,
    program: &Program,
    host: &str,
    terminal: bool,
) -> Result<(), SpawnError> {
    if terminal {
        return Err(SpawnError::Denied(format!(
            "{host} is a terminal host: only `wasmhost run` binds a process to the terminal"
        )));
    }
    if parent.privileges().authority.spawn.covers(&program.id) {
        return Ok(());
    }
    match parent.privileges().excess(&program.privileges) {
        None => Ok(()),
        Some(excess) => Err(SpawnError::Denied(format!(
            "{} may not spawn {}: {excess}, which {} is not (the registry can allow it with `authority.spawn`)",
            parent.entry(),
            program.id,
            parent.entry()
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
    fn scopes_compare_by_reach() {
        let entries = |e: &[&str]| Scope::Entries(e.iter().map(|s| s.to_string()).collect());
        assert!(Scope::Any.includes(&entries(&["a"])));
        assert!(entries(&["a", "b"]).includes(&entries(&["a"])));
        assert!(!entries(&["a"]).includes(&entries(&["a", "b"])));
        assert!(!entries(&["a"]).includes(&Scope::Any));
        assert!(Scope::Own.includes(&Scope::Own));
    }
}
