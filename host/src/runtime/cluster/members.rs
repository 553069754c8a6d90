//! Who is up. Each node's record in the members bucket is refreshed by its heartbeat; every
//! node watches the bucket. A peer is **down** — once, on this node — when it is silent for
//! `down_after`, when its record goes, when a newer incarnation or session of it appears,
//! when its frames show a gap, or, for every peer at once, when this node loses its own
//! connection. A down session stays down: what it sends later is dropped.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::kv::{self, Operation};
use tokio::task::JoinHandle;

use super::join::{Cluster, Member, member_record, watch_bucket};
use crate::runtime::process::Account;
use wasmhost_types::NodeId;

/// The peers this node has heard of, by name.
#[derive(Default)]
pub(super) struct Peers {
    map: Mutex<HashMap<String, Peer>>,
}

/// A peer's latest incarnation and session as this node knows them.
pub(super) struct Peer {
    pub incarnation: u64,
    pub session: u64,
    pub up: bool,
    /// Since when it has been up, or down.
    pub since: SystemTime,
    last_heard: Instant,
    /// The sequence number its next frame must carry; `None` until a frame of this session
    /// has been seen since it was (re)admitted.
    next_seq: Option<u64>,
    /// Taken for down because this node was out of touch, not for its own silence: the same
    /// session comes back up when it is heard of again.
    forgiven: bool,
    /// The placed units it runs when its turn comes, as its record says.
    runs: Vec<String>,
    /// What its messages waiting here cost, charged to the peer.
    pub account: Option<Arc<Account>>,
    pub received: u64,
    /// Its messages this node's processes refused (a mailbox full, a limit).
    pub refused: u64,
    /// Messages to it, refused or dropped on this side.
    pub dropped: u64,
}

/// A peer as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    pub name: String,
    pub incarnation: u64,
    pub session: u64,
    pub up: bool,
    pub since: SystemTime,
    pub received: u64,
    pub refused: u64,
    pub dropped: u64,
}

/// What a heartbeat or frame says of its session.
enum Heard {
    /// The session known, and up.
    Current,
    /// A session not known before; the earlier one, if it was up (its incarnation), goes
    /// down.
    New(Option<u64>),
    /// An older session, or one taken for down.
    Stale,
}

/// What to do with a frame from a peer's session.
pub(super) enum Verdict {
    /// Deliver it, charging what waits to this account.
    Deliver(Option<Arc<Account>>),
    /// From a session that is down or older than the one known: drop it.
    Stale,
    /// Frames were lost: the peer's session is taken for down.
    Gap { expected: u64 },
}

impl Peer {
    fn new(incarnation: u64, session: u64) -> Peer {
        Peer {
            incarnation,
            session,
            up: true,
            since: SystemTime::now(),
            last_heard: Instant::now(),
            next_seq: None,
            forgiven: false,
            runs: Vec::new(),
            account: None,
            received: 0,
            refused: 0,
            dropped: 0,
        }
    }
}

impl Peers {
    /// A peer's session `(incarnation, session)` was heard of (a heartbeat or a frame): a
    /// newer one replaces the one known (which goes down first if it was up).
    fn heard(&self, name: &str, incarnation: u64, session: u64) -> Heard {
        let Ok(mut map) = self.map.lock() else {
            return Heard::Stale;
        };
        let Some(peer) = map.get_mut(name) else {
            map.insert(name.to_string(), Peer::new(incarnation, session));
            return Heard::New(None);
        };
        match (incarnation, session).cmp(&(peer.incarnation, peer.session)) {
            std::cmp::Ordering::Less => Heard::Stale,
            std::cmp::Ordering::Equal if peer.up => {
                peer.last_heard = Instant::now();
                Heard::Current
            }
            std::cmp::Ordering::Equal if peer.forgiven => {
                let counters = (peer.received, peer.refused, peer.dropped);
                *peer = Peer::new(incarnation, session);
                (peer.received, peer.refused, peer.dropped) = counters;
                Heard::New(None)
            }
            std::cmp::Ordering::Equal => Heard::Stale,
            std::cmp::Ordering::Greater => {
                let old = peer.up.then_some(peer.incarnation);
                let counters = (peer.received, peer.refused, peer.dropped);
                *peer = Peer::new(incarnation, session);
                (peer.received, peer.refused, peer.dropped) = counters;
                Heard::New(old)
            }
        }
    }

