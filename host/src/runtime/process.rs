//! A process as the rest of the node sees it: its pid, mailbox, events, links and monitors.
//! The guest's own state (its store) lives only in the task that runs it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use tokio::sync::{Notify, oneshot};

use super::authority::{Lineage, Privileges};
use super::cpu::CpuMeter;
use super::limits::Limits;
use super::mailbox::Mailbox;
use super::programs::Program;
use super::queue::Queue;
use super::{Event, ExitReason, Pid};

/// The shared half of a process.
pub struct Process {
    pid: Pid,
    entry: Arc<str>,
    privileges: Arc<Privileges>,
    limits: Limits,
    lineage: Arc<Lineage>,
    mailbox: Mailbox,
    events: Queue<Event>,
    cpu: Arc<CpuMeter>,
    /// Bytes of linear memory and tables it holds, kept by its store's limiter (the one
    /// writer) and read by `ps`.
    memory: AtomicU64,
    control: Mutex<Control>,
    /// Wakes the runner when `kill` is set.
    killed: Notify,
    /// The parent, for counting its live children.
    parent: Option<Weak<Process>>,
}

/// What links, monitors, names and children need; guarded by one lock per process.
#[derive(Default)]
pub(super) struct Control {
    /// Ids of the processes monitoring this one.
    pub monitors: HashSet<u64>,
    /// Ids of the processes linked to this one.
    pub links: HashSet<u64>,
    pub trap_links: bool,
    /// Names this process holds.
    pub names: Vec<String>,
    /// Live children.
    pub children: u64,
    /// Processes this one monitors.
    pub monitoring: u64,
    /// A cancel is pending (the first one wins).
    pub cancel_pending: bool,
    /// Set once: why the process must stop (terminate, cancel timeout, link down).
    pub kill: Option<ExitReason>,
    /// Set once the process has ended; monitors and links added after see it.
    pub exited: bool,
    /// Who hears of the exit besides monitors (a supervisor, `wasmhost run`).
    pub on_exit: Option<oneshot::Sender<ExitReason>>,
}

impl Process {
    pub(super) fn new(
        pid: Pid,
        (entry, privileges): (Arc<str>, Arc<Privileges>),
        limits: Limits,
        parent: Option<&Arc<Process>>,
    ) -> Self {
        let lineage = match parent {
            Some(parent) => Lineage::child_of(&parent.lineage, pid.id),
            None => Lineage::root(pid.id),
        };
        Process {
            pid,
            entry,
            privileges,
            limits,
            lineage,
            mailbox: Mailbox::default(),
            events: Queue::default(),
            cpu: Arc::new(CpuMeter::default()),
            memory: AtomicU64::new(0),
            control: Mutex::new(Control::default()),
            killed: Notify::new(),
            parent: parent.map(Arc::downgrade),
        }
    }

    /// A process in no node's table, for timing the engine alone (the benchmark does).
    pub fn detached(pid: Pid, program: &Program, limits: Limits) -> Self {
        Process::new(pid, program.identity(), limits, None)
    }

    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The `process.wasm` entry it runs.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    pub(super) fn privileges(&self) -> &Privileges {
        &self.privileges
    }

    pub(super) fn lineage(&self) -> &Arc<Lineage> {
        &self.lineage
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Its messages, oldest first.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }

    /// The time it has spent running.
    pub fn cpu(&self) -> &Arc<CpuMeter> {
        &self.cpu
    }

    /// Bytes of linear memory and tables it holds.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    pub(super) fn set_memory(&self, bytes: u64) {
        self.memory.store(bytes, Ordering::Relaxed);
    }

    /// When it was spawned (its CPU meter starts with it).
    pub fn started(&self) -> Instant {
        self.cpu.started()
    }

    /// Its lifecycle events, oldest first.
    pub fn events(&self) -> &Queue<Event> {
        &self.events
    }

    pub(super) fn parent(&self) -> Option<Arc<Process>> {
        self.parent.as_ref().and_then(Weak::upgrade)
    }

    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Orders the process to stop with `reason` (the first order wins). Returns false if it
    /// had already ended.
    pub(super) fn kill(&self, reason: ExitReason) -> bool {
        {
            let mut control = self.control();
            if control.exited {
                return false;
            }
            control.kill.get_or_insert(reason);
        }
        self.killed.notify_one();
        true
    }

    /// Resolves with the kill reason once `kill` has been called.
    pub(super) async fn killed(&self) -> ExitReason {
        loop {
            if let Some(reason) = self.control().kill.clone() {
                return reason;
            }
            self.killed.notified().await;
        }
    }
}
