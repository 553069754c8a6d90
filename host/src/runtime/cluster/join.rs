//! Joining: connect, check the server and the cluster, claim the node's name. Each check that
//! fails is a [`JoinError`] that says what to change; nothing of the node runs before it.
//!
//! The members bucket keeps one record per node name, refreshed by each heartbeat and gone
//! `down_after` after the last one (the bucket's `max_age`), so a name is claimed with a
//! key-value `create`: it succeeds only if no live node holds it. The revision of that create
//! is the node's **incarnation** (unique and growing, so a pid of an earlier run of the same
//! name never names a process of this one), and the revision of each (re)join its
//! **session**.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::config::{ClusterConfig, JoinError};
use super::links::RemoteLinks;
use super::members::{self, Peers};
use super::monitors::RemoteMonitors;
use super::names::{self, ClusterNames};
use super::placements;
use super::spawn::PendingSpawns;
use super::transport::Outboxes;
use super::wire;
use crate::runtime::node::Node;
use wasmhost_types::NodeId;

/// The bucket of the cluster's members: node name → [`Member`].
pub(super) const MEMBERS: &str = "wasmhost_members";
/// The bucket of registered names: hex of the name → the holder's pid.
pub(super) const NAMES: &str = "wasmhost_names";
/// The bucket of placed units: hex of the unit's id → the node that runs it (`b.7`).
pub(super) const PLACEMENTS: &str = "wasmhost_placements";
/// Frames that arrived and wait for the inbox to take them, at most: each peer has at most
/// its window of frames in flight to this node (`transport.rs`), so 32 peers at full window
/// fit. Past that the client drops them, which the next frame's sequence number shows as a
/// gap (the sender's node is then down, both sides see it).
const INBOX_FRAMES: usize = 1 << 18;
/// The oldest server wasmhost joins (per-key markers, `kv` TTLs).
const OLDEST_SERVER: (u64, u64) = (2, 11);

/// A node's record in the members bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Member {
    /// 0 while the node is still joining.
    pub incarnation: u64,
    pub session: u64,
    /// The digest of the registry it runs.
    pub registry: String,
    /// The wasmhost version it runs.
    pub version: String,
    /// The placed units it runs when its turn comes (`ClusterConfig::runs`).
    #[serde(default)]
    pub runs: Vec<String>,
}

