//! Stop orders: `terminate` ends a process at once; `cancel` asks it to stop and ends it
//! after a grace period if it has not.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::node::Node;
use crate::runtime::process::{Process, bounded};
use wasmhost_types::{Event, ExitReason, Pid};

/// What a pending cancel's grace timer costs whoever asked for it, besides its reason: a
/// task and a timer entry.
const GRACE_COST: u64 = 512;

impl Node {
    /// Ends `target` at once with `reason`. False if it had already ended.
    pub fn terminate(&self, target: &Pid, reason: ExitReason) -> bool {
        self.table.find(target).is_some_and(|t| t.kill(reason))
    }

    /// Asks `target` to stop: a cancel event now, a forced stop after `grace`. False if it
    /// had already ended. A process has one cancel pending at most: the first wins, the
    /// others change nothing (and cost nothing).
    pub fn cancel(&self, target: &Pid, reason: String, grace: Duration) -> bool {
        self.cancel_by(None, target, reason, grace)
    }

    /// [`Node::cancel`] asked by `canceller` (the node if `None`), which pays for the event
    /// and the grace timer until the target ends. The reason is cut at 4 KiB, as an exit
    /// reason's message is; the timer holds the target weakly and stops when it ends, so a
    /// long grace keeps nothing of an ended process alive.
    pub(in crate::runtime) fn cancel_by(
        &self,
        canceller: Option<&Process>,
        target: &Pid,
        reason: String,
        grace: Duration,
    ) -> bool {
        let Some(process) = self.table.find(target) else {
            return false;
        };
        match process.start_cancel() {
            None => return false,
            Some(false) => return true,
            Some(true) => {}
        }
        let reason = bounded(reason);
        let account = canceller.map_or(&self.account, |c| c.account());
        let receipt = match account.owe(GRACE_COST + reason.len() as u64) {
            Ok(receipt) => receipt,
            Err(refused) => {
                if let Some(canceller) = canceller {
                    canceller.kill(ExitReason::Limit(refused.to_string()));
                }
                return true;
            }
        };
        let event = Event::Cancel {
            reason: reason.clone(),
        };
        self.deliver(&process, event, canceller);
        let Some(runtime) = self.clock() else {
            // Without an async runtime there is no clock to keep the grace period on.
            process.kill(ExitReason::Cancelled(reason));
            return true;
        };
        let weak = Arc::downgrade(&process);
        let timer = runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(process) = weak.upgrade() {
                process.kill(ExitReason::Cancelled(reason));
            }
            drop(receipt);
        });
        // It may have ended while the timer was being set: then it is stopped here.
        process.keep_grace_timer(timer.abort_handle());
        true
    }
}
