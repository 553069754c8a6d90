//! A node's links to its peers: one outbox per peer incarnation, so the sender never waits
//! and order holds from each sender to each receiver (one queue, one publisher, one
//! subject), and one inbox for what arrives. A frame's sequence number is taken as it is
//! queued, under the outbox's lock, so a refused frame leaves no gap.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use tokio::sync::mpsc;

use super::join::Cluster;
use super::members::Verdict;
use super::wire::{self, Frame, Signal};
use crate::runtime::process::{Account, Charge, OVERHEAD};
use std::time::Duration;

use wasmhost_types::{Destination, ExitReason, NodeId, Pid, SendError};

/// Frames queued for one peer, at most; each is also charged to its sender.
const OUTBOX_FRAMES: usize = 4096;
/// Frames published to one peer and not yet credited back, at most: what a peer's inbox may
/// hold of this node's, whatever the two nodes' speeds (flow control). A full window leaves
/// frames in the outbox, and a full outbox refuses a send at once.
const WINDOW: usize = 8192;
/// A node credits a peer back after taking this many of its frames.
const CREDIT_EVERY: u64 = 512;
/// Outbox places a message or a spawn request leaves free: a full outbox takes the peer down
/// when a monitor's or link's signal cannot be queued, and a process flooding a stalled peer
/// should meet refusals before that.
const KEPT_FOR_CONTROL: usize = 256;

/// The outboxes, by peer name and incarnation.
#[derive(Default)]
pub(super) struct Outboxes {
    map: Mutex<HashMap<(String, u64), Outbox>>,
}

struct Outbox {
    next_seq: u64,
    frames: mpsc::Sender<(Vec<u8>, Charge)>,
    /// Frames the peer lets this node publish now.
    window: Arc<tokio::sync::Semaphore>,
    publisher: tokio::task::JoinHandle<()>,
}

impl Outboxes {
    /// Closes the outbox to a peer's incarnation (its publisher ends with it).
    pub fn close(&self, name: &str, incarnation: u64) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&(name.to_string(), incarnation));
        }
    }

    /// Closes every outbox: a new session numbers its frames from 0.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }

    /// The peer `name`'s `incarnation` took `frames` more of this node's frames. Never more
    /// than a whole window is open, whatever credits arrive (twice, or forged).
    pub fn credited(&self, name: &str, incarnation: u64, frames: u64) {
        if let Ok(map) = self.map.lock()
            && let Some(outbox) = map.get(&(name.to_string(), incarnation))
        {
            let room = WINDOW.saturating_sub(outbox.window.available_permits());
            let frames = usize::try_from(frames).unwrap_or(WINDOW).min(room);
            outbox.window.add_permits(frames);
        }
    }

    /// Closes every outbox and waits (up to `patience`) until what each held is published:
    /// a node that leaves sends what its processes sent before it went.
    pub async fn drain(&self, patience: Duration) {
        let publishers: Vec<_> = match self.map.lock() {
            Ok(mut map) => map.drain().map(|(_, outbox)| outbox.publisher).collect(),
            Err(_) => return,
        };
        let all = futures::future::join_all(publishers);
        let _ = tokio::time::timeout(patience, all).await;
    }
}