/// This node's membership of a cluster: its connection, its buckets, its peers as it sees
/// them, and its outboxes. Made by [`Cluster::join`], given to `NodeBuilder::cluster`.
pub struct Cluster {
    pub(super) config: ClusterConfig,
    pub(super) me: NodeId,
    /// The revision of this node's latest (re)join.
    pub(super) session: AtomicU64,
    /// The revision of this node's own record, which each heartbeat moves on.
    pub(super) revision: AtomicU64,
    pub(super) client: async_nats::Client,
    pub(super) members: kv::Store,
    pub(super) names_kv: kv::Store,
    pub(super) placements_kv: kv::Store,
    /// The largest frame the server takes (its `max_payload`).
    pub(super) max_frame: usize,
    pub(super) peers: Peers,
    pub(super) names: ClusterNames,
    pub(super) held_placements: placements::Held,
    /// Moves on each time a peer comes up or goes down.
    pub(super) peers_changed: tokio::sync::watch::Sender<u64>,
    pub(super) outboxes: Outboxes,
    pub(super) monitors: RemoteMonitors,
    pub(super) links: RemoteLinks,
    pub(super) spawns: PendingSpawns,
    /// Frames that arrived malformed, misaddressed or forged, and were dropped.
    pub(super) malformed: AtomicU64,
    /// Set when this node lost its connection: its next heartbeat joins again.
    pub(super) out_of_touch: AtomicBool,
    /// Moves on each time the connection comes back: the bucket watches are made again.
    pub(super) reconnected: tokio::sync::watch::Sender<u64>,
    /// The node, once built (`attach`).
    pub(super) node: OnceLock<Weak<Node>>,
    /// The runtime the cluster's tasks run on (the one it joined in).
    pub(super) runtime: tokio::runtime::Handle,
    inbox: Mutex<Option<async_nats::Subscriber>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Cluster {
    /// Joins the cluster `config` names: connects, checks the server (2.11 or later, with
    /// JetStream), the buckets and the registry every member runs, and claims the node's
    /// name, waiting up to `down_after` for a holder that stopped heartbeating to go.
    pub async fn join(config: ClusterConfig) -> Result<Arc<Cluster>, JoinError> {
        let url = config.url.clone();
        let nats = |what: &'static str| {
            let url = url.clone();
            move |err: &dyn std::fmt::Display| JoinError::Nats {
                url,
                what,
                why: err.to_string(),
            }
        };
        let (events, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("wasmhost node {}", config.node))
            .connection_timeout(Duration::from_secs(3))
            .subscription_capacity(INBOX_FRAMES)
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    let _ = events.send(event);
                }
            });
        if let Some(path) = &config.credentials {
            options = options.credentials_file(path).await.map_err(|err| {
                JoinError::Settings(format!("credentials = {}: {err}", path.display()))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options.connect(&config.url).await.map_err(|err| {
            let (url, why) = (url.clone(), err.to_string());
            if err.kind() == async_nats::ConnectErrorKind::AuthorizationViolation {
                JoinError::NotAuthorized { url, why }
            } else if why.contains("certificate") {
                JoinError::Untrusted { url, why }
            } else {
                JoinError::Unreachable { url, why }
            }
        })?;
        let info = client.server_info();
        if !at_least(&info.version, OLDEST_SERVER) {
            return Err(JoinError::TooOld {
                url,
                version: info.version,
            });
        }
        let js = jetstream::new(client.clone());
        if !info.jetstream || js.query_account().await.is_err() {
            return Err(JoinError::NoJetStream { url });
        }
        let members = bucket(&js, MEMBERS, config.down_after)
            .await
            .map_err(|err| nats("opening the members bucket")(&err))??;
        let names_kv = bucket(&js, NAMES, Duration::ZERO)
            .await
            .map_err(|err| nats("opening the names bucket")(&err))??;
        let placements_kv = bucket(&js, PLACEMENTS, Duration::ZERO)
            .await
            .map_err(|err| nats("opening the placements bucket")(&err))??;

        check_registries(&members, &config).await?;
        let (incarnation, revision) = claim(&members, &config).await?;
        let me = NodeId {
            name: Arc::from(config.node.as_str()),
            incarnation,
        };
        let inbox = client
            .subscribe(wire::subject(&config.node, incarnation))
            .await
            .map_err(|err| nats("subscribing to this node's subject")(&err))?;
        let credits = client
            .subscribe(wire::credit_subject(&config.node, incarnation))
            .await
            .map_err(|err| nats("subscribing to this node's credits")(&err))?;
        let cluster = Arc::new(Cluster {
            me,
            session: AtomicU64::new(incarnation),
            revision: AtomicU64::new(revision),
            max_frame: info.max_payload,
            client,
            members,
            names_kv,
            placements_kv,
            peers: Peers::default(),
            names: ClusterNames::default(),
            held_placements: placements::Held::default(),
            peers_changed: tokio::sync::watch::Sender::new(0),
            outboxes: Outboxes::default(),
            monitors: RemoteMonitors::default(),
            links: RemoteLinks::default(),
            spawns: PendingSpawns::default(),
            malformed: AtomicU64::new(0),
            out_of_touch: AtomicBool::new(false),
            reconnected: tokio::sync::watch::Sender::new(0),
            node: OnceLock::new(),
            runtime: tokio::runtime::Handle::current(),
            inbox: Mutex::new(Some(inbox)),
            tasks: Mutex::new(Vec::new()),
            config,
        });
        // The names others hold are known before any process looks one up.
        let current = names::watch(&cluster)
            .await
            .map_err(|err| nats("watching the names bucket")(&err))?;
        let watch = members::watch(&cluster)
            .await
            .map_err(|err| nats("watching the members bucket")(&err))?;
        cluster.keep(current);
        cluster.keep(watch);
        cluster.keep(tokio::spawn(super::transport::receive_credits(
            Arc::downgrade(&cluster),
            credits,
        )));
        cluster.keep(tokio::spawn(members::heartbeat(Arc::downgrade(&cluster))));
        cluster.keep(tokio::spawn(members::connection(
            Arc::downgrade(&cluster),
            events_rx,
        )));
        tracing::info!(
            node = %cluster.me.name,
            incarnation,
            url = %cluster.config.url,
            "joined the cluster"
        );
        Ok(cluster)
    }

    /// The node as the cluster knows it: its name and incarnation.
    pub fn node_id(&self) -> &NodeId {
        &self.me
    }

    /// The session of this node's current membership.
    pub fn session(&self) -> u64 {
        self.session.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Frames that arrived malformed, misaddressed or forged, and were dropped.
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::Relaxed)
    }

    /// Starts delivering what arrives for `node`'s processes: called once, when the node
    /// that carries this cluster's node id is built.
    pub(in crate::runtime) fn attach(self: &Arc<Self>, node: &Arc<Node>) {
        if self.node.set(Arc::downgrade(node)).is_err() {
            return;
        }
        let inbox = self.inbox.lock().ok().and_then(|mut inbox| inbox.take());
        if let Some(inbox) = inbox {
            self.keep(
                self.runtime
                    .spawn(super::transport::receive(Arc::downgrade(self), inbox)),
            );
        }
    }

    /// The node, while it lives.
    pub(super) fn node(&self) -> Option<Arc<Node>> {
        self.node.get()?.upgrade()
    }

    pub(super) fn keep(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }

    /// Leaves the cluster at once: what its outboxes hold is published (for up to 2 s), and
    /// the node's record and the names it held go, so the others see it gone without waiting
    /// out `down_after`.
    pub async fn leave(&self) {
        // What this node's processes sent goes out first (a reply sent just before the end),
        // then word that it leaves, after it on each peer's way: a peer takes this node for
        // down when everything before has arrived.
        if let Some(node) = self.node() {
            for (name, incarnation) in self.peers.up() {
                let peer = NodeId {
                    name: Arc::from(name.as_str()),
                    incarnation,
                };
                let _ = self.enqueue(&peer, wire::Signal::Leaving, &node.account);
            }
        }
        self.outboxes.drain(Duration::from_secs(2)).await;
        self.names.release_all(self).await;
        let revision = self.revision.load(Ordering::Relaxed);
        let _ = self
            .members
            .delete_expect_revision(&*self.me.name, Some(revision))
            .await;
        let _ = self.client.flush().await;
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }

    /// This node's record as a heartbeat writes it.
    pub(super) fn record(&self) -> bytes::Bytes {
        member_record(
            self.me.incarnation,
            self.session.load(Ordering::Relaxed),
            &self.config,
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
    }
}

pub(super) fn member_record(
    incarnation: u64,
    session: u64,
    config: &ClusterConfig,
) -> bytes::Bytes {
    let member = Member {
        incarnation,
        session,
        registry: config.registry.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        runs: config.runs.clone(),
    };
    serde_json::to_vec(&member).unwrap_or_default().into()
}

/// Watches `store` from its current values on: applies those before it returns (so what a
/// node knows at join is whole), then follows the changes on a task of its own.
pub(super) async fn watch_bucket(
    cluster: &Arc<Cluster>,
    store: kv::Store,
    apply: fn(&Arc<Cluster>, kv::Entry),
    idle: Option<Duration>,
) -> Result<JoinHandle<()>, kv::WatchError> {
    let mut entries = store.watch_with_history(">").await?;
    let pending = store.status().await.map(|s| s.values()).unwrap_or(0);
    if pending > 0 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(entry))) = tokio::time::timeout_at(deadline, entries.next()).await {
            let current = entry.delta == 0;
            apply(cluster, entry);
            if current {
                break;
            }
        }
    }
    let weak = Arc::downgrade(cluster);
    Ok(tokio::spawn(follow(weak, store, entries, apply, idle)))
}

