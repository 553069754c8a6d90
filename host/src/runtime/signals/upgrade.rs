//! Hot upgrade, Erlang's code change for a running node: an entry's program is replaced by
//! one of its new component (new spawns and wake-ups use it at once), and each live process
//! of the entry moves to it keeping its pid, names, links, monitors and mailbox. A running
//! process is asked to hand over (`Event::Upgrade`): it hibernates with its state, and an
//! instance of the new component is made at once with it (`engine/run.rs`). A hibernated
//! one has nothing to do: it wakes into the new component. One process at a time, services
//! first in their supervision order: if a new instance fails before it first receives, that
//! process goes back to the old component with the same state, and so do the entry and every
//! process moved before it: the upgrade is rolled back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::app::{Diagnostics, ProcessEntry};
use crate::runtime::engine::Program;
use crate::runtime::node::{Node, Pending, Step};
use crate::runtime::process::Process;
use wasmhost_types::{Event, ExitReason, Pid};

/// How one process went through an upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// It handed over, and its instance of the new component received.
    HandedOver,
    /// It handed over; its new instance had not received within the grace period.
    Started,
    /// It hibernates: it wakes into the new component.
    Hibernated,
    /// It did not hand over within the grace period and was killed (a supervisor starts the
    /// new component in its place).
    Killed,
    /// It ended before it handed over.
    Ended,
    /// Its new instance failed before it received, with this reason: it went back to the
    /// old component, and the upgrade was rolled back.
    Failed(ExitReason),
    /// It had moved, and went back when the upgrade was rolled back.
    MovedBack,
}

/// What an upgrade did: the component it loaded, and process by process, in order (a process that woke from hibernation
/// into the new component and failed comes where its failure was heard).
#[derive(Debug, Clone)]
pub struct UpgradeReport {
    pub entry: String,
    /// The new component's `sha256:…`, of the bytes compiled.
    pub component: String,
    pub processes: Vec<(Pid, Moved)>,
    /// Whether it was rolled back: the entry runs its old component.
    pub rolled_back: bool,
}

/// Why an upgrade did not start.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("no process entry `{0}` runs on this node")]
    UnknownEntry(String),
    #[error(
        "{entry}: its `{field}` changed, and an upgrade changes only the component \
         (`source`, `hash`)\n  hint: restart the node to change the rest"
    )]
    Changed { entry: String, field: &'static str },
    #[error("{0}")]
    Invalid(Diagnostics),
    #[error("{0}")]
    Failed(String),
}

/// The first setting of `new` besides its component that differs from `old`.
fn changed_beyond_component(old: &ProcessEntry, new: &ProcessEntry) -> Option<&'static str> {
    let modules = |entry: &ProcessEntry| -> Vec<String> {
        entry.modules.iter().map(|m| m.name.clone()).collect()
    };
    if old.method != new.method {
        Some("method")
    } else if modules(old) != modules(new) {
        Some("modules")
    } else if old.limits != new.limits {
        Some("limits")
    } else if old.names != new.names {
        Some("names")
    } else if old.authority != new.authority {
        Some("authority")
    } else {
        None
    }
}

