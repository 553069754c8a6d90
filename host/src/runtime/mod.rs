//! The process runtime: the node that owns every process, and what happens on spawn,
//! send, monitor, link, register and exit. Host interfaces call into it; it knows nothing
//! of WIT or YAML.

mod engine;
mod exit;
mod pid;
mod process;
mod programs;
mod queue;
mod run;
mod state;
mod stderr;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

pub use engine::{EPOCH_TICK, EngineLimits};
pub use exit::{Event, ExitReason};
pub use pid::Pid;
pub use process::{Limits, Message, Process};
pub use programs::{Program, compile_all};
pub use run::new_store;
pub use state::ProcessState;

use crate::app::{App, Diagnostics, LimitOverrides};
use crate::terminal::Terminal;

/// Node-wide defaults for limits that neither the entry nor its host sets.
pub fn default_limits(engine: &EngineLimits) -> Limits {
    Limits {
        memory: engine.max_memory,
        cpu: None,
        mailbox: 100_000,
        message_size: 8 << 20,
        children: 100_000,
    }
}

/// One wasmhost node: the compiled programs and every live process.
pub struct Node {
    pub engine: wasmtime::Engine,
    pub app: Arc<App>,
    programs: HashMap<String, Arc<Program>>,
    defaults: Limits,
    processes: Mutex<HashMap<u64, Arc<Process>>>,
    names: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    pub terminal: Arc<Terminal>,
}

/// Who else is told when a spawned process ends.
pub enum Watch {
    None,
    /// The parent monitors the child (`spawn-monitored`).
    Monitor,
    /// Parent and child are linked (`spawn-linked`).
    Link,
}

/// Why `spawn` refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    #[error("no process entry `{0}`")]
    UnknownEntry(String),
    #[error("no host `{0}`")]
    UnknownHost(String),
    #[error("limit: {0}")]
    Limit(String),
}

/// Why `send` refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no process is registered as `{0}`")]
    UnknownName(String),
    #[error("the payload is larger than the receiver's limit of {0} bytes")]
    TooLarge(u64),
    #[error("the mailbox of {0} is full")]
    MailboxFull(Pid),
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Pid(Pid),
    Name(String),
}

impl Node {
    /// Compiles the app's components (checking each against its entry) and returns a node
    /// ready to spawn. Nothing runs yet.
    pub fn new(
        app: App,
        terminal: Arc<Terminal>,
    ) -> anyhow::Result<Result<Arc<Node>, Diagnostics>> {
        let engine_limits = EngineLimits::default();
        let engine = engine::engine(&engine_limits)?;
        let programs = match programs::compile_all(&engine, &app) {
            Ok(programs) => programs,
            Err(problems) => return Ok(Err(problems)),
        };
        Ok(Ok(Arc::new(Node {
            engine,
            app: Arc::new(app),
            programs,
            defaults: default_limits(&engine_limits),
            processes: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            terminal,
        })))
    }

    pub fn program(&self, entry: &str) -> Option<&Arc<Program>> {
        self.programs.get(entry)
    }

    fn processes(&self) -> MutexGuard<'_, HashMap<u64, Arc<Process>>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn names(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live process with this id.
    pub fn process(&self, id: u64) -> Option<Arc<Process>> {
        self.processes().get(&id).cloned()
    }

    /// How many processes are alive.
    pub fn process_count(&self) -> usize {
        self.processes().len()
    }

    fn limits_for(&self, program: &Program, host: &str) -> Limits {
        let host_limits = self
            .app
            .hosts
            .get(host)
            .map(|h| h.limits.clone())
            .unwrap_or_default();
        let set = program.entry.limits.or(&host_limits);
        let LimitOverrides {
            memory,
            cpu,
            mailbox,
            message_size,
            children,
        } = set;
        Limits {
            memory: memory
                .unwrap_or(self.defaults.memory)
                .min(self.defaults.memory),
            cpu: cpu.or(self.defaults.cpu),
            mailbox: mailbox.unwrap_or(self.defaults.mailbox),
            message_size: message_size.unwrap_or(self.defaults.message_size),
            children: children.unwrap_or(self.defaults.children),
        }
    }