/// Applies each change a bucket's watch brings, for as long as the cluster lives. A watch
/// ends, fails or stalls when the server restarts or the connection drops; it is made again
/// (from the bucket's current values) then, and whenever the connection comes back, so the
/// copy this node keeps stays whole. A watch that brings nothing for `idle` (the members
/// bucket, which heartbeats keep busy) is taken for stalled too.
async fn follow(
    cluster: Weak<Cluster>,
    store: kv::Store,
    mut entries: kv::Watch,
    apply: fn(&Arc<Cluster>, kv::Entry),
    idle: Option<Duration>,
) {
    let Some(mut reconnected) = cluster.upgrade().map(|c| c.reconnected.subscribe()) else {
        return;
    };
    loop {
        loop {
            let stalled = async {
                match idle {
                    Some(idle) => tokio::time::sleep(idle).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stalled => break,
                entry = entries.next() => {
                    let Some(Ok(entry)) = entry else { break };
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    apply(&cluster, entry);
                }
                changed = reconnected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        let pause = match cluster.upgrade() {
            Some(cluster) => cluster.config.heartbeat,
            None => return,
        };
        loop {
            tokio::time::sleep(pause).await;
            if cluster.strong_count() == 0 {
                return;
            }
            if let Ok(watch) = store.watch_with_history(">").await {
                entries = watch;
                break;
            }
        }
    }
}

/// Whether a server's `version` ("2.15.1") is `oldest` or later.
fn at_least(version: &str, oldest: (u64, u64)) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|part| part.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= oldest,
        _ => false,
    }
}

/// The bucket `name`, made if it is missing; `max_age` (zero: none) must match an existing
/// one's.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<Result<kv::Store, JoinError>, String> {
    if let Ok(store) = js.get_key_value(name).await {
        let status = store.status().await.map_err(|err| err.to_string())?;
        if status.max_age() != max_age {
            return Ok(Err(JoinError::DownAfter {
                found: status.max_age(),
                wanted: max_age,
            }));
        }
        return Ok(Ok(store));
    }
    let config = kv::Config {
        bucket: name.to_string(),
        history: 1,
        max_age,
        ..Default::default()
    };
    js.create_key_value(config)
        .await
        .map(Ok)
        .map_err(|err| err.to_string())
}

