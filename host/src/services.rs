//! Supervised services (`process.service`): each starts once the services it `requires` are
//! running, counts as running once it is ready (its process has registered every name its
//! entry reserves, within `start_timeout`; at once if the entry reserves none), is restarted
//! with exponential backoff when it fails, left alone when it returns normally, and stopped
//! (cancel, then terminate after `stop_timeout`) on shutdown, in the reverse of their start order.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::ServiceEntry;
use crate::runtime::{ExitReason, Node, Pid, SpawnOptions};

/// Where a service is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Spawned (or waiting for what it requires, or for a restart), not ready yet.
    Starting,
    /// Ready: its process has registered the names its entry reserves.
    Running,
    /// Its process returned normally; it is not restarted.
    Exited,
    /// It will not run again: it gave up after `max_attempts`, or what it requires failed.
    Failed(String),
    /// Cancelled on shutdown, within its `stop_timeout`.
    Stopping,
    /// Stopped on shutdown.
    Stopped,
}

/// The running supervisors, in start order; `stop` ends them and their services in reverse.
pub struct Services {
    supervisors: Vec<Running>,
}

/// A supervisor's service, its state, its task and the switch that stops it.
struct Running {
    id: String,
    state: watch::Receiver<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Services {
    /// Starts every auto-start service of the app, each once what it requires is running.
    pub fn start(node: &Arc<Node>) -> Services {
        let mut supervisors: Vec<Running> = Vec::new();
        // The app lists services after those they require, so these are already here.
        for service in node
            .app()
            .services
            .iter()
            .filter(|s| s.lifecycle.auto_start)
        {
            let requires = supervisors
                .iter()
                .filter(|r| service.lifecycle.requires.contains(&r.id))
                .map(|r| (r.id.clone(), r.state.clone()))
                .collect();
            let (state, watched) = watch::channel(State::Starting);
            let (stop, stopped) = watch::channel(false);
            let supervisor = Supervisor {
                node: node.clone(),
                service: service.clone(),
                state,
                stop: stopped,
            };
            supervisors.push(Running {
                id: service.id.clone(),
                state: watched,
                stop,
                task: tokio::spawn(supervisor.run(requires)),
            });
        }
        Services { supervisors }
    }

    /// Resolves once every auto-start service is running (or has exited normally); an error
    /// names the first that failed for good, or that is stopping.
    pub async fn running(&self) -> Result<(), String> {
        for Running { id, state, .. } in &self.supervisors {
            let mut state = state.clone();
            let settled = state.wait_for(|s| *s != State::Starting).await;
            match settled.as_deref() {
                Ok(State::Running | State::Exited) => {}
                Ok(State::Failed(why)) => return Err(format!("service {id} failed: {why}")),
                Ok(_) | Err(_) => return Err(format!("service {id} is stopping")),
            }
        }
        Ok(())
    }

    /// The state of the auto-start service `id`, to watch.
    pub fn state(&self, id: &str) -> Option<watch::Receiver<State>> {
        self.supervisors
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.state.clone())
    }

    /// Stops the services in the reverse of their start order (a service before those it
    /// requires), each cancelled and given its `stop_timeout`, and waits for each to end.
    pub async fn stop(mut self) {
        for running in std::mem::take(&mut self.supervisors).into_iter().rev() {
            let _ = running.stop.send(true);
            let _ = running.task.await;
        }
    }
}

impl Drop for Services {
    /// Dropped without `stop`, the supervisors end (their processes are left running).
    fn drop(&mut self) {
        for running in &self.supervisors {
            running.task.abort();
        }
    }
}

/// One service's supervisor.
struct Supervisor {
    node: Arc<Node>,
    service: ServiceEntry,
    state: watch::Sender<State>,
    stop: watch::Receiver<bool>,
}

/// How one start of a service ended.
enum Outcome {
    /// Its process ended, before or after it was ready.
    Ended(ExitReason),
    /// The node is shutting down; the service has been stopped.
    Stopped,
}

