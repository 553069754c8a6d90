//! Stop orders: `terminate` ends a process at once; `cancel` asks it to stop and ends it
//! after a grace period if it has not.

use std::time::Duration;

use tokio::runtime::Handle;

use super::node::Node;
use super::{Event, ExitReason, Pid};

impl Node {
    /// Ends `target` at once with `reason`. False if it had already ended.
    pub fn terminate(&self, target: &Pid, reason: ExitReason) -> bool {
        self.table.find(target).is_some_and(|t| t.kill(reason))
    }

    /// Asks `target` to stop: a cancel event now, a forced stop after `grace`. False if it
    /// had already ended. A process has one cancel pending at most: the first wins, the
    /// others change nothing (and cost nothing).
    pub fn cancel(&self, target: &Pid, reason: String, grace: Duration) -> bool {
        let Some(process) = self.table.find(target) else {
            return false;
        };
        if std::mem::replace(&mut process.control().cancel_pending, true) {
            return true;
        }
        let event = Event::Cancel {
            reason: reason.clone(),
        };
        self.deliver(&process, event);
        let clock = || self.shared.as_ref().map(|threads| threads.clock().clone());
        let Some(runtime) = Handle::try_current().ok().or_else(clock) else {
            // Without an async runtime there is no clock to keep the grace period on.
            process.kill(ExitReason::Cancelled(reason));
            return true;
        };
        runtime.spawn(async move {
            tokio::time::sleep(grace).await;
            process.kill(ExitReason::Cancelled(reason));
        });
        true
    }
}
