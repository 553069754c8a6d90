//! The exit protocol: everything that happens when a process ends, however it ends. Exit
//! frees everything the process held on the host: its place in the table, its names, the
//! terminal, its monitors of others and theirs of it, its links, its pending cancel's grace
//! timer, the messages waiting in its mailbox (their senders get their bytes back) and its
//! events.

use crate::runtime::node::Node;
use crate::runtime::process::{Ended, Process, Reach};
use wasmhost_types::{Event, ExitReason};

impl Node {
    /// A process ended with `reason`: it leaves the table, its names and the terminal are
    /// freed, its parent counts one child less, its monitors hear why (as much of it as each
    /// may know), and its links follow it if the exit was abnormal.
    pub(in crate::runtime) fn exited(&self, process: &Process, reason: ExitReason) {
        let id = process.pid().id;
        let Ended {
            monitors,
            watching,
            links,
            names,
            on_exit,
        } = process.end();
        process.lineage().ended();
        process.mailbox().clear();
        process.events().clear();
        self.table.remove(id);
        // An upgrade waiting for it to hand over hears that it ended.
        drop(self.upgrades.take(id));
        self.terminal.unbind(id);
        self.release_names(id, names);
        if let Some(parent) = process.parent() {
            parent.child_gone();
        }
        for target in watching.into_iter().filter_map(|t| self.table.get(t)) {
            target.remove_watcher(id);
        }
        let reach = Reach::of(process);
        for watcher in monitors.into_iter().filter_map(|w| self.table.get(w)) {
            watcher.unwatch(id);
            let event = Event::Exit {
                from: process.pid().clone(),
                reason: reach.reason_for(&watcher, &reason),
            };
            self.deliver(&watcher, event, Some(&watcher));
        }
        for linked in links.into_iter().filter_map(|l| self.table.get(l)) {
            linked.remove_link(id);
            if !reason.is_normal() {
                self.link_broken(&linked, process.pid(), &reason);
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.process_exited(process, &reason);
        }
        if let Some(on_exit) = on_exit {
            let _ = on_exit.send(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::app::App;
    use crate::runtime::node::test_process;

    fn node() -> std::sync::Arc<Node> {
        Node::builder(App::default()).build().expect("a node")
    }

    #[tokio::test]
    async fn a_watcher_that_ends_leaves_no_monitor_behind_and_gets_its_bytes_back() {
        let node = node();
        let target = test_process(&node, None);
        let watcher = test_process(&node, None);
        node.monitor(&watcher, target.pid());
        assert_eq!(target.watchers(), 1);
        assert!(
            watcher.account().held() > 0,
            "a monitor is charged to its watcher"
        );
        node.exited(&watcher, ExitReason::Normal(vec![0xf6]));
        assert!(target.watchers() == 0, "left in its target's set");
        assert_eq!(watcher.account().held(), 0);
    }

    #[tokio::test]
    async fn a_cancel_timer_keeps_nothing_of_a_process_that_ended() {
        let node = node();
        let parent = test_process(&node, None);
        let child = test_process(&node, Some(&parent));
        let weak = std::sync::Arc::downgrade(&child);
        let reason = "r".repeat(1 << 20);
        assert!(node.cancel_by(Some(&parent), child.pid(), reason, Duration::MAX));
        // The event and the timer, each with the reason cut at 4 KiB.
        let held = parent.account().held();
        assert!((8 << 10) < held && held < (10 << 10), "{held}");
        node.exited(&child, ExitReason::Killed("test".into()));
        drop(child);
        assert!(
            weak.upgrade().is_none(),
            "the grace timer holds the child weakly"
        );
        // The timer is stopped: it gives its bytes back as its task is dropped.
        tokio::task::yield_now().await;
        assert_eq!(parent.account().held(), 0);
    }

    #[tokio::test]
    async fn what_an_ending_process_has_waiting_goes_back_to_whoever_paid() {
        let node = node();
        let sender = test_process(&node, None);
        let receiver = test_process(&node, None);
        let to = crate::runtime::Destination::Pid(receiver.pid().clone());
        for _ in 0..10 {
            node.send_from(
                Some(sender.pid()),
                sender.account(),
                &to,
                "t".into(),
                vec![0; 1000],
            )
            .expect("sent");
        }
        assert_eq!(sender.account().held(), 10 * (1001 + 64));
        node.exited(&receiver, ExitReason::Normal(vec![0xf6]));
        assert_eq!(
            sender.account().held(),
            0,
            "the messages went with their receiver"
        );
        assert_eq!(node.held(), 0);
    }

    #[tokio::test]
    async fn monitors_made_by_a_spawn_are_counted_like_the_others() {
        let node = node();
        let parent = test_process(&node, None);
        let other = test_process(&node, None);
        node.monitor(&parent, other.pid());
        // A child monitored as `spawn-monitored` makes it, then its exit.
        let child = test_process(&node, Some(&parent));
        let receipt = parent.account().charge(64).expect("charged");
        parent.watch_child(&child, receipt);
        node.exited(&child, ExitReason::Normal(vec![0xf6]));
        assert_eq!(
            parent.watched(),
            vec![other.pid().id],
            "it still watches the other one, and only it"
        );
    }
}
