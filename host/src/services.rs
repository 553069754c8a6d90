//! Supervised services (`process.service`): started in `requires` order, restarted with
//! exponential backoff when they fail, left alone when they return normally, and stopped
//! (cancel, then terminate after `stop_timeout`) on shutdown.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::app::ServiceEntry;
use crate::runtime::{ExitReason, Node, Pid, SpawnOptions};

/// The running supervisors; `stop` ends them and their services.
pub struct Services {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Services {
    /// Starts every auto-start service of the app.
    pub fn start(node: &Arc<Node>) -> Services {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for service in node
            .app()
            .services
            .iter()
            .filter(|s| s.lifecycle.auto_start)
        {
            tasks.spawn(supervise(node.clone(), service.clone(), stopped.clone()));
        }
        Services { stop, tasks }
    }

    /// Stops every service and waits for them to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn supervise(node: Arc<Node>, service: ServiceEntry, mut stop: watch::Receiver<bool>) {
    let id = service.id.as_str();
    let restart = &service.lifecycle.restart;
    let mut attempt: u32 = 0;
    loop {
        let (tx, mut exit) = oneshot::channel();
        let started = Instant::now();
        let options = SpawnOptions::new(&service.process, &service.host)
            .args(service.args.clone())
            .on_exit(tx);
        let reason = match node.spawn(options) {
            Ok(pid) => {
                tracing::info!(service = id, %pid, "service started");
                tokio::select! {
                    reason = &mut exit => reason.unwrap_or(ExitReason::Error("lost track of the process".into())),
                    _ = stopped(&mut stop) => {
                        shut_down(&node, &service, &pid, exit).await;
                        return;
                    }
                }
            }
            Err(err) => ExitReason::Error(format!("cannot spawn: {err}")),
        };
        if reason.is_normal() {
            tracing::info!(service = id, result = %reason, "service exited");
            return;
        }
        if started.elapsed() >= service.lifecycle.stable_threshold {
            attempt = 0;
        }
        attempt += 1;
        if restart.max_attempts > 0 && attempt > restart.max_attempts {
            tracing::error!(service = id, %reason, attempts = restart.max_attempts, "service failed; giving up");
            return;
        }
        let delay = with_jitter(restart.delay(attempt), restart.jitter);
        tracing::warn!(service = id, %reason, attempt, delay = ?delay, "service failed; restarting");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut stop) => return,
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