impl Cluster {
    /// Sends a message to a process of another node. Never waits: a frame the outbox cannot
    /// take is refused at once; a message to a node known to be down is dropped (as a
    /// message to a process that is gone is).
    pub(in crate::runtime) fn send(
        &self,
        from: Option<&Pid>,
        payer: &Arc<Account>,
        to: &Pid,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<(), SendError> {
        let Some(node) = &to.node else {
            // A pid of no node names nothing on a node of a cluster.
            return Ok(());
        };
        let largest = self.max_frame.saturating_sub(wire::OVERHEAD);
        if payload.len() + topic.len() > largest {
            self.peers.dropped(&node.name);
            return Err(SendError::TooLarge(largest as u64));
        }
        let signal = Signal::Message {
            to: to.clone(),
            from: from.cloned(),
            topic,
            payload,
        };
        match self.enqueue(node, signal, payer) {
            Ok(()) | Err(Unsent::Down) => Ok(()),
            Err(Unsent::Refused(why)) => Err(SendError::Limit(why)),
        }
    }

    /// Sends a signal that keeps both sides of a monitor or link in step. One the outbox cannot take
    /// would leave them out of step: the peer is taken for down instead, which both sides
    /// then see.
    pub(super) fn control(&self, node: &NodeId, signal: Signal, payer: &Arc<Account>) {
        if let Err(Unsent::Refused(why)) = self.enqueue(node, signal, payer) {
            self.take_down(
                &node.name,
                node.incarnation,
                None,
                &format!("a signal could not be sent: {why}"),
            );
        }
    }

    /// Queues `signal` for `node`, numbered in its sequence, charged to `payer` until the
    /// client has taken it.
    pub(super) fn enqueue(
        &self,
        node: &NodeId,
        signal: Signal,
        payer: &Arc<Account>,
    ) -> Result<(), Unsent> {
        if self.peers.is_down(&node.name, node.incarnation) {
            self.peers.dropped(&node.name);
            return Err(Unsent::Down);
        }
        let key = (node.name.to_string(), node.incarnation);
        let Ok(mut outboxes) = self.outboxes.map.lock() else {
            return Err(Unsent::Down);
        };
        let outbox = outboxes.entry(key).or_insert_with(|| {
            let (frames, queued) = mpsc::channel(OUTBOX_FRAMES);
            let window = Arc::new(tokio::sync::Semaphore::new(WINDOW));
            let publisher = self.runtime.spawn(publish(
                self.client.clone(),
                wire::subject(&node.name, node.incarnation),
                queued,
                window.clone(),
            ));
            Outbox {
                next_seq: 0,
                frames,
                window,
                publisher,
            }
        });
        let frame = Frame {
            node: self.me.name.to_string(),
            incarnation: self.me.incarnation,
            session: self.session.load(Ordering::Relaxed),
            seq: outbox.next_seq,
            signal,
        };
        // Messages and spawn requests may be refused; the rest keep both sides in step.
        let refusable = matches!(frame.signal, Signal::Message { .. } | Signal::Spawn { .. });
        let full = || {
            self.peers.dropped(&node.name);
            Unsent::Refused(format!(
                "the outbox to node {} is full ({OUTBOX_FRAMES} frames)",
                node.name
            ))
        };
        if refusable && outbox.frames.capacity() <= KEPT_FOR_CONTROL {
            return Err(full());
        }
        let bytes = wire::encode(&frame);
        let receipt = payer.charge(bytes.len() as u64).map_err(|refused| {
            self.peers.dropped(&node.name);
            Unsent::Refused(refused.to_string())
        })?;
        match outbox.frames.try_send((bytes, receipt)) {
            Ok(()) => {
                outbox.next_seq += 1;
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(full()),
            // Its publisher ended: the connection is closed.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.peers.dropped(&node.name);
                Err(Unsent::Down)
            }
        }
    }
}

/// Why a frame was not queued.
pub(super) enum Unsent {
    /// Its node is down, or the connection closed: dropped, as to a process that is gone.
    Down,
    /// The outbox is full or the payer's `host_memory` refused it.
    Refused(String),
}

/// Publishes one peer's frames in order, each once the peer's credit allows; a frame's charge
/// is given back once the client has taken it.
async fn publish(
    client: async_nats::Client,
    subject: String,
    mut frames: mpsc::Receiver<(Vec<u8>, Charge)>,
    window: Arc<tokio::sync::Semaphore>,
) {
    while let Some((bytes, _receipt)) = frames.recv().await {
        match window.acquire().await {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
        if let Err(err) = client.publish(subject.clone(), bytes.into()).await {
            tracing::warn!("publishing to {subject}: {err}");
            return;
        }
    }
}

/// Delivers the frames that arrive for this node's processes, and credits each peer back
/// for every `CREDIT_EVERY` of its frames taken (delivered or not: each was in its window).
pub(super) async fn receive(cluster: Weak<Cluster>, mut inbox: async_nats::Subscriber) {
    let mut taken: HashMap<(String, u64), u64> = HashMap::new();
    while let Some(message) = inbox.next().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let Some(sender) = cluster.arrived(&message.payload) else {
            continue;
        };
        let count = taken.entry(sender.clone()).or_default();
        *count += 1;
        if *count < CREDIT_EVERY {
            continue;
        }
        *count = 0;
        // Few peers: the counts of those gone are dropped once in a while.
        if taken.len() > 1024 {
            taken.clear();
        }
        let (name, incarnation) = sender;
        let credit = wire::Credit {
            node: cluster.me.name.to_string(),
            incarnation: cluster.me.incarnation,
            frames: CREDIT_EVERY,
        };
        let subject = wire::credit_subject(&name, incarnation);
        let _ = cluster
            .client
            .publish(subject, wire::encode_credit(&credit).into())
            .await;
    }
}

/// Applies the credits this node's peers grant its outboxes.
pub(super) async fn receive_credits(cluster: Weak<Cluster>, mut credits: async_nats::Subscriber) {
    while let Some(message) = credits.next().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match wire::decode_credit(&message.payload) {
            Ok(credit) => {
                cluster
                    .outboxes
                    .credited(&credit.node, credit.incarnation, credit.frames)
            }
            Err(why) => {
                cluster.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dropped a malformed credit: {why}");
            }
        }
    }
}

