//! The process table: every live process by id, the ids handed out (never reused), and the
//! pool slots a spawn reserves, so a full pool refuses the spawn instead of failing the
//! child later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::process::Process;

pub(super) struct ProcessTable {
    processes: Mutex<HashMap<u64, Arc<Process>>>,
    next_id: AtomicU64,
    slots: Arc<Slots>,
}

/// Instances alive in the engine's pool, against its size.
struct Slots {
    used: AtomicU32,
    capacity: u32,
}

/// One reserved pool slot, released when dropped: after the process's instance is torn
/// down, which is after its exit is reported.
pub(super) struct PoolSlot(Arc<Slots>);

impl Drop for PoolSlot {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ProcessTable {
    pub fn new(capacity: u32) -> Self {
        ProcessTable {
            processes: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            slots: Arc::new(Slots {
                used: AtomicU32::new(0),
                capacity,
            }),
        }
    }

    fn processes(&self) -> MutexGuard<'_, HashMap<u64, Arc<Process>>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot in the pool, if one is free beyond the `kept` last ones.
    pub fn reserve_slot(&self, kept: u32) -> Option<PoolSlot> {
        let slots = &self.slots;
        let usable = slots.capacity.saturating_sub(kept);
        slots
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < usable).then_some(used + 1)
            })
            .ok()
            .map(|_| PoolSlot(slots.clone()))
    }

    pub fn capacity(&self) -> u32 {
        self.slots.capacity
    }

    /// A fresh process id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn insert(&self, process: Arc<Process>) {
        self.processes().insert(process.pid().id, process);
    }

    pub fn get(&self, id: u64) -> Option<Arc<Process>> {
        self.processes().get(&id).cloned()
    }

    /// The live process `pid` names: its id and its host must both match, so a pid made up
    /// with another host does not reach the process that has its id.
    pub fn find(&self, pid: &super::Pid) -> Option<Arc<Process>> {
        self.get(pid.id).filter(|p| p.pid() == pid)
    }

    pub fn remove(&self, id: u64) {
        self.processes().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.processes().len()
    }

    /// Every live process, at one moment.
    pub fn all(&self) -> Vec<Arc<Process>> {
        self.processes().values().cloned().collect()
    }
}
