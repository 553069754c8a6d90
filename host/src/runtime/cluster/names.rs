//! Registered names across the cluster. The names bucket maps each name (as hex: keys allow
//! few characters) to its holder's pid; `register` is a compare-and-set there (a `create`,
//! or an `update` on the revision of a holder that is gone), so two nodes never both get a
//! name. Every node watches the bucket and answers lookups from its copy. A name is released
//! when its holder exits (a delete on the revision it was registered at), and a name whose
//! holder's node is down is ignored at once and taken over by the next `register`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv::{self, Operation};
use dashmap::DashMap;
use tokio::task::JoinHandle;

use super::join::{Cluster, watch_bucket};
use wasmhost_types::{Pid, RegisterError};

/// The watched copy of the names bucket, and the names this node's processes hold there.
#[derive(Default)]
pub(super) struct ClusterNames {
    /// Name → holder and the revision it was registered at.
    copy: DashMap<String, Pid>,
    /// Names held by this node's processes: name → (process id, revision).
    held: Mutex<HashMap<String, (u64, u64)>>,
}

fn key(name: &str) -> String {
    hex::encode(name)
}

impl Cluster {
    /// Registers `name` for `pid` across the cluster, unless a live process of any node
    /// holds it. `here_alive` says whether a pid of this node is alive.
    pub(in crate::runtime) async fn claim(
        &self,
        name: &str,
        pid: &Pid,
        here_alive: impl Fn(&Pid) -> bool,
    ) -> Result<(), RegisterError> {
        let key = key(name);
        let value = bytes::Bytes::from(pid.to_string());
        let failed = |err: &dyn std::fmt::Display| {
            RegisterError::Invalid(format!("the cluster's names bucket: {err}"))
        };
        // Each failed round lost a race to another node's register or release.
        for _ in 0..3 {
            let created = match self.names_kv.create(&key, value.clone()).await {
                Ok(revision) => Ok(revision),
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => Err(()),
                Err(err) => return Err(failed(&err)),
            };
            let revision = match created {
                Ok(revision) => revision,
                Err(()) => {
                    let Some(entry) = self.names_kv.entry(&key).await.map_err(|e| failed(&e))?
                    else {
                        continue;
                    };
                    let holder = std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|text| text.parse::<Pid>().ok());
                    if let Some(holder) = &holder
                        && entry.operation == Operation::Put
                    {
                        if holder == pid {
                            return Ok(());
                        }
                        if self.holds_live(holder, &here_alive).await {
                            return Err(RegisterError::Taken(holder.clone()));
                        }
                    }
                    match self
                        .names_kv
                        .update(&key, value.clone(), entry.revision)
                        .await
                    {
                        Ok(revision) => revision,
                        Err(_) => continue,
                    }
                }
            };
            if let Ok(mut held) = self.names.held.lock() {
                held.insert(name.to_string(), (pid.id, revision));
            }
            self.names.copy.insert(name.to_string(), pid.clone());
            return Ok(());
        }
        Err(RegisterError::Invalid(format!(
            "the cluster's names bucket: {name:?} changed hands three times while this node registered it; try again"
        )))
    }

    /// Whether `holder` is a process that may still be alive: of this node and alive, or of
    /// a node that may be up (`node_alive`).
    async fn holds_live(&self, holder: &Pid, here_alive: &impl Fn(&Pid) -> bool) -> bool {
        let Some(node) = &holder.node else {
            return false;
        };
        if *node == self.me {
            return here_alive(holder);
        }
        self.node_alive(node).await
    }

    /// The holder of `name` on another node, if its node is not known to be down.
    pub(in crate::runtime) fn lookup(&self, name: &str) -> Option<Pid> {
        let holder = self.names.copy.get(name)?.clone();
        let node = holder.node.as_ref()?;
        if *node == self.me || self.peers.is_down(&node.name, node.incarnation) {
            return None;
        }
        Some(holder)
    }

    /// Releases `name` if the process `id` of this node holds it.
    pub(in crate::runtime) fn release(&self, name: &str, id: u64) {
        let revision = match self.names.held.lock() {
            Ok(mut held) => match held.get(name) {
                Some(&(holder, revision)) if holder == id => {
                    held.remove(name);
                    revision
                }
                _ => return,
            },
            Err(_) => return,
        };
        self.names.copy.remove_if(name, |_, pid| {
            pid.id == id && pid.node.as_ref() == Some(&self.me)
        });
        let names_kv = self.names_kv.clone();
        let key = key(name);
        self.runtime.spawn(async move {
            let _ = names_kv.delete_expect_revision(&key, Some(revision)).await;
        });
    }
}

