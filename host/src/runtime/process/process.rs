//! A process as the rest of the node sees it: its pid, mailbox, events, links and monitors.
//! The guest's own state (its store) lives only in the task that runs it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Poll, Waker};
use std::time::Instant;

use super::authority::{Lineage, Privileges};
use super::control::Control;
use super::cpu::CpuMeter;
use super::ledger::{Account, Charged, NodeLedger};
use super::mailbox::Mailbox;
use super::queue::{Queue, Readiness};
use crate::app::Limits;
use wasmhost_types::{Event, ExitReason, Pid};

/// The shared half of a process.
pub struct Process {
    pid: Pid,
    entry: Arc<str>,
    privileges: Arc<Privileges>,
    /// Shared by the processes of its entry on its host.
    limits: Arc<Limits>,
    lineage: Arc<Lineage>,
    /// The service it runs as, or the one its parent runs as or descends from: its log
    /// lines say so.
    service: Option<Arc<str>>,
    /// What the host holds on its behalf, against its `host_memory`.
    account: Arc<Account>,
    mailbox: Mailbox,
    events: Queue<Charged<Event>>,
    cpu: Arc<CpuMeter>,
    /// Bytes of linear memory and tables it holds, kept by its store's limiter (the one
    /// writer) and read by `ps`.
    memory: AtomicU64,
    control: Mutex<Control>,
    /// Set (after `Control::kill`) when the process must stop; wakes its runner, the one
    /// task that waits for it.
    kill_requested: AtomicBool,
    killed: Readiness,
    /// The parent, for counting its live children.
    parent: Option<Weak<Process>>,
}

impl Process {
    pub(in crate::runtime) fn new(
        pid: Pid,
        (entry, privileges): (Arc<str>, Arc<Privileges>),
        limits: Arc<Limits>,
        (parent, service): (Option<&Arc<Process>>, Option<Arc<str>>),
        ledger: &Arc<NodeLedger>,
    ) -> Self {
        let service = service.or_else(|| parent.and_then(|parent| parent.service.clone()));
        let lineage = match parent {
            Some(parent) => Lineage::child_of(&parent.lineage, pid.id),
            None => Lineage::root(pid.id),
        };
        Process {
            pid,
            entry,
            privileges,
            lineage,
            service,
            account: Account::new(limits.host_memory, ledger),
            limits,
            mailbox: Mailbox::default(),
            events: Queue::default(),
            cpu: Arc::new(CpuMeter::default()),
            memory: AtomicU64::new(0),
            control: Mutex::new(Control::default()),
            kill_requested: AtomicBool::new(false),
            killed: Readiness::default(),
            parent: parent.map(Arc::downgrade),
        }
    }

    /// A process in no node's table, for timing the engine alone (the benchmark does).
    pub fn detached(pid: Pid, identity: (Arc<str>, Arc<Privileges>), limits: Limits) -> Self {
        let budget = limits.memory.saturating_add(limits.host_memory);
        Process::new(
            pid,
            identity,
            Arc::new(limits),
            (None, None),
            &NodeLedger::new(budget),
        )
    }

    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The service it runs as or descends from, if any.
    pub fn service(&self) -> Option<&str> {
        self.service.as_deref()
    }

    /// The `process.wasm` entry it runs.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    pub(in crate::runtime) fn privileges(&self) -> &Privileges {
        &self.privileges
    }

    pub(in crate::runtime) fn lineage(&self) -> &Arc<Lineage> {
        &self.lineage
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What the host holds on its behalf.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
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

    pub(in crate::runtime) fn set_memory(&self, bytes: u64) {
        self.memory.store(bytes, Ordering::Relaxed);
    }

    /// When it was spawned (its CPU meter starts with it).
    pub fn started(&self) -> Instant {
        self.cpu.started()
    }

    /// Its lifecycle events, oldest first, each with the receipt of whoever pays for it.
    pub fn events(&self) -> &Queue<Charged<Event>> {
        &self.events
    }

    /// Whether another process spawned it (the node spawns services and the terminal's entry).
    pub(in crate::runtime) fn has_parent(&self) -> bool {
        self.parent.is_some()
    }

    pub(in crate::runtime) fn parent(&self) -> Option<Arc<Process>> {
        self.parent.as_ref().and_then(Weak::upgrade)
    }

    pub(super) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Orders the process to stop with `reason` (the first order wins). Returns false if it
    /// had already ended.
    pub(in crate::runtime) fn kill(&self, reason: ExitReason) -> bool {
        {
            let mut control = self.control();
            if control.exited {
                return false;
            }
            control.kill.get_or_insert(reason);
        }
        self.kill_requested.store(true, Ordering::Release);
        self.killed.notify();
        true
    }

    /// The size of its state while it hibernates; `None` while an instance runs it.
    pub fn hibernated(&self) -> Option<u64> {
        self.control().hibernated
    }

    pub(in crate::runtime) fn set_hibernated(&self, state: Option<u64>) {
        self.control().hibernated = state;
    }

    /// Resolves with the kill reason once `kill` has been called. One waiter at a time (the
    /// process's runner).
    pub(in crate::runtime) async fn killed(&self) -> ExitReason {
        std::future::poll_fn(|cx| self.poll_killed(cx.waker())).await
    }

    /// Drops the wakers its kill signal, mailbox and events hold (a hibernated process's).
    pub(in crate::runtime) fn forget_wakers(&self) {
        self.killed.forget();
        self.mailbox.forget_waker();
        self.events.forget_waker();
    }

    /// The kill reason if `kill` has been called; else `waker` is woken when it is.
    pub(in crate::runtime) fn poll_killed(&self, waker: &Waker) -> Poll<ExitReason> {
        let requested = || self.kill_requested.load(Ordering::Acquire);
        match self.killed.poll_ready(waker, requested) {
            Poll::Pending => Poll::Pending,
            // Set before the flag, so it is there.
            Poll::Ready(()) => Poll::Ready(
                self.control()
                    .kill
                    .clone()
                    .unwrap_or_else(|| ExitReason::Killed(String::new())),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_runs_as_its_service_and_its_children_descend_from_it() {
        let limits = Arc::new(crate::runtime::NodeConfig::default().default_limits());
        let ledger = NodeLedger::new(1 << 30);
        let identity = || (Arc::from("app:e"), Arc::default());
        let new = |id, parent, service: Option<&str>| {
            let service = service.map(Arc::from);
            Arc::new(Process::new(
                Pid::new("app:h", id),
                identity(),
                limits.clone(),
                (parent, service),
                &ledger,
            ))
        };
        let service = new(1, None, Some("app:relay-service"));
        let child = new(2, Some(&service), None);
        let grandchild = new(3, Some(&child), None);
        let alone = new(4, None, None);
        assert_eq!(service.service(), Some("app:relay-service"));
        assert_eq!(child.service(), Some("app:relay-service"));
        assert_eq!(grandchild.service(), Some("app:relay-service"));
        assert_eq!(alone.service(), None);
    }
}