    /// Starts `entry` on `host` with `args`. The child is registered before it runs, so a
    /// monitor or link set here cannot miss its exit. `on_exit` hears the exit reason too.
    pub fn spawn(
        self: &Arc<Self>,
        entry: &str,
        host: &str,
        args: Vec<Vec<u8>>,
        parent: Option<&Arc<Process>>,
        watch: Watch,
        on_exit: Option<oneshot::Sender<ExitReason>>,
    ) -> Result<Pid, SpawnError> {
        let program = self
            .programs
            .get(entry)
            .cloned()
            .ok_or_else(|| SpawnError::UnknownEntry(entry.to_string()))?;
        if !self.app.has_host(host) {
            return Err(SpawnError::UnknownHost(host.to_string()));
        }
        if let Some(parent) = parent {
            let mut control = parent.control();
            if control.children >= parent.limits.children {
                return Err(SpawnError::Limit(format!(
                    "children: {} already has {} live children, its limit",
                    parent.pid, control.children
                )));
            }
            control.children += 1;
        }

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.app.terminals.contains_key(host) && !self.terminal.bind(id) {
            if let Some(parent) = parent {
                let mut control = parent.control();
                control.children = control.children.saturating_sub(1);
            }
            return Err(SpawnError::Limit(format!(
                "terminal: {host} is already bound to another process"
            )));
        }
        let pid = Pid {
            host: Arc::from(host),
            id,
        };
        let limits = self.limits_for(&program, host);
        let process = Arc::new(Process::new(
            pid.clone(),
            Arc::from(entry),
            limits,
            parent.map(Arc::downgrade),
        ));
        {
            let mut control = process.control();
            control.on_exit = on_exit;
            if let Some(parent) = parent {
                match watch {
                    Watch::None => {}
                    Watch::Monitor => {
                        control.monitors.insert(parent.pid.id);
                    }
                    Watch::Link => {
                        control.links.insert(parent.pid.id);
                        parent.control().links.insert(id);
                    }
                }
            }
        }
        self.processes().insert(id, process.clone());
        tokio::spawn(run::run(self.clone(), program, process, args));
        Ok(pid)
    }

    /// Delivers a message. Sending to a pid that has exited drops the message (as in
    /// Erlang); sending to a name nobody holds is an error.
    pub fn send(
        &self,
        from: Option<&Pid>,
        to: Destination,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        let id = match &to {
            Destination::Pid(pid) => pid.id,
            Destination::Name(name) => *self
                .names()
                .get(name)
                .ok_or_else(|| SendError::UnknownName(name.clone()))?,
        };
        let Some(target) = self.process(id) else {
            return Ok(());
        };
        if payload.len() as u64 > target.limits.message_size {
            return Err(SendError::TooLarge(target.limits.message_size));
        }
        let message = Message {
            topic,
            from: from.cloned(),
            payload,
        };
        target
            .mailbox
            .push_within(message, target.limits.mailbox)
            .map_err(|_| SendError::MailboxFull(target.pid.clone()))
    }

    /// `watcher` monitors `target`; an exit already past is reported at once.
    pub fn monitor(&self, watcher: &Process, target: &Pid) {
        let alive = self.process(target.id).and_then(|t| {
            let mut control = t.control();
            (!control.exited).then(|| control.monitors.insert(watcher.pid.id))
        });
        if alive.is_none() {
            watcher.events.push(Event::Exit {
                from: target.clone(),
                reason: ExitReason::NoProcess,
            });
        }
    }

    pub fn unmonitor(&self, watcher: &Process, target: &Pid) {
        if let Some(t) = self.process(target.id) {
            t.control().monitors.remove(&watcher.pid.id);
        }
    }

    /// Links `a` and `b`. Linking to a process that is gone counts as its abnormal exit.
    pub fn link(&self, a: &Arc<Process>, target: &Pid) {
        if a.pid.id == target.id {
            return;
        }
        let linked = match self.process(target.id) {
            Some(b) => {
                let mut control = b.control();
                if !control.exited {
                    control.links.insert(a.pid.id);
                }
                !control.exited
            }
            None => false,
        };
        if linked {
            a.control().links.insert(target.id);
        } else {
            self.link_broken(a, target, &ExitReason::NoProcess);
        }
    }