impl Supervisor {
    async fn run(mut self, requires: Vec<(String, watch::Receiver<State>)>) {
        let id = self.service.id.clone();
        for (required, mut state) in requires {
            tokio::select! {
                settled = state.wait_for(|s| *s != State::Starting) => {
                    match settled.as_deref() {
                        Ok(State::Running | State::Exited) => {}
                        Ok(State::Failed(why)) => {
                            let why = format!("it requires {required}, which failed: {why}");
                            tracing::error!(service = %id, "service not started: {why}");
                            self.state.send_replace(State::Failed(why));
                            return;
                        }
                        Ok(_) | Err(_) => {
                            self.state.send_replace(State::Stopped);
                            return;
                        }
                    }
                }
                _ = stopped(&mut self.stop) => {
                    self.state.send_replace(State::Stopped);
                    return;
                }
            }
        }

        let restart = self.service.lifecycle.restart.clone();
        let mut attempt: u32 = 0;
        loop {
            self.state.send_replace(State::Starting);
            let started = Instant::now();
            let reason = match self.start_once().await {
                Outcome::Stopped => {
                    self.state.send_replace(State::Stopped);
                    return;
                }
                Outcome::Ended(reason) => reason,
            };
            if reason.is_normal() {
                tracing::info!(service = %id, result = %reason, "service exited");
                self.state.send_replace(State::Exited);
                return;
            }
            if started.elapsed() >= self.service.lifecycle.stable_threshold {
                attempt = 0;
            }
            attempt += 1;
            if restart.max_attempts > 0 && attempt > restart.max_attempts {
                tracing::error!(service = %id, %reason, attempts = restart.max_attempts, "service failed; giving up");
                self.state.send_replace(State::Failed(format!(
                    "{reason} (gave up after {} attempts)",
                    restart.max_attempts
                )));
                return;
            }
            let delay = with_jitter(restart.delay(attempt), restart.jitter);
            tracing::warn!(service = %id, %reason, attempt, delay = ?delay, "service failed; restarting");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut self.stop) => {
                    self.state.send_replace(State::Stopped);
                    return;
                }
            }
        }
    }

    /// Spawns the service's process, waits for it to be ready, then for it to end.
    async fn start_once(&mut self) -> Outcome {
        let (node, service) = (&self.node, &self.service);
        let id = service.id.as_str();
        let (tx, mut exit) = oneshot::channel();
        let options = SpawnOptions::new(&service.process, &service.host)
            .args(service.args.clone())
            .on_exit(tx);
        let pid = match node.spawn(options) {
            Ok(pid) => pid,
            Err(err) => return Outcome::Ended(ExitReason::Error(format!("cannot spawn: {err}"))),
        };
        tracing::info!(service = %id, %pid, "service started");
        let lost = || ExitReason::Error("lost track of the process".into());

        let names = node
            .app()
            .processes
            .get(&service.process)
            .map(|entry| entry.names.clone())
            .unwrap_or_default();
        let timeout = service.lifecycle.start_timeout;
        tokio::select! {
            ready = tokio::time::timeout(timeout, node.registered(&pid, &names)) => {
                if ready.is_err() {
                    let why = format!(
                        "not ready within its start_timeout of {timeout:?} (it registers {})",
                        names.join(", ")
                    );
                    node.terminate(&pid, ExitReason::Killed(why.clone()));
                    let _ = exit.await;
                    return Outcome::Ended(ExitReason::Error(why));
                }
                if !names.is_empty() {
                    tracing::info!(service = %id, %pid, "service ready");
                }
                self.state.send_replace(State::Running);
            }
            reason = &mut exit => return Outcome::Ended(reason.unwrap_or_else(|_| lost())),
            _ = stopped(&mut self.stop) => {
                self.state.send_replace(State::Stopping);
                shut_down(node, service, &pid, exit).await;
                return Outcome::Stopped;
            }
        }
        tokio::select! {
            reason = &mut exit => Outcome::Ended(reason.unwrap_or_else(|_| lost())),
            _ = stopped(&mut self.stop) => {
                self.state.send_replace(State::Stopping);
                shut_down(node, service, &pid, exit).await;
                Outcome::Stopped
            }
        }
    }
}

/// Resolves once `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Cancels the service's process (it is terminated if it outlives `stop_timeout`) and
/// waits for its exit report.
async fn shut_down(
    node: &Node,
    service: &ServiceEntry,
    pid: &Pid,
    exit: oneshot::Receiver<ExitReason>,
) {
    let grace = service.lifecycle.stop_timeout;
    if node.cancel(pid, "shutdown".into(), grace) {
        // The forced stop comes at `grace`; allow a little more for it to be reported.
        let _ = tokio::time::timeout(grace + Duration::from_millis(100), exit).await;
    }
    tracing::info!(service = %service.id, "service stopped");
}

fn with_jitter(delay: Duration, jitter: f64) -> Duration {
    if jitter <= 0.0 {
        return delay;
    }
    let factor = rand::rng().random_range(1.0 - jitter..=1.0 + jitter);
    delay.mul_f64(factor.max(0.0))
}
