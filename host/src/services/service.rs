//! One run of a service's process: spawned, ready once it has registered every name its
//! entry reserves (within `start_timeout`; at once if it reserves none), then watched until
//! it ends or is stopped (cancelled, then terminated after `stop_timeout`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::{State, Unit, stopped};
use crate::app::ServiceEntry;
use crate::runtime::{ExitReason, Node, Pid, SpawnOptions};

/// How one run of a service ended.
pub enum Outcome {
    /// Its process ended, before or after it was ready.
    Ended(ExitReason),
    /// It was asked to stop, and has.
    Stopped,
}

/// Spawns the service's process, marks `unit` running once it is ready, and waits for the
/// process to end or for `stop`.
pub async fn run_once(
    node: &Arc<Node>,
    service: &ServiceEntry,
    unit: &Unit,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    let id = service.id.as_str();
    let (tx, mut exit) = oneshot::channel();
    let options = SpawnOptions::new(&service.process, &service.host)
        .service(id)
        .args(service.args.clone())
        .on_exit(tx);
    let pid = match node.spawn(options) {
        Ok(pid) => pid,
        Err(err) => return Outcome::Ended(ExitReason::Error(format!("cannot spawn: {err}"))),
    };
    unit.spawned(pid.clone());
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
            unit.set(State::Running);
        }
        reason = &mut exit => return Outcome::Ended(reason.unwrap_or_else(|_| lost())),
        _ = stopped(stop) => {
            unit.set(State::Stopping);
            shut_down(node, service, &pid, exit).await;
            return Outcome::Stopped;
        }
    }
    // Ready when spawned because its entry reserves no name, yet it registers one: what
    // requires it, or looks that name up, may have come first. Said once, with the fix.
    let mut unreserved = std::pin::pin!(async {
        match names.is_empty() {
            true => node.first_name(&pid).await,
            false => std::future::pending().await,
        }
    });
    let mut said = false;
    loop {
        tokio::select! {
            name = &mut unreserved, if !said => {
                said = true;
                tracing::warn!(
                    service = %id,
                    %pid,
                    "the service registered `{name}` after it was taken for ready: its entry \
                     reserves no name, so it was ready once spawned, and what requires it or \
                     looks `{name}` up may have come first; hint: reserve it (`names: \
                     [{name}]` on {}), and the service is ready once it registers it",
                    service.process
                );
            }
            reason = &mut exit => return Outcome::Ended(reason.unwrap_or_else(|_| lost())),
            _ = stopped(stop) => {
                unit.set(State::Stopping);
                shut_down(node, service, &pid, exit).await;
                return Outcome::Stopped;
            }
        }
    }
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
