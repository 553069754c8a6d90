//! A spawn onto another node: `spawn("app:worker", "c@app:processes", …)`. The caller's node
//! asks (a `Spawn` frame with the caller's pid and entry), the target's node decides with
//! today's authority rules from the caller's entry (every node runs the same registry) and
//! answers (`Spawned`) before the child runs, so for `spawn-monitored` and `spawn-linked` the
//! answer comes before any exit of the child: both sides of the monitor or link are in place
//! first. A request whose node is lost is answered `no host` at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::join::Cluster;
use super::transport::Unsent;
use super::wire::{Signal, SpawnReply};
use crate::runtime::node::{FromPeer, Node, SpawnOptions, Watch};
use crate::runtime::process::{Account, Charge, OVERHEAD, Process};
use wasmhost_types::{Denied, NodeId, Pid, SpawnError};

/// How long a spawn waits for the other node's answer before it gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Spawns this node asked for and not yet answered, and the children its processes have on
/// other nodes (each charged to its parent): whom they may terminate, cancel and link.
#[derive(Default)]
pub(super) struct PendingSpawns {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Pending>>,
    children: Mutex<HashMap<u64, HashMap<Pid, Charge>>>,
}

struct Pending {
    node: NodeId,
    /// The parent and its account (a child it has elsewhere is charged to it).
    parent: (Pid, Arc<Account>),
    /// What the caller is shown if the answer never comes.
    host: String,
    /// For `spawn-monitored` and `spawn-linked`: which, and the receipt for the caller's
    /// side of it.
    tie: Option<(Watch, Charge)>,
    answer: oneshot::Sender<Result<Pid, SpawnError>>,
}

/// A peer's request, as it arrived.
pub(super) struct Asked {
    pub req: u64,
    pub parent: Pid,
    pub parent_entry: String,
    pub entry: String,
    pub host: String,
    pub args: Vec<Vec<u8>>,
    pub monitored: bool,
    pub linked: bool,
}

