//! Upgrades under way: which processes the node has asked to hand over to a new component
//! (`signals/upgrade.rs` asks), and what each one's runner reports back as it goes: handed
//! over, its new instance receiving, or failed before that (then it goes back).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

use crate::runtime::engine::Program;
use wasmhost_types::{ExitReason, Pid};

/// What the runner of a process being upgraded reports.
#[derive(Debug)]
pub enum Step {
    /// It hibernated: its state goes to an instance of the new component, made at once.
    HandedOver,
    /// That instance received its first message or event (or ended without failing): the
    /// process has moved to the new component.
    Receiving,
    /// That instance (of this process) failed before it received: the process went back to
    /// the old component with the same state.
    Failed(Pid, ExitReason),
}

/// A process asked to hand over to `program`.
pub(in crate::runtime) struct Pending {
    pub program: Arc<Program>,
    pub steps: UnboundedSender<Step>,
}

/// The new instance of a process that handed over, until it first receives: the program to
/// go back to if it fails first.
pub(in crate::runtime) struct Trial {
    pub old: Arc<Program>,
    pub steps: UnboundedSender<Step>,
}

/// The processes asked to hand over, by id, and the upgrade under way. Empty but while an
/// upgrade runs: every hibernation, wake-up and exit looks here, through one atomic load.
#[derive(Default)]
pub(in crate::runtime) struct Upgrades {
    pending: Mutex<HashMap<u64, Pending>>,
    count: AtomicUsize,
    under_way: Mutex<Option<UnderWay>>,
    /// Held by the upgrade under way: one at a time, so two never ask one process.
    one_at_a_time: tokio::sync::Mutex<()>,
}

/// An upgrade under way: a hibernated process of its entry that wakes meanwhile wakes into
/// `new` on trial, as one that handed over does, its failure heard on `woken`.
struct UnderWay {
    new: Arc<Program>,
    old: Arc<Program>,
    woken: UnboundedSender<Step>,
}

impl Upgrades {
    /// Waits for the upgrade under way, if any, to end; the next holds this.
    pub async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.one_at_a_time.lock().await
    }
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An upgrade from `old` to `new` is under way, until `end`; the trials of processes that
    /// wake into `new` meanwhile report to `woken`.
    pub fn begin(&self, old: Arc<Program>, new: Arc<Program>, woken: UnboundedSender<Step>) {
        *self.under_way() = Some(UnderWay { new, old, woken });
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    pub fn end(&self) {
        if self.under_way().take().is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The trial of a process that wakes into `program` now, if an upgrade to it is under way.
    pub fn trial_on_waking(&self, program: &Arc<Program>) -> Option<Trial> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let under_way = self.under_way();
        let under_way = under_way
            .as_ref()
            .filter(|u| Arc::ptr_eq(&u.new, program))?;
        Some(Trial {
            old: under_way.old.clone(),
            steps: under_way.woken.clone(),
        })
    }

    fn under_way(&self) -> std::sync::MutexGuard<'_, Option<UnderWay>> {
        self.under_way.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the process `id` to hand over: its next hibernation goes to `pending.program`.
    pub fn ask(&self, id: u64, pending: Pending) {
        let mut map = self.locked();
        if map.insert(id, pending).is_none() {
            self.count.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The upgrade the process `id` was asked for, taken: by its runner when it hibernates,
    /// by the exit protocol when it ends (its steps end with it), by the upgrade when it
    /// gives up waiting.
    pub fn take(&self, id: u64) -> Option<Pending> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let taken = self.locked().remove(&id);
        if taken.is_some() {
            self.count.fetch_sub(1, Ordering::AcqRel);
        }
        taken
    }
}
