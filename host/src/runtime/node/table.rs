//! The process table: every live process by id, the ids handed out (never reused), and the
//! pool a spawn reserves its place in (`pool.rs`), so a full pool refuses the spawn instead
//! of failing the child later. The table is sharded (a `DashMap`): a send looks its receiver
//! up under one shard's read lock, so senders on different threads do not queue behind one
//! node-wide lock, nor behind spawns and exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::runtime::engine::{Full, Pool, Reserved, Share};
use crate::runtime::process::Process;

pub(in crate::runtime) struct ProcessTable {
    processes: DashMap<u64, Arc<Process>>,
    next_id: AtomicU64,
    pool: Arc<Pool>,
}

impl ProcessTable {
    pub fn new(capacity: u32) -> Self {
        ProcessTable {
            processes: DashMap::new(),
            next_id: AtomicU64::new(1),
            pool: Pool::new(capacity),
        }
    }

    /// A place in the pool for a process of `share`, if it fits beyond the last `kept`
    /// processes' worth; else what is full.
    pub fn reserve(&self, share: Share, kept: u32) -> Result<Reserved, Full> {
        self.pool.reserve(share, kept)
    }

    /// How many processes wait for a place in the pool.
    pub fn waiting(&self) -> usize {
        self.pool.waiting()
    }

    /// A place in the pool for a process waking from hibernation, once one fits beyond the
    /// last `kept` processes' worth.
    pub async fn reserve_waiting(&self, share: Share, kept: u32) -> Reserved {
        self.pool.reserve_waiting(share, kept).await
    }

    /// A fresh process id.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn insert(&self, process: Arc<Process>) {
        self.processes.insert(process.pid().id, process);
    }

    pub fn get(&self, id: u64) -> Option<Arc<Process>> {
        self.processes.get(&id).map(|p| p.value().clone())
    }

    /// The live process `pid` names: its id and its host must both match, so a pid made up
    /// with another host does not reach the process that has its id.
    pub fn find(&self, pid: &wasmhost_types::Pid) -> Option<Arc<Process>> {
        self.get(pid.id).filter(|p| p.pid() == pid)
    }

    pub fn remove(&self, id: u64) {
        self.processes.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Every live process, at one moment.
    pub fn all(&self) -> Vec<Arc<Process>> {
        self.processes.iter().map(|p| p.value().clone()).collect()
    }
}