/// Refuses to join a cluster whose live members run another registry.
async fn check_registries(members: &kv::Store, config: &ClusterConfig) -> Result<(), JoinError> {
    let nats = |err: &dyn std::fmt::Display| JoinError::Nats {
        url: config.url.clone(),
        what: "reading the members bucket",
        why: err.to_string(),
    };
    let mut keys = members.keys().await.map_err(|err| nats(&err))?;
    while let Some(key) = keys.next().await {
        let key = key.map_err(|err| nats(&err))?;
        if key == config.node {
            continue;
        }
        let Some(value) = members.get(&key).await.map_err(|err| nats(&err))? else {
            continue;
        };
        let Ok(member) = serde_json::from_slice::<Member>(&value) else {
            continue;
        };
        if member.registry != config.registry {
            return Err(JoinError::OtherRegistry {
                node: key,
                theirs: member.registry,
                mine: config.registry.clone(),
            });
        }
    }
    Ok(())
}

/// Claims the node's name: the incarnation, and the revision of the node's record.
async fn claim(members: &kv::Store, config: &ClusterConfig) -> Result<(u64, u64), JoinError> {
    let nats = |what: &'static str| {
        move |err: &dyn std::fmt::Display| JoinError::Nats {
            url: config.url.clone(),
            what,
            why: err.to_string(),
        }
    };
    // A holder that stopped heartbeating is gone from the bucket within `down_after`.
    let deadline = Instant::now() + config.down_after + config.heartbeat;
    let incarnation = loop {
        match members
            .create(&config.node, member_record(0, 0, config))
            .await
        {
            Ok(revision) => break revision,
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                if Instant::now() >= deadline {
                    return Err(JoinError::NameHeld {
                        node: config.node.clone(),
                        ago: config.down_after,
                    });
                }
                tokio::time::sleep(config.heartbeat / 4).await;
            }
            Err(err) => return Err(nats("claiming the node name")(&err)),
        }
    };
    let revision = members
        .update(
            &config.node,
            member_record(incarnation, incarnation, config),
            incarnation,
        )
        .await
        .map_err(|err| nats("writing the node's record")(&err))?;
    Ok((incarnation, revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_older_than_2_11_are_refused() {
        for (version, fine) in [
            ("2.15.1", true),
            ("2.11.0", true),
            ("v2.11.3", true),
            ("3.0.0", true),
            ("2.10.22", false),
            ("2.9.25", false),
            ("2", false),
            ("", false),
            ("two.eleven", false),
        ] {
            assert_eq!(at_least(version, OLDEST_SERVER), fine, "{version}");
        }
    }
}