impl Cluster {
    /// After this node joined again: each name its processes hold is its own again in the
    /// bucket (the server may have lost it), unless another node's live process took it
    /// meanwhile, which is logged. Whether every name was settled.
    pub(super) async fn reassert_names(&self) -> bool {
        let held: Vec<(String, u64, u64)> = match self.names.held.lock() {
            Ok(held) => held
                .iter()
                .map(|(n, &(id, rev))| (n.clone(), id, rev))
                .collect(),
            Err(_) => return true,
        };
        let mut settled = true;
        for (name, id, revision) in held {
            let Some(node) = self.node() else {
                return true;
            };
            let Some(process) = node.process(id) else {
                continue;
            };
            let pid = process.pid().clone();
            let key = key(&name);
            let value = bytes::Bytes::from(pid.to_string());
            let entry = match self.names_kv.entry(&key).await {
                Ok(entry) => entry,
                Err(_) => {
                    settled = false;
                    continue;
                }
            };
            let ours = entry.as_ref().is_some_and(|e| {
                e.operation == Operation::Put && e.value == value && e.revision == revision
            });
            if ours {
                continue;
            }
            let written = match entry {
                Some(entry) if entry.operation == Operation::Put && entry.value != value => {
                    let holder = std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|text| text.parse::<Pid>().ok());
                    match holder {
                        Some(holder) if self.holds_live(&holder, &|p| node.is_alive(p)).await => {
                            tracing::warn!(
                                name,
                                holder = %holder,
                                "a name this node's {pid} held was taken while this node was out of touch"
                            );
                            continue;
                        }
                        _ => self.names_kv.update(&key, value, entry.revision).await.ok(),
                    }
                }
                Some(entry) => self.names_kv.update(&key, value, entry.revision).await.ok(),
                None => self.names_kv.create(&key, value).await.ok(),
            };
            match (written, self.names.held.lock()) {
                (Some(revision), Ok(mut held)) => {
                    held.insert(name, (id, revision));
                }
                _ => settled = false,
            }
        }
        settled
    }
}

impl ClusterNames {
    /// Releases every name this node holds (it is leaving).
    pub async fn release_all(&self, cluster: &Cluster) {
        let held: Vec<_> = match self.held.lock() {
            Ok(mut held) => held.drain().collect(),
            Err(_) => return,
        };
        for (name, (_, revision)) in held {
            let _ = cluster
                .names_kv
                .delete_expect_revision(key(&name), Some(revision))
                .await;
        }
    }
}

/// Watches the names bucket into the copy; returns once the copy holds what the bucket held
/// when the watch began.
pub(super) async fn watch(cluster: &Arc<Cluster>) -> Result<JoinHandle<()>, kv::WatchError> {
    let store = cluster.names_kv.clone();
    watch_bucket(cluster, store, name_seen, None).await
}

/// One change of the names bucket.
fn name_seen(cluster: &Arc<Cluster>, entry: kv::Entry) {
    let Some(name) = hex::decode(&entry.key)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        cluster.malformed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    match entry.operation {
        Operation::Put => {
            match std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|text| text.parse::<Pid>().ok())
            {
                Some(pid) => {
                    cluster.names.copy.insert(name, pid);
                }
                None => {
                    cluster.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Operation::Delete | Operation::Purge => {
            cluster.names.copy.remove(&name);
        }
    }
}