impl Node {
    /// Upgrades `entry` (the registry's entry as it is now) to its component: compiled and
    /// checked as at the node's start (a pinned `hash` included), then each live process of
    /// it moved, those in `first` (its services, in supervision order) first. A process has
    /// `grace` to hand over, and its new instance as long again to receive.
    pub async fn upgrade(
        self: &Arc<Self>,
        entry: ProcessEntry,
        first: &[Pid],
        grace: Duration,
    ) -> Result<UpgradeReport, UpgradeError> {
        let _turn = self.upgrades.turn().await;
        let Some(old) = self.program(&entry.id) else {
            return Err(UpgradeError::UnknownEntry(entry.id));
        };
        if let Some(field) = changed_beyond_component(&old.entry, &entry) {
            return Err(UpgradeError::Changed {
                entry: entry.id,
                field,
            });
        }
        let node = self.clone();
        let id = entry.id.clone();
        // Compiling takes seconds, on rayon's threads: not on the node's.
        let (new, component) = tokio::task::spawn_blocking(move || node.compile(&entry))
            .await
            .map_err(|err| UpgradeError::Failed(format!("{id}: compiling failed: {err}")))?
            .map_err(UpgradeError::Invalid)?;
        let new = Arc::new(new);
        // Before the swap: a process that wakes into `new` from here on is on trial.
        let (woken, mut woken_failed) = unbounded_channel();
        self.upgrades.begin(old.clone(), new.clone(), woken);
        if !self.replace_program(&old, new.clone()) {
            self.upgrades.end();
            return Err(UpgradeError::Failed(format!(
                "{id} changed during the upgrade"
            )));
        }
        let mut processes: Vec<Arc<Process>> = first
            .iter()
            .filter_map(|pid| self.table.find(pid))
            .filter(|p| p.entry() == id)
            .collect();
        let mut rest: Vec<Arc<Process>> = self
            .table
            .all()
            .into_iter()
            .filter(|p| p.entry() == id && !first.contains(p.pid()))
            .collect();
        rest.sort_by_key(|p| p.pid().id);
        processes.extend(rest);

        let mut report = UpgradeReport {
            entry: id,
            component,
            processes: Vec::new(),
            rolled_back: false,
        };
        for process in processes {
            let moved = self.move_to(&process, &new, grace).await;
            let mut failed = matches!(moved, Moved::Failed(_));
            report.processes.push((process.pid().clone(), moved));
            // A hibernated process that woke into the new component meanwhile, and failed.
            while let Ok(step) = woken_failed.try_recv() {
                if let Step::Failed(pid, reason) = step {
                    report.processes.retain(|(p, _)| *p != pid);
                    report.processes.push((pid, Moved::Failed(reason)));
                    failed = true;
                }
            }
            if failed {
                self.roll_back(&mut report, &new, &old, grace).await;
                break;
            }
        }
        self.upgrades.end();
        Ok(report)
    }

    /// The entry back to `old`, and each process that had moved to `new` with it.
    async fn roll_back(
        &self,
        report: &mut UpgradeReport,
        new: &Arc<Program>,
        old: &Arc<Program>,
        grace: Duration,
    ) {
        report.rolled_back = true;
        self.replace_program(new, old.clone());
        for (pid, moved) in &mut report.processes {
            if !matches!(moved, Moved::HandedOver | Moved::Started) {
                continue;
            }
            if let Some(process) = self.table.find(pid) {
                *moved = match self.move_to(&process, old, grace).await {
                    Moved::HandedOver | Moved::Started => Moved::MovedBack,
                    other => other,
                };
            }
        }
    }

    /// Moves `process` to `program`: asks it to hand over and follows its runner's steps.
    async fn move_to(&self, process: &Process, program: &Arc<Program>, grace: Duration) -> Moved {
        if process.hibernated().is_some() {
            return Moved::Hibernated;
        }
        let id = process.pid().id;
        let (steps, mut heard) = unbounded_channel();
        let pending = Pending {
            program: program.clone(),
            steps,
        };
        self.upgrades.ask(id, pending);
        // Hibernated meanwhile (unless its runner took the request as it did): it wakes into
        // the program its entry has by then.
        if process.hibernated().is_some() && self.upgrades.take(id).is_some() {
            return Moved::Hibernated;
        }
        // Ended meanwhile: the exit protocol looked before it was asked.
        if !self.is_alive(process.pid()) {
            drop(self.upgrades.take(id));
            return Moved::Ended;
        }
        self.deliver(process, Event::Upgrade, None);
        match tokio::time::timeout(grace, heard.recv()).await {
            Ok(Some(Step::HandedOver)) => {}
            Ok(Some(_)) | Ok(None) => return Moved::Ended,
            Err(_) => {
                if self.upgrades.take(id).is_some() {
                    process.kill(ExitReason::Killed(format!(
                        "upgrade: did not hand over within {}",
                        humantime::format_duration(grace)
                    )));
                    return Moved::Killed;
                }
                // Its runner (or its exit) took the request just now.
                if !matches!(heard.recv().await, Some(Step::HandedOver)) {
                    return Moved::Ended;
                }
            }
        }
        trial_of(&mut heard, grace).await
    }
}

/// How the instance a process handed over to did: received, failed first, or neither yet.
async fn trial_of(heard: &mut UnboundedReceiver<Step>, grace: Duration) -> Moved {
    match tokio::time::timeout(grace, heard.recv()).await {
        Ok(Some(Step::Failed(_, reason))) => Moved::Failed(reason),
        Ok(Some(_)) => Moved::HandedOver,
        Ok(None) => Moved::Ended,
        Err(_) => Moved::Started,
    }
}
