//! Supervised services and supervisor trees. The node starts what no supervisor owns (the
//! app's `top`), each once what it `requires` is running:
//! - a service on its own (`backoff.rs`) is restarted with exponential backoff by its
//!   `lifecycle.restart`;
//! - a supervisor (`tree.rs`) starts its children in order, restarts them at once by its
//!   strategy within its restart intensity, and fails (escalating to its own supervisor, or
//!   ending `wasmhost run`) when they fail more often than that.
//!
//! - a unit placed on a list of nodes (`lifecycle.nodes`) runs on one of them at a time in
//!   a cluster, and another takes it over when that node is down (`failover.rs`).
//!
//! A service counts as running once it is ready (`service.rs`); everything stops in the
//! reverse of its start order. Each service and supervisor is a `Unit` whose state and
//! restarts anyone may watch (`wasmhost ps` shows them).

mod backoff;
mod failover;
mod service;
mod tree;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::App;
use crate::runtime::{Node, Pid};

/// Where a service or supervisor is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Spawned (or waiting for what it requires), not ready yet; a supervisor: starting its
    /// children.
    Starting,
    /// Waiting out its restart backoff (`lifecycle.restart`): it starts again at `at`.
    Restarting { at: Instant },
    /// Ready: its process has registered the names its entry reserves; a supervisor: all
    /// its children have started.
    Running,
    /// Its process returned normally and is not restarted.
    Exited,
    /// It will not run again by itself: it failed and is not restarted (gave up after
    /// `max_attempts`, a supervisor past its restart intensity, a temporary child), or what
    /// it requires failed. A supervisor's child in this state is about to be restarted.
    Failed(String),
    /// Placed on a list of nodes, and another node runs it (named, or "a node before this
    /// one" on the list that this one waits for): this node takes it over when that one is
    /// down.
    Standby(String),
    /// Cancelled on shutdown, within its `stop_timeout`.
    Stopping,
    /// Stopped on shutdown (or by its supervisor, to restart it or its siblings).
    Stopped,
}

impl State {
    /// Not settled yet: starting, or about to start again.
    pub fn is_starting(&self) -> bool {
        matches!(self, State::Starting | State::Restarting { .. })
    }

    pub fn name(&self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Restarting { .. } => "restarting",
            State::Running => "running",
            State::Exited => "exited",
            State::Failed(_) => "failed",
            State::Standby(_) => "standby",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
        }
    }
}

/// A service or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    Service,
    Supervisor,
}

/// One service or supervisor the node runs: its place in the tree and what it is doing.
pub struct Unit {
    pub id: String,
    pub kind: UnitKind,
    /// The supervisor that owns it; `None` at the top.
    pub parent: Option<String>,
    state: watch::Sender<State>,
    detail: Mutex<Detail>,
}

struct Detail {
    pid: Option<Pid>,
    restarts: u32,
    since: Instant,
}

/// What a unit is doing, at one moment (for `wasmhost ps`).
#[derive(Debug, Clone)]
pub struct UnitStatus {
    pub id: String,
    pub kind: UnitKind,
    pub parent: Option<String>,
    pub state: State,
    /// A service's current process, while it has one.
    pub pid: Option<Pid>,
    pub restarts: u32,
    /// How long it has been in `state`.
    pub for_: Duration,
}

impl Unit {
    fn new(id: &str, kind: UnitKind, parent: Option<&str>) -> Arc<Unit> {
        Arc::new(Unit {
            id: id.to_string(),
            kind,
            parent: parent.map(str::to_string),
            state: watch::channel(State::Starting).0,
            detail: Mutex::new(Detail {
                pid: None,
                restarts: 0,
                since: Instant::now(),
            }),
        })
    }

    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        // Nothing panics while holding it; a poisoned lock still holds sound data.
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, state: State) {
        let mut detail = self.detail();
        if !matches!(state, State::Running | State::Stopping) {
            detail.pid = None;
        }
        detail.since = Instant::now();
        self.state.send_replace(state);
    }

    fn spawned(&self, pid: Pid) {
        self.detail().pid = Some(pid);
    }

    fn restarted(&self) {
        self.detail().restarts += 1;
    }

    pub fn state(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    pub fn status(&self) -> UnitStatus {
        let detail = self.detail();
        UnitStatus {
            id: self.id.clone(),
            kind: self.kind,
            parent: self.parent.clone(),
            state: self.state.borrow().clone(),
            pid: detail.pid.clone(),
            restarts: detail.restarts,
            for_: detail.since.elapsed(),
        }
    }
}