impl Cluster {
    /// One frame arrived: checked, admitted by its sender's session, acted on. The sender it
    /// names (to credit back), if it was a frame at all.
    fn arrived(self: &Arc<Self>, bytes: &[u8]) -> Option<(String, u64)> {
        let frame = match wire::decode(bytes) {
            Ok(frame) => frame,
            Err(why) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("dropped a malformed cluster frame: {why}");
                return None;
            }
        };
        let sender = (frame.node.clone(), frame.incarnation);
        self.act(frame);
        Some(sender)
    }

    /// A frame decoded: checked, admitted by its sender's session, acted on.
    fn act(self: &Arc<Self>, frame: Frame) {
        let malformed = |why: &str| {
            self.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("dropped a malformed cluster frame: {why}");
        };
        let (ours, theirs) = frame.signal.parties();
        if let Some(ours) = ours
            && ours.node.as_ref() != Some(&self.me)
        {
            return malformed(&format!("about {ours}, not a pid of this node"));
        }
        // A node speaks only for its own processes.
        if let Some(theirs) = theirs
            && theirs
                .node
                .as_ref()
                .is_none_or(|n| *n.name != *frame.node || n.incarnation != frame.incarnation)
        {
            return malformed(&format!("from {theirs}, not a pid of node {}", frame.node));
        }
        let account = match self.admit(&frame.node, frame.incarnation, frame.session, frame.seq) {
            Verdict::Deliver(Some(account)) => account,
            Verdict::Deliver(None) | Verdict::Stale | Verdict::Gap { .. } => return,
        };
        let Some(node) = self.node() else {
            return;
        };
        match frame.signal {
            Signal::Message {
                to,
                from,
                topic,
                payload,
            } => {
                let delivered = node.send_from(
                    from.as_ref(),
                    &account,
                    &Destination::Pid(to),
                    topic,
                    payload,
                );
                self.peers.delivered(&frame.node, delivered.is_err());
            }
            // The entry is charged to the watcher's node, as its messages are; one it cannot
            // pay for would leave the two sides out of step, so the node is taken for down.
            Signal::Monitor { watcher, target } => match account.charge(OVERHEAD) {
                Ok(receipt) => self.monitored(watcher, target, receipt),
                Err(refused) => self.take_down(
                    &frame.node,
                    frame.incarnation,
                    Some(frame.session),
                    &format!("its monitors here are more than it may hold: {refused}"),
                ),
            },
            Signal::Demonitor { watcher, target } => self.demonitored(&watcher, &target),
            Signal::Exit { from, to, reason } => self.exit_arrived(from, &to, reason),
            Signal::Spawn {
                req,
                parent,
                parent_entry,
                entry,
                host,
                args,
                monitored,
                linked,
            } => {
                let asked = super::spawn::Asked {
                    req,
                    parent,
                    parent_entry,
                    entry,
                    host,
                    args: args.into_iter().map(|a| a.into_vec()).collect(),
                    monitored,
                    linked,
                };
                self.spawn_asked(&node, asked, account);
            }
            Signal::Leaving => self.take_down(
                &frame.node,
                frame.incarnation,
                Some(frame.session),
                "it left",
            ),
            Signal::Spawned { req, reply } => self.spawned(req, reply.into()),
            Signal::Link { from, to } => self.linked_from(from, &to),
            Signal::Terminate { from, to } => {
                node.terminate(&to, ExitReason::Killed(from.to_string()));
            }
            Signal::Cancel {
                to,
                reason,
                grace_ms,
                ..
            } => {
                node.cancel(&to, reason, Duration::from_millis(grace_ms));
            }
            Signal::Unlink { from, to } => self.unlinked_from(&from, &to),
            Signal::LinkExit { from, to, reason } => self.link_exit_arrived(from, &to, reason),
        }
    }
}
