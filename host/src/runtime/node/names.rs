//! Registered names: node-wide, one holder each, released when the holder exits. Sharded
//! like the process table, so a send by name takes one shard's read lock. On a node of a
//! cluster a name is also claimed cluster-wide (`cluster/names.rs`) before it is held here.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::watch;

use super::node::Node;
use crate::runtime::process::{Charge, OVERHEAD, Process};
use wasmhost_types::{Pid, RegisterError};

pub use crate::app::MAX_NAME_LEN;

/// Name → id of the holder (with its receipt for the entry), and a counter of
/// registrations that waiters watch.
pub(in crate::runtime) struct Names {
    held: DashMap<String, (u64, Charge)>,
    registered: watch::Sender<u64>,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            held: DashMap::new(),
            registered: watch::Sender::new(0),
        }
    }
}

impl Node {
    /// Registers `name` for `process`, across the cluster if the node is in one.
    /// Registering a name it holds already succeeds.
    pub(in crate::runtime) async fn register(
        &self,
        process: &Process,
        name: &str,
    ) -> Result<(), RegisterError> {
        let Some(cluster) = &self.cluster else {
            return self.register_here(process, name, false);
        };
        // What this node can refuse needs no round trip.
        self.register_here(process, name, true)?;
        if self.holder(name) == Some(process.pid().id) {
            return Ok(());
        }
        cluster
            .claim(name, process.pid(), |pid| self.is_alive(pid))
            .await?;
        let held = self.register_here(process, name, false);
        if held.is_err() {
            cluster.release(name, process.pid().id);
        }
        held
    }

    /// Registers `name` for `process` on this node; with `check_only`, only says whether it
    /// could.
    fn register_here(
        &self,
        process: &Process,
        name: &str,
        check_only: bool,
    ) -> Result<(), RegisterError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(RegisterError::Invalid(format!(
                "a name must be 1 to {MAX_NAME_LEN} bytes, not {}",
                name.len()
            )));
        }
        if let Some(entries) = self.reserved.get(name)
            && !entries.iter().any(|e| e == process.entry())
        {
            return Err(RegisterError::Reserved(entries.join(", ")));
        }
        let id = process.pid().id;
        // The name's shard stays locked from the check to the insert, so two processes
        // registering it at once cannot both get it.
        let entry = self.names.held.entry(name.to_string());
        let held = process.names_held();
        if let Entry::Occupied(holder) = &entry {
            if holder.get().0 == id {
                return Ok(());
            }
            // A holder that is gone but not yet cleaned up does not block the name.
            if let Some(holder) = self.table.get(holder.get().0) {
                return Err(RegisterError::Taken(holder.pid().clone()));
            }
        }
        if held >= process.limits().names {
            return Err(RegisterError::Limit(format!(
                "names: {} already holds {held} names, its limit",
                process.pid()
            )));
        }
        if check_only {
            return Ok(());
        }
        let receipt = process
            .account()
            .charge(OVERHEAD + name.len() as u64 * 2)
            .map_err(|refused| RegisterError::Limit(refused.to_string()))?;
        match entry {
            Entry::Occupied(mut holder) => {
                holder.insert((id, receipt));
            }
            Entry::Vacant(vacant) => {
                vacant.insert((id, receipt));
            }
        }
        process.hold_name(name);
        self.names.registered.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Resolves once `pid` holds every name in `names` (at once if it does already, or if
    /// `names` is empty): how a service shows it is ready.
    pub async fn registered(&self, pid: &Pid, names: &[String]) {
        let mut changes = self.names.registered.subscribe();
        loop {
            if names.iter().all(|n| self.lookup(n).as_ref() == Some(pid)) {
                return;
            }
            // The sender lives as long as the node, which `self` keeps.
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Resolves with a name `pid` holds, once it holds one (never if it is gone): how a
    /// service whose entry reserves no name is caught registering one after it was taken for
    /// ready.
    pub async fn first_name(&self, pid: &Pid) -> String {
        let mut changes = self.names.registered.subscribe();
        loop {
            if let Some(process) = self.table.get(pid.id)
                && process.pid() == pid
                && let Some(name) = process.a_name_held()
            {
                return name;
            }
            if changes.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// The live process registered as `name`: of this node, or of another node of its
    /// cluster.
    pub fn lookup(&self, name: &str) -> Option<Pid> {
        if let Some(id) = self.holder(name)
            && let Some(process) = self.table.get(id)
        {
            return Some(process.pid().clone());
        }
        self.cluster.as_ref()?.lookup(name)
    }

    /// The id of the holder of `name`, live or not yet cleaned up.
    pub(in crate::runtime) fn holder(&self, name: &str) -> Option<u64> {
        self.names.held.get(name).map(|held| held.0)
    }

    /// Releases `name` if `process` holds it.
    pub(super) fn unregister(&self, process: &Process, name: &str) -> bool {
        let id = process.pid().id;
        if self
            .names
            .held
            .remove_if(name, |_, (holder, _)| *holder == id)
            .is_none()
        {
            return false;
        }
        process.drop_name(name);
        if let Some(cluster) = &self.cluster {
            cluster.release(name, id);
        }
        true
    }

    /// Releases the names an exited process held.
    pub(in crate::runtime) fn release_names(&self, id: u64, held: Vec<String>) {
        for name in held {
            self.names
                .held
                .remove_if(&name, |_, (holder, _)| *holder == id);
            if let Some(cluster) = &self.cluster {
                cluster.release(&name, id);
            }
        }
    }
}