    pub fn unlink(&self, a: &Process, target: &Pid) {
        a.control().links.remove(&target.id);
        if let Some(b) = self.process(target.id) {
            b.control().links.remove(&a.pid.id);
        }
    }

    /// Tells `survivor` that a linked process ended abnormally: an event if it traps
    /// links, else it ends too.
    fn link_broken(&self, survivor: &Process, from: &Pid, reason: &ExitReason) {
        let traps = survivor.control().trap_links;
        if traps {
            survivor.events.push(Event::LinkDown {
                from: from.clone(),
                reason: reason.clone(),
            });
        } else {
            survivor.kill(ExitReason::LinkDown(from.clone()));
        }
    }

    /// Ends `target` at once with `reason`. False if it had already ended.
    pub fn terminate(&self, target: &Pid, reason: ExitReason) -> bool {
        self.process(target.id).is_some_and(|t| t.kill(reason))
    }

    /// Asks `target` to stop: a cancel event now, a forced stop after `grace`.
    pub fn cancel(&self, target: &Pid, reason: String, grace: Duration) -> bool {
        let Some(process) = self.process(target.id) else {
            return false;
        };
        process.events.push(Event::Cancel(reason.clone()));
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            process.kill(ExitReason::Cancelled(reason));
        });
        true
    }

    /// Registers `name` for `process`. Err with the holder if another process has it.
    pub fn register(&self, process: &Process, name: &str) -> Result<(), Pid> {
        let mut names = self.names();
        match names.get(name) {
            Some(&holder) if holder != process.pid.id => {
                let holder = self.process(holder).map(|p| p.pid.clone());
                // A holder that is gone but not yet cleaned up does not block the name.
                if let Some(holder) = holder {
                    return Err(holder);
                }
            }
            Some(_) => return Ok(()),
            None => {}
        }
        names.insert(name.to_string(), process.pid.id);
        process.control().names.push(name.to_string());
        Ok(())
    }

    pub fn lookup(&self, name: &str) -> Option<Pid> {
        let id = *self.names().get(name)?;
        self.process(id).map(|p| p.pid.clone())
    }

    pub fn unregister(&self, process: &Process, name: &str) -> bool {
        let mut names = self.names();
        if names.get(name) != Some(&process.pid.id) {
            return false;
        }
        names.remove(name);
        process.control().names.retain(|n| n != name);
        true
    }

    /// Everything that happens when a process ends: it leaves the table, its names are
    /// freed, its monitors hear why, and its links follow it if the exit was abnormal.
    fn exited(&self, process: &Process, reason: ExitReason) {
        let (monitors, links, names, on_exit) = {
            let mut control = process.control();
            control.exited = true;
            (
                std::mem::take(&mut control.monitors),
                std::mem::take(&mut control.links),
                std::mem::take(&mut control.names),
                control.on_exit.take(),
            )
        };
        self.processes().remove(&process.pid.id);
        self.terminal.unbind(process.pid.id);
        {
            let mut table = self.names();
            for name in names {
                if table.get(&name) == Some(&process.pid.id) {
                    table.remove(&name);
                }
            }
        }
        if let Some(parent) = process.parent.as_ref().and_then(|p| p.upgrade()) {
            let mut control = parent.control();
            control.children = control.children.saturating_sub(1);
        }
        for id in monitors {
            if let Some(watcher) = self.process(id) {
                watcher.events.push(Event::Exit {
                    from: process.pid.clone(),
                    reason: reason.clone(),
                });
            }
        }
        for id in links {
            if let Some(linked) = self.process(id) {
                linked.control().links.remove(&process.pid.id);
                if !reason.is_normal() {
                    self.link_broken(&linked, &process.pid, &reason);
                }
            }
        }
        if let Some(on_exit) = on_exit {
            let _ = on_exit.send(reason);
        }
    }
}
