//! A service no supervisor owns: started once what it requires is running, restarted with
//! exponential backoff (`lifecycle.restart`) when its `restart_type` says so, until it has
//! failed `max_attempts` times in a row.

use std::sync::Arc;

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use super::service::{Outcome, run_once};
use super::{State, Unit, stopped, wait_for_required};
use crate::app::ServiceEntry;
use crate::runtime::Node;

pub async fn run(
    node: Arc<Node>,
    service: ServiceEntry,
    unit: Arc<Unit>,
    requires: Vec<(String, watch::Receiver<State>)>,
    mut stop: watch::Receiver<bool>,
) {
    let id = service.id.as_str();
    if let Err(state) = wait_for_required(id, requires, &mut stop).await {
        unit.set(state);
        return;
    }
    let lifecycle = &service.lifecycle;
    let restart = &lifecycle.restart;
    let mut attempt: u32 = 0;
    unit.set(State::Starting);
    loop {
        let started = Instant::now();
        let reason = match run_once(&node, &service, &unit, &mut stop).await {
            Outcome::Stopped => {
                unit.set(State::Stopped);
                return;
            }
            Outcome::Ended(reason) => reason,
        };
        if !lifecycle.restart_type.restarts(reason.is_normal()) {
            if reason.is_normal() {
                tracing::info!(service = %id, result = %reason, "service exited");
                unit.set(State::Exited);
            } else {
                tracing::error!(service = %id, %reason, "service failed; temporary, so not restarted");
                unit.set(State::Failed(reason.to_string()));
            }
            return;
        }
        if started.elapsed() >= lifecycle.stable_threshold {
            attempt = 0;
        }
        attempt += 1;
        if restart.max_attempts > 0 && attempt > restart.max_attempts {
            tracing::error!(service = %id, %reason, attempts = restart.max_attempts, "service failed; giving up");
            unit.set(State::Failed(format!(
                "{reason} (gave up after {} attempts)",
                restart.max_attempts
            )));
            return;
        }
        let delay = with_jitter(restart.delay(attempt), restart.jitter);
        if reason.is_normal() {
            tracing::info!(service = %id, result = %reason, delay = ?delay, "service exited; permanent, so restarting");
        } else {
            tracing::warn!(service = %id, %reason, attempt, delay = ?delay, "service failed; restarting");
        }
        unit.set(State::Restarting {
            at: Instant::now() + delay,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {
                unit.restarted();
                unit.set(State::Starting);
            }
            _ = stopped(&mut stop) => {
                unit.set(State::Stopped);
                return;
            }
        }
    }
}

fn with_jitter(delay: std::time::Duration, jitter: f64) -> std::time::Duration {
    if jitter <= 0.0 {
        return delay;
    }
    let factor = rand::rng().random_range(1.0 - jitter..=1.0 + jitter);
    delay.mul_f64(factor.max(0.0))
}