/// The units started, top-level ones in start order with their tasks; `stop` ends them in
/// reverse.
pub struct Services {
    top: Vec<Running>,
    tree: Tree,
}

/// Every service and supervisor the node started, each supervisor before its children (in
/// their order): a handle that stays valid while they run, to see what they do.
#[derive(Clone)]
pub struct Tree(Arc<Vec<Arc<Unit>>>);

impl Tree {
    /// What each is doing now.
    pub fn units(&self) -> Vec<UnitStatus> {
        self.0.iter().map(|u| u.status()).collect()
    }
}

/// A top-level unit's task and the switch that stops it.
struct Running {
    unit: Arc<Unit>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Services {
    /// Starts every auto-start service and supervisor of the app (of those `placed` names,
    /// if it names some: a node of a cluster runs its share), each once what it requires is
    /// running.
    pub fn start(node: &Arc<Node>, placed: Option<&[String]>) -> Services {
        let app = node.app();
        let stands_for = match node.cluster() {
            Some(cluster) => placed_on(app, &cluster.node_id().name, placed),
            None => Vec::new(),
        };
        let mut units = Vec::new();
        let mut top: Vec<Running> = Vec::new();
        // `top` lists each unit after those it requires, so these are already here.
        for id in &app.top {
            if placed.is_some_and(|placed| !placed.contains(id)) {
                continue;
            }
            let (unit, requires, nodes) = if let Some(service) = app.service(id) {
                if !service.lifecycle.auto_start {
                    continue;
                }
                (
                    Unit::new(id, UnitKind::Service, None),
                    &service.lifecycle.requires,
                    &service.lifecycle.nodes,
                )
            } else if let Some(supervisor) = app.supervisors.get(id) {
                if !supervisor.auto_start {
                    continue;
                }
                (
                    Unit::new(id, UnitKind::Supervisor, None),
                    &supervisor.requires,
                    &supervisor.nodes,
                )
            } else {
                continue;
            };
            // Placed on other nodes of the cluster: not this one's to run.
            if node.cluster().is_some() && !nodes.is_empty() && !stands_for.contains(id) {
                continue;
            }
            let requires: Vec<_> = top
                .iter()
                .filter(|r| requires.contains(&r.unit.id))
                .map(|r| (r.unit.id.clone(), r.unit.state()))
                .collect();
            let (stop, stopped) = watch::channel(false);
            units.push(unit.clone());
            let start: failover::Start = match unit.kind {
                UnitKind::Service => {
                    let Some(service) = app.service(id) else {
                        continue;
                    };
                    let (node, service, unit) = (node.clone(), service.clone(), unit.clone());
                    Box::new(move |stopped| {
                        Box::pin(backoff::run(
                            node.clone(),
                            service.clone(),
                            unit.clone(),
                            requires.clone(),
                            stopped,
                        ))
                    })
                }
                UnitKind::Supervisor => {
                    let Some(entry) = app.supervisors.get(id) else {
                        continue;
                    };
                    let supervisor = tree::Supervisor::new(node, entry, unit.clone(), &mut units);
                    Box::new(move |stopped| {
                        Box::pin(supervisor.clone().run_at_top(requires.clone(), stopped))
                    })
                }
            };
            let task = match node.cluster() {
                Some(cluster) if !nodes.is_empty() => tokio::spawn(failover::run(
                    cluster.clone(),
                    unit.clone(),
                    nodes.to_vec(),
                    start,
                    stopped,
                )),
                _ => tokio::spawn(start(stopped)),
            };
            top.push(Running { unit, stop, task });
        }
        Services {
            top,
            tree: Tree(Arc::new(units)),
        }
    }

    /// Resolves once every auto-start service and supervisor is running (or has exited
    /// normally); an error names the first that failed for good, or that is stopping.
    pub async fn running(&self) -> Result<(), String> {
        for Running { unit, .. } in &self.top {
            let mut state = unit.state();
            let settled = state.wait_for(|s| !s.is_starting()).await;
            let what = match unit.kind {
                UnitKind::Service => "service",
                UnitKind::Supervisor => "supervisor",
            };
            match settled.as_deref() {
                Ok(State::Running | State::Exited | State::Standby(_)) => {}
                Ok(State::Failed(why)) => return Err(format!("{what} {} failed: {why}", unit.id)),
                Ok(_) | Err(_) => return Err(format!("{what} {} is stopping", unit.id)),
            }
        }
        Ok(())
    }

    /// Resolves when a top-level supervisor fails (its children failed more often than its
    /// restart intensity allows), with what it said; never if none does.
    pub async fn failed(&self) -> String {
        let watches = self
            .top
            .iter()
            .filter(|r| r.unit.kind == UnitKind::Supervisor)
            .map(|r| {
                let mut state = r.unit.state();
                let id = r.unit.id.clone();
                Box::pin(async move {
                    match state.wait_for(|s| matches!(s, State::Failed(_))).await {
                        Ok(failed) => match &*failed {
                            State::Failed(why) => format!("supervisor {id} failed: {why}"),
                            _ => format!("supervisor {id} failed"),
                        },
                        Err(_) => std::future::pending().await,
                    }
                })
            })
            .collect::<Vec<_>>();
        if watches.is_empty() {
            return std::future::pending().await;
        }
        futures::future::select_all(watches).await.0
    }

    /// The state of service or supervisor `id`, to watch.
    pub fn state(&self, id: &str) -> Option<watch::Receiver<State>> {
        self.tree.0.iter().find(|u| u.id == id).map(|u| u.state())
    }

    /// Every service and supervisor, each supervisor before its children.
    pub fn units(&self) -> Vec<UnitStatus> {
        self.tree.units()
    }

    /// A handle on the units that outlives this borrow (for the control socket).
    pub fn tree(&self) -> Tree {
        self.tree.clone()
    }

    /// Stops the top-level units in the reverse of their start order (one before those it
    /// requires; a supervisor stops its children in reverse), each service cancelled and
    /// given its `stop_timeout`, and waits for each to end.
    pub async fn stop(mut self) {
        for running in std::mem::take(&mut self.top).into_iter().rev() {
            let _ = running.stop.send(true);
            let _ = running.task.await;
        }
    }
}

impl Drop for Services {
    /// Dropped without `stop`, the supervisors end (their processes are left running).
    fn drop(&mut self) {
        for running in &self.top {
            running.task.abort();
        }
    }
}

/// The top-level units placed on a list of nodes (`lifecycle.nodes`) that the node `node`
/// runs when its turn comes: those that start themselves and whose list names it, of those
/// `placed` names if it names some (`[cluster] services`).
pub fn placed_on(app: &App, node: &str, placed: Option<&[String]>) -> Vec<String> {
    app.top
        .iter()
        .filter(|id| placed.is_none_or(|placed| placed.contains(id)))
        .filter(|id| {
            let (auto_start, nodes) = match (app.service(id), app.supervisors.get(*id)) {
                (Some(s), _) => (s.lifecycle.auto_start, &s.lifecycle.nodes),
                (None, Some(s)) => (s.auto_start, &s.nodes),
                (None, None) => return false,
            };
            auto_start && nodes.iter().any(|n| n == node)
        })
        .cloned()
        .collect()
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Waits for each of `requires` to be running (or to have exited normally); `Err` with the
/// state to take instead if one failed or the node is stopping meanwhile.
async fn wait_for_required(
    id: &str,
    requires: Vec<(String, watch::Receiver<State>)>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), State> {
    for (required, mut state) in requires {
        tokio::select! {
            settled = state.wait_for(|s| !s.is_starting()) => {
                match settled.as_deref() {
                    // Standing by: it runs on another node, where this one's processes
                    // reach it by name.
                    Ok(State::Running | State::Exited | State::Standby(_)) => {}
                    Ok(State::Failed(why)) => {
                        let why = format!("it requires {required}, which failed: {why}");
                        tracing::error!(service = %id, "not started: {why}");
                        return Err(State::Failed(why));
                    }
                    Ok(_) | Err(_) => return Err(State::Stopped),
                }
            }
            _ = stopped(stop) => return Err(State::Stopped),
        }
    }
    Ok(())
}