    /// Takes a peer's session for down if it is the current one and up; whether it was.
    /// `forgiven`: for this node's own loss of touch, so the session may come back.
    fn down(&self, name: &str, incarnation: u64, session: Option<u64>, forgiven: bool) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        match map.get_mut(name) {
            Some(peer)
                if peer.up
                    && peer.incarnation == incarnation
                    && session.is_none_or(|s| s == peer.session) =>
            {
                peer.up = false;
                peer.forgiven = forgiven;
                peer.since = SystemTime::now();
                peer.account = None;
                true
            }
            _ => false,
        }
    }

    /// Whether the node `name`'s incarnation is known to be down (an unknown one is not:
    /// its first heartbeat may not have arrived yet).
    pub fn is_down(&self, name: &str, incarnation: u64) -> bool {
        let Ok(map) = self.map.lock() else {
            return true;
        };
        map.get(name).is_some_and(|peer| {
            incarnation < peer.incarnation || (incarnation == peer.incarnation && !peer.up)
        })
    }

    /// Counts a message to `name` dropped or refused on this side.
    pub fn dropped(&self, name: &str) {
        if let Ok(mut map) = self.map.lock()
            && let Some(peer) = map.get_mut(name)
        {
            peer.dropped += 1;
        }
    }

    /// Counts a frame from `name` delivered (or refused by its receiver).
    pub fn delivered(&self, name: &str, refused: bool) {
        if let Ok(mut map) = self.map.lock()
            && let Some(peer) = map.get_mut(name)
        {
            peer.received += 1;
            peer.refused += u64::from(refused);
        }
    }

    /// Up peers silent for longer than `down_after`.
    fn silent(&self, down_after: Duration) -> Vec<(String, u64, u64)> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(_, peer)| peer.up && peer.last_heard.elapsed() > down_after)
            .map(|(name, peer)| (name.clone(), peer.incarnation, peer.session))
            .collect()
    }

    /// The incarnation and session of the node `name` if it is up.
    fn session_of(&self, name: &str) -> Option<(u64, u64)> {
        let map = self.map.lock().ok()?;
        map.get(name)
            .filter(|peer| peer.up)
            .map(|peer| (peer.incarnation, peer.session))
    }

    /// The incarnation of the node `name` if it is up.
    pub fn current(&self, name: &str) -> Option<u64> {
        let map = self.map.lock().ok()?;
        map.get(name)
            .filter(|peer| peer.up)
            .map(|peer| peer.incarnation)
    }

    /// Whether the node `name` is up and runs the placed unit `unit` when its turn comes.
    pub fn up_for(&self, name: &str, unit: &str) -> bool {
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.get(name)
            .is_some_and(|peer| peer.up && peer.runs.iter().any(|u| u == unit))
    }

    /// What the record of `name`'s `incarnation` says it runs.
    fn runs(&self, name: &str, incarnation: u64, runs: Vec<String>) {
        if let Ok(mut map) = self.map.lock()
            && let Some(peer) = map.get_mut(name)
            && peer.incarnation == incarnation
        {
            peer.runs = runs;
        }
    }

    pub(super) fn up(&self) -> Vec<(String, u64)> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        map.iter()
            .filter(|(_, peer)| peer.up)
            .map(|(name, peer)| (name.clone(), peer.incarnation))
            .collect()
    }

    pub fn views(&self) -> Vec<PeerView> {
        let Ok(map) = self.map.lock() else {
            return Vec::new();
        };
        let mut views: Vec<_> = map
            .iter()
            .map(|(name, peer)| PeerView {
                name: name.clone(),
                incarnation: peer.incarnation,
                session: peer.session,
                up: peer.up,
                since: peer.since,
                received: peer.received,
                refused: peer.refused,
                dropped: peer.dropped,
            })
            .collect();
        views.sort_by(|a, b| a.name.cmp(&b.name));
        views
    }
}

impl Cluster {
    /// The peers this node has heard of.
    pub fn peers(&self) -> Vec<PeerView> {
        self.peers.views()
    }

