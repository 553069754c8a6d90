//! A supervisor (`process.supervisor`), as in OTP: it starts its children in order, each
//! once the one before is running; when a child ends and its restart type says it is
//! restarted, the strategy picks who restarts with it (`one_for_one`: it alone;
//! `one_for_all`: every child; `rest_for_one`: it and those after it), the others among
//! them are stopped last-first, and all start again in order, at once. More than
//! `max_restarts` restarts within `period` and the supervisor stops every child and fails,
//! which its own supervisor sees as a child failing (at the top, `wasmhost run` ends).

use std::collections::VecDeque;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::service::{Outcome, run_once};
use super::{State, Unit, UnitKind, stopped, wait_for_required};
use crate::app::{RestartType, ServiceEntry, Strategy, SupervisorEntry};
use crate::runtime::{ExitReason, Node};

/// A supervisor and its children, ready to run (and to run again when restarted).
#[derive(Clone)]
pub struct Supervisor {
    entry: SupervisorEntry,
    unit: Arc<Unit>,
    children: Vec<Child>,
}

#[derive(Clone)]
struct Child {
    node: Arc<Node>,
    unit: Arc<Unit>,
    what: What,
}

#[derive(Clone)]
enum What {
    Service(Box<ServiceEntry>),
    Supervisor(Box<Supervisor>),
}

/// A child's task and the switch that stops it.
struct Live {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// How a child's run ended: which child, which of its runs, and how.
type Ended = (usize, u64, Outcome);

impl Supervisor {
    /// The supervisor `entry` of `node`'s app, its children's units added to `units`, each
    /// supervisor before its children.
    pub fn new(
        node: &Arc<Node>,
        entry: &SupervisorEntry,
        unit: Arc<Unit>,
        units: &mut Vec<Arc<Unit>>,
    ) -> Supervisor {
        let app = node.app();
        let mut children = Vec::new();
        // The registry checked that every child is a service or a supervisor.
        for id in &entry.children {
            if let Some(service) = app.service(id) {
                let unit = Unit::new(id, UnitKind::Service, Some(&entry.id));
                units.push(unit.clone());
                children.push(Child {
                    node: node.clone(),
                    unit,
                    what: What::Service(Box::new(service.clone())),
                });
            } else if let Some(sub) = app.supervisors.get(id) {
                let unit = Unit::new(id, UnitKind::Supervisor, Some(&entry.id));
                units.push(unit.clone());
                let sub = Supervisor::new(node, sub, unit.clone(), units);
                children.push(Child {
                    node: node.clone(),
                    unit,
                    what: What::Supervisor(Box::new(sub)),
                });
            }
        }
        Supervisor {
            entry: entry.clone(),
            unit,
            children,
        }
    }

    /// Runs a top-level supervisor once what it requires is running.
    pub async fn run_at_top(
        self,
        requires: Vec<(String, watch::Receiver<State>)>,
        mut stop: watch::Receiver<bool>,
    ) {
        let id = self.entry.id.clone();
        if let Err(state) = wait_for_required(&id, requires, &mut stop).await {
            self.unit.set(state);
            return;
        }
        self.run(stop).await;
    }

    /// Runs until stopped (`Outcome::Stopped`) or until it gives up (`Outcome::Ended` with
    /// why), keeping its unit's state. Boxed: a supervisor's future runs its children's.
    fn run(
        self,
        mut stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'static>> {
        Box::pin(async move {
            let mut run = Run::new(&self);
            let id = &self.entry.id;
            let strategy = self.entry.strategy.name();
            self.unit.set(State::Starting);
            tracing::info!(supervisor = %id, strategy, "supervisor starting");
            if !run.start(&self, 0..self.children.len(), &mut stop).await {
                return run.stop_all(&self).await;
            }
            self.unit.set(State::Running);
            loop {
                let (i, generation, outcome) = tokio::select! {
                    Some(ended) = run.ended.recv() => ended,
                    _ = stopped(&mut stop) => return run.stop_all(&self).await,
                };
                if run.generation[i] != generation {
                    continue; // a run this supervisor stopped
                }
                run.live[i] = None;
                let Outcome::Ended(reason) = outcome else {
                    continue;
                };
                let child = &self.children[i];
                let child_id = &child.unit.id;
                if !child.restart_type().restarts(reason.is_normal()) {
                    tracing::info!(supervisor = %id, child = %child_id, %reason, "child not restarted (restart_type)");
                    continue;
                }
                if run.too_many_restarts(&self.entry) {
                    let how = if reason.is_normal() { "returned " } else { "" };
                    let why = format!(
                        "more than {} restarts within {:?}; the last: {child_id} {how}{reason}",
                        self.entry.max_restarts, self.entry.period
                    );
                    tracing::error!(supervisor = %id, "supervisor gave up: {why}");
                    run.stop_children(&self).await;
                    self.unit.set(State::Failed(why.clone()));
                    return Outcome::Ended(ExitReason::Error(why));
                }
                let n = self.children.len();
                let range = match self.entry.strategy {
                    Strategy::OneForOne => i..i + 1,
                    Strategy::OneForAll => 0..n,
                    Strategy::RestForOne => i..n,
                };
                tracing::warn!(supervisor = %id, child = %child_id, %reason, strategy, "child ended; restarting");
                for j in range.clone().rev() {
                    run.stop_child(j).await;
                }
                if !run.start(&self, range, &mut stop).await {
                    return run.stop_all(&self).await;
                }
            }
        })
    }
}

impl Child {
    /// A supervisor under a supervisor is permanent, as in OTP.
    fn restart_type(&self) -> RestartType {
        match &self.what {
            What::Service(service) => service.lifecycle.restart_type,
            What::Supervisor(_) => RestartType::Permanent,
        }
    }

