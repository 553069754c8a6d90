//! A hibernated process has no task: its state waits in a [`Sleeper`], whose waker its kill
//! signal, mailbox and events hold (and a timer task, if it asked for a wake-up time). The
//! first of them to fire starts a task that takes a place in the pool and runs a new
//! instance (`run.rs`). So a hibernated process costs its `Process`, its state and this, and
//! nothing that waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Wake, Waker};

use tokio::task::AbortHandle;

use super::run;
use crate::runtime::node::Node;
use crate::runtime::process::{Hibernation, Process};

/// A hibernated process's state, and what it needs to wake. It holds the node and the
/// process weakly: the process's readiness holds it, and a process that is gone (its node
/// dropped) has nothing to wake.
/// It wakes into its entry's program then, which an upgrade may have replaced meanwhile.
struct Sleeper {
    node: Weak<Node>,
    process: Weak<Process>,
    hibernation: Mutex<Option<Hibernation>>,
    /// Set by the first wake-up: later ones do nothing.
    woken: AtomicBool,
    timer: Mutex<Option<AbortHandle>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sleeper {
    /// Claims the wake-up: the state, if no one claimed it before.
    fn claim(&self) -> Option<Hibernation> {
        if self.woken.swap(true, Ordering::AcqRel) {
            return None;
        }
        if let Some(timer) = locked(&self.timer).take() {
            timer.abort();
        }
        locked(&self.hibernation).take()
    }
}

impl Wake for Sleeper {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(hibernation) = self.claim() else {
            return;
        };
        let (Some(node), Some(process)) = (self.node.upgrade(), self.process.upgrade()) else {
            return;
        };
        let (Some(threads), Some(program)) = (
            node.threads_for(&process.pid().host),
            node.program(process.entry()),
        ) else {
            return;
        };
        let woken = run::woken(node.clone(), program, process, hibernation);
        threads.spawn(woken);
    }
}

/// Puts `process` to sleep with `hibernation`: its task may end. Returns the state back if
/// something already waits for it (it wakes at once, in the same task).
pub(super) fn sleep(
    node: &Arc<Node>,
    process: &Arc<Process>,
    hibernation: Hibernation,
) -> Option<Hibernation> {
    let wake_after = hibernation.wake_after;
    process.set_hibernated(Some(hibernation.state.len() as u64));
    let sleeper = Arc::new(Sleeper {
        node: Arc::downgrade(node),
        process: Arc::downgrade(process),
        hibernation: Mutex::new(Some(hibernation)),
        woken: AtomicBool::new(false),
        timer: Mutex::new(None),
    });
    let waker = Waker::from(sleeper.clone());
    // Registered before looking: whatever arrives in between wakes it.
    let ready = process.poll_killed(&waker).is_ready()
        | process.mailbox().poll_ready(&waker).is_ready()
        | process.events().poll_ready(&waker).is_ready();
    if ready {
        // Unless a sender woke it first (and its task runs it).
        return sleeper.claim();
    }
    if let Some(after) = wake_after
        && let Some(threads) = node.threads_for(&process.pid().host)
    {
        let timer = sleeper.clone();
        let task = threads.clock().spawn(async move {
            tokio::time::sleep(after).await;
            timer.wake_by_ref();
        });
        *locked(&sleeper.timer) = Some(task.abort_handle());
        // Woken while the timer was being set: it is not needed.
        if sleeper.woken.load(Ordering::Acquire)
            && let Some(timer) = locked(&sleeper.timer).take()
        {
            timer.abort();
        }
    }
    None
}