    /// Whether another node's incarnation `node` may be up: not known to be down, and the
    /// current record of its name has that incarnation (a bucket that cannot be read says
    /// yes, so nothing is taken from a node that may still hold it).
    pub(super) async fn node_alive(&self, node: &NodeId) -> bool {
        if self.peers.is_down(&node.name, node.incarnation) {
            return false;
        }
        match self.members.get(&*node.name).await {
            Ok(Some(record)) => serde_json::from_slice::<Member>(&record)
                .is_ok_and(|member| member.incarnation == node.incarnation),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Moves on each time a peer comes up or goes down (placed units look again whose
    /// turn it is).
    pub fn peer_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.peers_changed.subscribe()
    }

    /// A frame of `name`'s session arrived with `seq`: deliver it or not.
    pub(super) fn admit(&self, name: &str, incarnation: u64, session: u64, seq: u64) -> Verdict {
        match self.peers.heard(name, incarnation, session) {
            Heard::Current => {}
            Heard::New(old) => self.came_up(name, incarnation, session, old),
            Heard::Stale => return Verdict::Stale,
        }
        let node = self.node();
        let verdict = {
            let Ok(mut map) = self.peers.map.lock() else {
                return Verdict::Stale;
            };
            let Some(peer) = map.get_mut(name) else {
                return Verdict::Stale;
            };
            // A sender numbers its frames to this node from 0 in each outbox, and opens a
            // new one when it takes this node for down or sees it join again; the first
            // frame seen of a session sets where its sequence is.
            let expected = peer.next_seq.unwrap_or(seq);
            if seq != expected && seq != 0 {
                Verdict::Gap { expected }
            } else {
                peer.next_seq = Some(seq + 1);
                if peer.account.is_none()
                    && let Some(node) = &node
                {
                    peer.account = Some(node.new_account(node.defaults().host_memory));
                }
                Verdict::Deliver(peer.account.clone())
            }
        };
        if let Verdict::Gap { expected } = verdict
            && self.peers.down(name, incarnation, Some(session), false)
        {
            self.went_down(
                name,
                incarnation,
                &format!("frame {seq} arrived where {expected} was due"),
            );
        }
        verdict
    }

    /// A new session of a peer is up; the one before it, if it was up, goes down.
    fn came_up(&self, name: &str, incarnation: u64, session: u64, old: Option<u64>) {
        if let Some(old) = old {
            self.went_down(name, old, "a newer session of it appeared");
        }
        tracing::info!(peer = name, incarnation, session, "node up");
        self.peers_changed.send_modify(|n| *n += 1);
    }

    /// What a peer's going down undoes here: its outbox, the monitors across (each of this
    /// node's gets `no-connection`); its names are ignored from now on.
    fn went_down(&self, name: &str, incarnation: u64, why: &str) {
        tracing::warn!(peer = name, incarnation, "node down: {why}");
        self.outboxes.close(name, incarnation);
        self.monitors_lost(name, incarnation);
        self.links_lost(&NodeId {
            name: std::sync::Arc::from(name),
            incarnation,
        });
        self.spawns_lost(name, incarnation);
        self.peers_changed.send_modify(|n| *n += 1);
    }

    pub(super) fn take_down(&self, name: &str, incarnation: u64, session: Option<u64>, why: &str) {
        if self.peers.down(name, incarnation, session, false) {
            self.went_down(name, incarnation, why);
        }
    }

    /// This node was out of touch: every peer is down here, and each comes back up when it
    /// is heard of again (its own session goes on; it sees this node's new session).
    pub(super) fn lose_touch(&self, why: &str) {
        for (name, incarnation) in self.peers.up() {
            if self.peers.down(&name, incarnation, None, true) {
                self.went_down(&name, incarnation, why);
            }
        }
    }
}

/// Watches the members bucket from its current records on; returns once those are known,
/// so a process of a node that has just joined finds the nodes that were up before it.
pub(super) async fn watch(cluster: &Arc<Cluster>) -> Result<JoinHandle<()>, kv::WatchError> {
    let (store, idle) = (cluster.members.clone(), cluster.config.down_after);
    watch_bucket(cluster, store, member_seen, Some(idle)).await
}

/// One change of the members bucket.
fn member_seen(cluster: &Arc<Cluster>, entry: kv::Entry) {
    if entry.key == *cluster.me.name {
        return;
    }
    match entry.operation {
        Operation::Put => {
            let Ok(member) = serde_json::from_slice::<Member>(&entry.value) else {
                cluster.malformed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            if member.incarnation == 0 {
                return;
            }
            let heard = cluster
                .peers
                .heard(&entry.key, member.incarnation, member.session);
            cluster
                .peers
                .runs(&entry.key, member.incarnation, member.runs);
            if let Heard::New(old) = heard {
                cluster.came_up(&entry.key, member.incarnation, member.session, old);
            }
            if let Heard::Stale = heard {
                // A session this node took for down still heartbeats: it has not seen its
                // loss. Its record goes, so its next heartbeat fails and it joins again
                // with a new session: both sides see the loss once.
                let members = cluster.members.clone();
                cluster.runtime.spawn(async move {
                    let _ = members
                        .delete_expect_revision(&entry.key, Some(entry.revision))
                        .await;
                });
            }
        }
        Operation::Delete | Operation::Purge => {
            let Some((incarnation, session)) = cluster.peers.session_of(&entry.key) else {
                return;
            };
            // A node that leaves says so in its frames, after what it sent; its record may
            // go before those arrive here. A heartbeat later, the session is down if that
            // word has not come (a node removed by someone else, or whose word was lost) —
            // unless the bucket holds its record again: a watch that lags behind the frames
            // may bring the deletion of a record the node has since written anew.
            let (weak, name) = (Arc::downgrade(cluster), entry.key.clone());
            let grace = cluster.config.heartbeat;
            cluster.runtime.spawn(async move {
                tokio::time::sleep(grace).await;
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let current = match cluster.members.get(&name).await {
                    Ok(Some(record)) => serde_json::from_slice::<Member>(&record).ok(),
                    _ => None,
                };
                if current.is_some_and(|m| (m.incarnation, m.session) == (incarnation, session)) {
                    return;
                }
                cluster.take_down(&name, incarnation, Some(session), "its record went");
            });
        }
    }
}

/// Refreshes this node's record every heartbeat, and takes silent peers for down. If the
/// record is gone (this node was out of touch for `down_after`, and the others took it for
/// down), it joins again with a new session.
pub(super) async fn heartbeat(cluster: Weak<Cluster>) {
    let period = match cluster.upgrade() {
        Some(cluster) => cluster.config.heartbeat,
        None => return,
    };
    let mut ticks = tokio::time::interval(period / 4);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        ticks.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        // A tick this late means this node itself was stalled (stopped, starved): the peers'
        // silence is its own, so it loses touch and joins again rather than blame them.
        let stalled = last_tick.elapsed();
        last_tick = Instant::now();
        if stalled > cluster.config.down_after {
            cluster.lose_touch(&format!("this node was stalled for {stalled:.1?}"));
            cluster.out_of_touch.store(true, Ordering::Relaxed);
        }
        for (name, incarnation, session) in cluster.peers.silent(cluster.config.down_after) {
            cluster.take_down(
                &name,
                incarnation,
                Some(session),
                &format!("no heartbeat for {:?}", cluster.config.down_after),
            );
        }
        if last_beat.elapsed() < period {
            continue;
        }
        last_beat = Instant::now();
        if cluster.out_of_touch.swap(false, Ordering::Relaxed) {
            rejoin(&cluster).await;
            continue;
        }
        let name = &*cluster.me.name;
        let revision = cluster.revision.load(Ordering::Relaxed);
        match cluster
            .members
            .update(name, cluster.record(), revision)
            .await
        {
            Ok(revision) => cluster.revision.store(revision, Ordering::Relaxed),
            Err(err) => {
                tracing::warn!("heartbeat refused ({err}); joining again");
                rejoin(&cluster).await;
            }
        }
    }
}

/// Joins again after this node was out of touch (its connection lost, or the others took it
/// for down): every peer down here too, and a new session, whose revision is its number.
async fn rejoin(cluster: &Arc<Cluster>) {
    cluster.lose_touch("this node was out of touch");
    let name = &*cluster.me.name;
    let joining = member_record(0, 0, &cluster.config);
    let revision = cluster.revision.load(Ordering::Relaxed);
    let first = match cluster
        .members
        .update(name, joining.clone(), revision)
        .await
    {
        Ok(first) => first,
        Err(_) => match cluster.members.create(name, joining).await {
            Ok(first) => first,
            Err(err) => {
                tracing::error!(
                    "cannot join the cluster again ({err}): node name {name} may be held by another node"
                );
                cluster.out_of_touch.store(true, Ordering::Relaxed);
                return;
            }
        },
    };
    cluster.session.store(first, Ordering::Relaxed);
    cluster.outboxes.clear();
    match cluster.members.update(name, cluster.record(), first).await {
        Ok(revision) => {
            cluster.revision.store(revision, Ordering::Relaxed);
            tracing::info!(session = first, "joined the cluster again");
            let weak = Arc::downgrade(cluster);
            cluster.runtime.spawn(async move {
                // The server may still be recovering its store: a few tries, a heartbeat apart.
                for _ in 0..10 {
                    let Some(cluster) = weak.upgrade() else {
                        return;
                    };
                    if cluster.reassert_names().await {
                        return;
                    }
                    let pause = cluster.config.heartbeat;
                    drop(cluster);
                    tokio::time::sleep(pause).await;
                }
                tracing::warn!("could not assert this node's names again after joining again");
            });
        }
        Err(_) => cluster.out_of_touch.store(true, Ordering::Relaxed),
    }
}

/// Follows this node's connection: while it is lost, every peer is down here.
pub(super) async fn connection(
    cluster: Weak<Cluster>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<async_nats::Event>,
) {
    let mut lost = false;
    while let Some(event) = events.recv().await {
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        match event {
            async_nats::Event::Disconnected => {
                lost = true;
                tracing::warn!("lost the connection to the cluster");
                cluster.out_of_touch.store(true, Ordering::Relaxed);
                cluster.lose_touch("this node lost its connection");
            }
            async_nats::Event::Connected if lost => {
                tracing::info!("connected to the cluster again");
                cluster.reconnected.send_modify(|n| *n += 1);
            }
            other => tracing::debug!("cluster connection: {other}"),
        }
    }
}