impl Cluster {
    /// Asks node `node` to spawn `entry` on its `host` for `parent`; resolves with the child's
    /// pid or why not.
    pub(in crate::runtime) fn spawn_on(
        &self,
        parent: &Process,
        node: &str,
        (entry, host): (String, String),
        args: Vec<Vec<u8>>,
        watch: Watch,
    ) -> impl Future<Output = Result<Pid, SpawnError>> + Send + 'static + use<> {
        let shown = format!("{node}@{host}");
        let asked = self.ask_spawn(parent, node, (entry, host), args, watch);
        async move {
            let answer = match asked {
                Ok(answer) => answer,
                Err(err) => return Err(err),
            };
            match tokio::time::timeout(PATIENCE, answer).await {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(SpawnError::UnknownHost(shown)),
                Err(_) => Err(SpawnError::Limit(format!(
                    "no answer from {shown} within {PATIENCE:?}"
                ))),
            }
        }
    }

    fn ask_spawn(
        &self,
        parent: &Process,
        node: &str,
        (entry, host): (String, String),
        args: Vec<Vec<u8>>,
        watch: Watch,
    ) -> Result<oneshot::Receiver<Result<Pid, SpawnError>>, SpawnError> {
        let shown = format!("{node}@{host}");
        let Some(incarnation) = self.peers.current(node) else {
            return Err(SpawnError::UnknownHost(shown));
        };
        let target = NodeId {
            name: Arc::from(node),
            incarnation,
        };
        let size: usize = args.iter().map(Vec::len).sum::<usize>() + entry.len() + host.len();
        let largest = self.max_frame.saturating_sub(super::wire::OVERHEAD);
        if size > largest {
            return Err(SpawnError::Limit(format!(
                "args: {size} bytes, over the {largest} a frame to another node carries"
            )));
        }
        let tie = match watch {
            Watch::None => None,
            Watch::Monitor | Watch::Link => Some((
                watch,
                parent
                    .account()
                    .charge(OVERHEAD)
                    .map_err(|refused| SpawnError::Limit(refused.to_string()))?,
            )),
        };
        let req = self.spawns.next.fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut map) = self.spawns.map.lock() {
            let pending = Pending {
                node: target.clone(),
                parent: (parent.pid().clone(), parent.account().clone()),
                host: shown.clone(),
                tie,
                answer,
            };
            map.insert(req, pending);
        }
        let signal = Signal::Spawn {
            req,
            parent: parent.pid().clone(),
            parent_entry: parent.entry().to_string(),
            entry,
            host,
            args: args.into_iter().map(serde_bytes::ByteBuf::from).collect(),
            monitored: watch == Watch::Monitor,
            linked: watch == Watch::Link,
        };
        match self.enqueue(&target, signal, parent.account()) {
            Ok(()) => Ok(answered),
            Err(unsent) => {
                if let Ok(mut map) = self.spawns.map.lock() {
                    map.remove(&req);
                }
                Err(match unsent {
                    Unsent::Down => SpawnError::UnknownHost(shown),
                    Unsent::Refused(why) => SpawnError::Limit(why),
                })
            }
        }
    }

    /// The answer to this node's request `req` arrived.
    pub(super) fn spawned(&self, req: u64, result: Result<Pid, SpawnError>) {
        let pending = match self.spawns.map.lock() {
            Ok(mut map) => map.remove(&req),
            Err(_) => None,
        };
        let Some(pending) = pending else {
            return;
        };
        let (parent, account) = pending.parent;
        match (&result, pending.tie) {
            (Ok(child), Some((Watch::Monitor, receipt))) => {
                self.watching_child(child, parent.id, receipt);
            }
            (Ok(child), Some((Watch::Link, receipt))) => self.linked_child(&parent, child, receipt),
            _ => {}
        }
        if let (Ok(child), Ok(receipt)) = (&result, account.charge(OVERHEAD))
            && let Ok(mut children) = self.spawns.children.lock()
        {
            children
                .entry(parent.id)
                .or_default()
                .insert(child.clone(), receipt);
        }
        let _ = pending.answer.send(result);
    }

    /// Whether `caller` may terminate, cancel or link `target`, a process of another node:
    /// if it spawned it there, or if its `authority.signal` reaches every entry (which entry
    /// runs as `target` is not known here).
    pub(in crate::runtime) fn may_signal(
        &self,
        caller: &Process,
        target: &Pid,
    ) -> Result<(), Denied> {
        if caller.privileges().signals_every_entry() {
            return Ok(());
        }
        let spawned = self.spawns.children.lock().is_ok_and(|children| {
            children
                .get(&caller.pid().id)
                .is_some_and(|mine| mine.contains_key(target))
        });
        match spawned {
            true => Ok(()),
            false => Err(Denied(format!(
                "{} may not signal {target}: on another node a process reaches only the children it spawned there (the registry can allow more with `authority.signal: any`)",
                caller.entry()
            ))),
        }
    }

    /// A process of this node ended: the children it had elsewhere are forgotten.
    pub(super) fn children_of_exited(&self, parent: u64) {
        if let Ok(mut children) = self.spawns.children.lock() {
            children.remove(&parent);
        }
    }

    /// A peer was lost: its unanswered spawns are answered `no host`.
    pub(super) fn spawns_lost(&self, name: &str, incarnation: u64) {
        let lost: Vec<Pending> = match self.spawns.map.lock() {
            Ok(mut map) => {
                let reqs: Vec<u64> = map
                    .iter()
                    .filter(|(_, p)| *p.node.name == *name && p.node.incarnation == incarnation)
                    .map(|(req, _)| *req)
                    .collect();
                reqs.into_iter()
                    .filter_map(|req| map.remove(&req))
                    .collect()
            }
            Err(_) => return,
        };
        for pending in lost {
            let _ = pending
                .answer
                .send(Err(SpawnError::UnknownHost(pending.host)));
        }
        if let Ok(mut children) = self.spawns.children.lock() {
            children.retain(|_, mine| {
                mine.retain(|child, _| {
                    child
                        .node
                        .as_ref()
                        .is_none_or(|n| *n.name != *name || n.incarnation != incarnation)
                });
                !mine.is_empty()
            });
        }
    }

    /// A peer asks for a child here: decided as a local spawn is, with the asking process's
    /// entry for its authority, and answered before the child runs.
    pub(super) fn spawn_asked(
        self: &Arc<Self>,
        node: &Arc<Node>,
        asked: Asked,
        account: Arc<Account>,
    ) {
        let Some(reply_to) = asked.parent.node.clone() else {
            return;
        };
        let req = asked.req;
        let answer = {
            let (cluster, reply_to, account) = (self.clone(), reply_to.clone(), account.clone());
            move |reply: SpawnReply| {
                cluster.control(&reply_to, Signal::Spawned { req, reply }, &account);
            }
        };
        // The monitor's or link's entry here is charged to the asking node, as its messages
        // are.
        let receipt = match asked.monitored || asked.linked {
            true => match account.charge(OVERHEAD) {
                Ok(receipt) => Some(receipt),
                Err(refused) => {
                    return answer(SpawnReply::Limit(refused.to_string()));
                }
            },
            false => None,
        };
        let before_start = {
            let (cluster, parent, answer) = (self.clone(), asked.parent.clone(), answer.clone());
            let linked = asked.linked;
            move |child: &Pid| {
                match (receipt, linked) {
                    (Some(receipt), false) => cluster.watched_child(child.id, parent, receipt),
                    (Some(receipt), true) => {
                        cluster.links.add(child.id, &parent, receipt);
                    }
                    (None, _) => {}
                }
                answer(SpawnReply::Spawned(child.clone()));
            }
        };
        let options = SpawnOptions::new(asked.entry, asked.host)
            .args(asked.args)
            .for_peer(FromPeer {
                caller_entry: asked.parent_entry,
                caller_host: asked.parent.host.to_string(),
                payer: account,
                before_start: Box::new(before_start),
            });
        if let Err(err) = node.spawn(options) {
            answer(Err(err).into());
        }
    }
}
