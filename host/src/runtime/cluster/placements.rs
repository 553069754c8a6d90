//! Which node runs a placed service or supervisor (`lifecycle.nodes` in the registry), as
//! Erlang's distributed applications do: one node of its list at a time, the first of them
//! that is up; when that node is down, the next one up takes it over. The placements bucket
//! maps each unit (its id as hex) to the node that holds it (`b.7`); taking it is a
//! compare-and-set there, so two nodes that see each other never both run it. A node that
//! finds its unit taken over while it was out of touch stops its copy (`still_here`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_nats::jetstream::kv::{self, Operation};

use super::join::Cluster;
use wasmhost_types::NodeId;

/// The units this node holds: unit id → the revision of its claim.
#[derive(Default)]
pub(super) struct Held(Mutex<HashMap<String, u64>>);

/// Who runs a unit, as a claim found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This node: it is to run it.
    Here,
    /// Another node that is up (its name).
    On(String),
}

fn key(unit: &str) -> String {
    hex::encode(unit)
}

fn holder(entry: &kv::Entry) -> Option<NodeId> {
    if entry.operation != Operation::Put {
        return None;
    }
    let text = std::str::from_utf8(&entry.value).ok()?;
    let (name, incarnation) = text.rsplit_once('.')?;
    Some(NodeId {
        name: name.into(),
        incarnation: incarnation.parse().ok()?,
    })
}

impl Cluster {
    /// Whether it is this node's turn to run `unit`, placed on `nodes`: none of the nodes
    /// before it on the list is up and runs it; else the first that is.
    pub fn first_up(&self, unit: &str, nodes: &[String]) -> Result<(), String> {
        for node in nodes {
            if **node == *self.me.name {
                return Ok(());
            }
            if self.peers.up_for(node, unit) {
                return Err(node.clone());
            }
        }
        Err("none".into())
    }

    /// Takes `unit` for this node, unless a node that is up holds it.
    pub async fn place(&self, unit: &str) -> Result<Placement, String> {
        let key = key(unit);
        let value = bytes::Bytes::from(self.me.to_string());
        let failed = |err: &dyn std::fmt::Display| format!("the placements bucket: {err}");
        // Each failed round lost a race to another node's claim or release.
        for _ in 0..3 {
            let revision = match self.placements_kv.create(&key, value.clone()).await {
                Ok(revision) => revision,
                Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                    let Some(entry) = self
                        .placements_kv
                        .entry(&key)
                        .await
                        .map_err(|e| failed(&e))?
                    else {
                        continue;
                    };
                    match holder(&entry) {
                        Some(node) if node == self.me => {
                            self.held_placements.remember(unit, entry.revision);
                            return Ok(Placement::Here);
                        }
                        Some(node) if self.node_alive(&node).await => {
                            return Ok(Placement::On(node.name.to_string()));
                        }
                        _ => {}
                    }
                    match self
                        .placements_kv
                        .update(&key, value.clone(), entry.revision)
                        .await
                    {
                        Ok(revision) => revision,
                        Err(_) => continue,
                    }
                }
                Err(err) => return Err(failed(&err)),
            };
            self.held_placements.remember(unit, revision);
            return Ok(Placement::Here);
        }
        Err(format!(
            "the placements bucket: {unit} changed hands three times while this node took it; trying again"
        ))
    }

    /// Whether this node still holds `unit`: not if another node took it over while this one
    /// was out of touch. A bucket that cannot be read says nothing (`None`); a claim that is
    /// gone (the server lost it) is made again.
    pub async fn still_here(&self, unit: &str) -> Option<bool> {
        let entry = self.placements_kv.entry(key(unit)).await.ok()?;
        match entry.as_ref().and_then(holder) {
            Some(node) if node == self.me => Some(true),
            Some(_) => Some(false),
            None => Some(matches!(self.place(unit).await, Ok(Placement::Here))),
        }
    }

    /// Gives `unit` up (it stopped here), so the next node on its list takes it at once.
    pub async fn unplace(&self, unit: &str) {
        let Some(revision) = self.held_placements.forget(unit) else {
            return;
        };
        let _ = self
            .placements_kv
            .delete_expect_revision(key(unit), Some(revision))
            .await;
    }
}

impl Held {
    fn remember(&self, unit: &str, revision: u64) {
        if let Ok(mut held) = self.0.lock() {
            held.insert(unit.to_string(), revision);
        }
    }

    fn forget(&self, unit: &str) -> Option<u64> {
        self.0.lock().ok()?.remove(unit)
    }
}
