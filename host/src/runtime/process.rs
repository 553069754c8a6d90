//! A process as the rest of the node sees it: its pid, mailbox, events, links and
//! monitors. The guest's own state (its store) lives only in the task that runs it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use super::exit::{Event, ExitReason};
use super::pid::Pid;
use super::queue::Queue;

/// A message in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub from: Option<Pid>,
    pub payload: Vec<u8>,
}

/// Limits in force for one process, resolved from entry, host and node defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub memory: u64,
    pub cpu: Option<Duration>,
    pub mailbox: u64,
    pub message_size: u64,
    pub children: u64,
}

/// The shared half of a process.
pub struct Process {
    pub pid: Pid,
    pub entry: Arc<str>,
    pub limits: Limits,
    pub mailbox: Queue<Message>,
    pub events: Queue<Event>,
    control: Mutex<Control>,
    /// Wakes the runner when `kill` is set.
    killed: Notify,
    /// The parent, for counting its live children.
    pub parent: Option<Weak<Process>>,
}

/// What links, monitors and names need; guarded by one lock.
#[derive(Default)]
pub struct Control {
    /// Ids of the processes monitoring this one.
    pub monitors: HashSet<u64>,
    /// Ids of the processes linked to this one.
    pub links: HashSet<u64>,
    pub trap_links: bool,
    /// Names this process holds.
    pub names: Vec<String>,
    pub children: u64,
    /// Set once: why the process must stop (terminate, cancel timeout, link down).
    pub kill: Option<ExitReason>,
    /// Set once the process has ended; monitors and links added after see it.
    pub exited: bool,
    /// Who hears of the exit besides monitors (a supervisor, `wasmhost run`).
    pub on_exit: Option<oneshot::Sender<ExitReason>>,
}

impl Process {
    pub fn new(pid: Pid, entry: Arc<str>, limits: Limits, parent: Option<Weak<Process>>) -> Self {
        Process {
            pid,
            entry,
            limits,
            mailbox: Queue::default(),
            events: Queue::default(),
            control: Mutex::new(Control::default()),
            killed: Notify::new(),
            parent,
        }
    }

    pub fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Orders the process to stop with `reason` (the first order wins). Returns false if
    /// it had already ended.
    pub fn kill(&self, reason: ExitReason) -> bool {
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
    pub async fn killed(&self) -> ExitReason {
        loop {
            if let Some(reason) = self.control().kill.clone() {
                return reason;
            }
            self.killed.notified().await;
        }
    }
}