    /// One run of the child, keeping its unit's state.
    async fn run(self, mut stop: watch::Receiver<bool>) -> Outcome {
        match self.what {
            What::Service(service) => {
                let outcome = run_once(&self.node, &service, &self.unit, &mut stop).await;
                match &outcome {
                    Outcome::Stopped => self.unit.set(State::Stopped),
                    Outcome::Ended(reason) if reason.is_normal() => {
                        tracing::info!(service = %service.id, result = %reason, "service exited");
                        self.unit.set(State::Exited);
                    }
                    Outcome::Ended(reason) => {
                        tracing::warn!(service = %service.id, %reason, "service failed");
                        self.unit.set(State::Failed(reason.to_string()));
                    }
                }
                outcome
            }
            What::Supervisor(supervisor) => supervisor.run(stop).await,
        }
    }
}

/// A supervisor's children while it runs.
struct Run {
    live: Vec<Option<Live>>,
    /// Each child's current run; the end of an earlier one is stale.
    generation: Vec<u64>,
    ended: mpsc::UnboundedReceiver<Ended>,
    report: mpsc::UnboundedSender<Ended>,
    /// When each restart within the last `period` happened.
    restarts: VecDeque<Instant>,
}

impl Run {
    fn new(supervisor: &Supervisor) -> Run {
        let n = supervisor.children.len();
        let (report, ended) = mpsc::unbounded_channel();
        Run {
            live: (0..n).map(|_| None).collect(),
            generation: vec![0; n],
            ended,
            report,
            restarts: VecDeque::new(),
        }
    }

    /// Starts the children in `range` in order, each once the one before is running (or
    /// has ended: its end is handled with the others'). Temporary children are started only
    /// the first time. `false` if told to stop meanwhile.
    async fn start(
        &mut self,
        supervisor: &Supervisor,
        range: Range<usize>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        for j in range {
            let child = supervisor.children[j].clone();
            let first = self.generation[j] == 0;
            if !first && child.restart_type() == RestartType::Temporary {
                continue;
            }
            if !first {
                child.unit.restarted();
            }
            self.generation[j] += 1;
            let generation = self.generation[j];
            let (switch, stopped_rx) = watch::channel(false);
            child.unit.set(State::Starting);
            let mut state = child.unit.state();
            let report = self.report.clone();
            let task = tokio::spawn(async move {
                let outcome = child.run(stopped_rx).await;
                let _ = report.send((j, generation, outcome));
            });
            self.live[j] = Some(Live { stop: switch, task });
            tokio::select! {
                _ = state.wait_for(|s| !s.is_starting()) => {}
                _ = stopped(stop) => return false,
            }
        }
        true
    }

    /// Stops child `j` if it runs, and waits for it to end.
    async fn stop_child(&mut self, j: usize) {
        if let Some(live) = self.live[j].take() {
            self.generation[j] += 1;
            let _ = live.stop.send(true);
            let _ = live.task.await;
        }
    }

    /// Stops every child, last first.
    async fn stop_children(&mut self, supervisor: &Supervisor) {
        for j in (0..supervisor.children.len()).rev() {
            self.stop_child(j).await;
        }
    }

    /// Stops every child and the supervisor with them.
    async fn stop_all(&mut self, supervisor: &Supervisor) -> Outcome {
        supervisor.unit.set(State::Stopping);
        self.stop_children(supervisor).await;
        supervisor.unit.set(State::Stopped);
        tracing::info!(supervisor = %supervisor.entry.id, "supervisor stopped");
        Outcome::Stopped
    }

    /// Counts a restart now; whether that makes more than `max_restarts` within `period`.
    fn too_many_restarts(&mut self, entry: &SupervisorEntry) -> bool {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) >= entry.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarts.len() > entry.max_restarts as usize
    }
}
