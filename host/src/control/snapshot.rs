//! What `wasmhost ps` shows: the node, its supervision tree and every live process, at one
//! moment; as JSON (`--json`, the socket's format) or as text for people.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::values::show_size;
use crate::runtime::Node;
use crate::services::{State, Tree, UnitKind};
use tokio::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub node: NodeRow,
    /// Every service and supervisor, each supervisor before its children.
    pub tree: Vec<UnitRow>,
    /// Every live process, oldest first.
    pub processes: Vec<ProcessRow>,
    /// The node's cluster and its peers, if it is in one.
    #[serde(default)]
    pub cluster: Option<ClusterRow>,
    /// Live processes left out by a filter (`Snapshot::only`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hidden: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRow {
    pub url: String,
    /// This node's name and incarnation, e.g. `b.1`.
    pub node: String,
    pub session: u64,
    /// Frames that arrived malformed, misaddressed or forged, and were dropped.
    pub malformed: u64,
    pub peers: Vec<PeerRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerRow {
    /// Its name and incarnation, e.g. `a.9`.
    pub node: String,
    pub session: u64,
    /// `up` or `down`.
    pub state: String,
    /// How long it has been in `state`.
    pub for_ms: u64,
    /// Its messages delivered here (or refused by their receiver).
    pub received: u64,
    /// Its messages this node's processes refused (a mailbox full, a limit).
    pub refused: u64,
    /// Messages to it refused or dropped on this side (too large, its outbox full, it down).
    pub dropped: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRow {
    /// The `wasmhost` OS process.
    pub os_pid: u32,
    /// The app's root folder.
    pub app: String,
    pub uptime_ms: u64,
    pub max_processes: u32,
    /// Linear memory of all processes together, in bytes.
    pub memory: u64,
    /// What the host holds for all processes (messages waiting, events, names, …), in bytes.
    #[serde(default)]
    pub held: u64,
    /// Live processes that hibernate (no instance runs them; `max_processes` bounds the rest).
    #[serde(default)]
    pub hibernated: usize,
    /// Of those, how many woke and wait for a place in the pool.
    #[serde(default)]
    pub waiting: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitRow {
    pub id: String,
    /// `service` or `supervisor`.
    pub kind: String,
    /// The supervisor that owns it.
    pub parent: Option<String>,
    /// `starting`, `restarting`, `running`, `exited`, `failed`, `stopping` or `stopped`.
    pub state: String,
    /// Why it failed, when it has.
    pub reason: Option<String>,
    /// A service's current process.
    pub pid: Option<String>,
    pub restarts: u32,
    /// How long it has been in `state`.
    pub for_ms: u64,
    /// While `restarting`: how long until it starts again.
    #[serde(default)]
    pub restart_in_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessRow {
    /// As processes see it, e.g. `{app:processes|0x00004}`.
    pub pid: String,
    pub entry: String,
    pub host: String,
    /// The process that spawned it.
    pub parent: Option<String>,
    /// The service it runs as.
    pub service: Option<String>,
    /// `running`, or `hibernated` (no instance runs it until a message, an event or its
    /// wake-up time).
    #[serde(default = "running")]
    pub state: String,
    /// While it hibernates: the size of the state it keeps, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<u64>,
    pub uptime_ms: u64,
    /// Messages waiting in its mailbox.
    pub mailbox: usize,
    /// Bytes of linear memory and tables.
    pub memory: u64,
    /// Bytes the host holds for it: messages it sent that wait to be read, its events,
    /// names, monitors, timers, … (its `host_memory` bounds them).
    #[serde(default)]
    pub held: u64,
    pub cpu_us: u64,
}

fn running() -> String {
    "running".into()
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

impl Snapshot {
    /// `node` and its services now; `uptime` is how long the node has run.
    pub fn take(node: &Node, tree: &Tree, uptime: Duration) -> Snapshot {
        let units = tree.units();
        let mut service_of = BTreeMap::new();
        let tree: Vec<UnitRow> = units
            .into_iter()
            .map(|u| {
                if let Some(pid) = &u.pid {
                    service_of.insert(pid.to_string(), u.id.clone());
                }
                UnitRow {
                    kind: match u.kind {
                        UnitKind::Service => "service",
                        UnitKind::Supervisor => "supervisor",
                    }
                    .into(),
                    state: u.state.name().into(),
                    reason: match &u.state {
                        State::Failed(why) => Some(why.clone()),
                        State::Standby(on) => Some(format!("runs on {on}")),
                        _ => None,
                    },
                    pid: u.pid.map(|p| p.to_string()),
                    restarts: u.restarts,
                    for_ms: millis(u.for_),
                    restart_in_ms: match u.state {
                        State::Restarting { at } => {
                            Some(millis(at.saturating_duration_since(Instant::now())))
                        }
                        _ => None,
                    },
                    parent: u.parent,
                    id: u.id,
                }
            })
            .collect();
        let processes: Vec<ProcessRow> = node
            .processes()
            .into_iter()
            .map(|p| {
                let pid = p.pid.to_string();
                ProcessRow {
                    service: service_of.get(&pid).cloned(),
                    host: p.pid.host.to_string(),
                    pid,
                    entry: p.entry,
                    parent: p.parent.map(|p| p.to_string()),
                    state: match p.hibernated {
                        Some(_) => "hibernated",
                        None => "running",
                    }
                    .into(),
                    state_bytes: p.hibernated,
                    uptime_ms: millis(p.uptime),
                    mailbox: p.mailbox,
                    memory: p.memory,
                    held: p.held,
                    cpu_us: p.cpu.as_micros().try_into().unwrap_or(u64::MAX),
                }
            })
            .collect();
        let cluster = node.cluster().map(|cluster| ClusterRow {
            url: cluster.config().url.clone(),
            node: format!(
                "{}.{}",
                cluster.node_id().name,
                cluster.node_id().incarnation
            ),
            session: cluster.session(),
            malformed: cluster.malformed(),
            peers: cluster
                .peers()
                .into_iter()
                .map(|peer| PeerRow {
                    node: format!("{}.{}", peer.name, peer.incarnation),
                    session: peer.session,
                    state: if peer.up { "up" } else { "down" }.into(),
                    for_ms: millis(peer.since.elapsed().unwrap_or_default()),
                    received: peer.received,
                    refused: peer.refused,
                    dropped: peer.dropped,
                })
                .collect(),
        });
        Snapshot {
            cluster,
            node: NodeRow {
                os_pid: std::process::id(),
                app: std::fs::canonicalize(&node.app().root)
                    .unwrap_or_else(|_| node.app().root.clone())
                    .display()
                    .to_string(),
                uptime_ms: millis(uptime),
                max_processes: node.config().max_processes,
                memory: node.memory_used(),
                held: node.held(),
                hibernated: processes.iter().filter(|p| p.state_bytes.is_some()).count(),
                waiting: node.waiting_for_a_place(),
            },
            tree,
            processes,
            hidden: 0,
        }
    }

    /// Only the units and entries named (full ids) and what descends from them: a
    /// supervisor's subtree, a service's process and the processes each kept one spawned.
    pub fn only(mut self, names: &[String]) -> Snapshot {
        let mut kept: Vec<String> = Vec::new();
        // Supervisors come before their children, so one pass finds each subtree.
        self.tree.retain(|u| {
            let keep = names.contains(&u.id)
                || u.parent
                    .as_ref()
                    .is_some_and(|parent| kept.contains(parent));
            if keep {
                kept.push(u.id.clone());
            }
            keep
        });
        for u in &mut self.tree {
            if u.parent
                .as_ref()
                .is_some_and(|parent| !kept.contains(parent))
            {
                u.parent = None;
            }
        }
        let before = self.processes.len();
        let mut pids: Vec<String> = Vec::new();
        // Processes come oldest first, so a parent is decided before its children.
        self.processes.retain(|p| {
            let keep = names.contains(&p.entry)
                || p.service.as_ref().is_some_and(|s| kept.contains(s))
                || p.parent
                    .as_ref()
                    .is_some_and(|parent| pids.contains(parent));
            if keep {
                pids.push(p.pid.clone());
            }
            keep
        });
        self.hidden += before - self.processes.len();
        self
    }

    /// The node's line: its OS pid, app, uptime, processes, memory and what it holds.
    pub fn headline(&self) -> String {
        let n = &self.node;
        let live = self.processes.len() + self.hidden;
        // Hibernated processes hold no place in the pool: `max_processes` bounds the others.
        let processes = match n.hibernated {
            0 => format!("{live} of {} processes", n.max_processes),
            hibernated => format!(
                "{} of {} processes running, {hibernated} hibernated{}",
                live.saturating_sub(hibernated),
                n.max_processes,
                match n.waiting {
                    0 => String::new(),
                    waiting => format!(" ({waiting} woken, waiting for a place in the pool)"),
                }
            ),
        };
        format!(
            "node {} · {} · up {} · {processes} · {} of memory · {} held",
            n.os_pid,
            n.app,
            show_ms(n.uptime_ms),
            show_size(n.memory),
            show_size(n.held)
        )
    }

    /// The supervision tree's table (a title line, then one line per unit), if there is a
    /// tree.
    pub fn tree_table(&self) -> String {
        let mut out = String::new();
        if self.tree.is_empty() {
            return out;
        }
        let rows = self.tree_rows();
        let width = rows.iter().map(|(label, _)| label.chars().count()).max();
        let width = width.unwrap_or(0).max("SUPERVISION".len());
        let _ = writeln!(
            out,
            "{:width$}  {:10}  {:>8}  {:>8}  PID",
            "SUPERVISION", "STATE", "FOR", "RESTARTS"
        );
        for (label, u) in rows {
            let pad = width.saturating_sub(label.chars().count());
            let _ = write!(
                out,
                "{label}{:pad$}  {:10}  {:>8}  {:>8}  {}",
                "",
                u.state,
                show_ms(u.for_ms),
                u.restarts,
                u.pid.as_deref().unwrap_or("-")
            );
            if let Some(why) = &u.reason {
                let _ = write!(out, "  ({why})");
            }
            if let Some(ms) = u.restart_in_ms {
                let _ = write!(out, "  (starts again in {})", show_ms(ms));
            }
            out.push('\n');
        }
        out
    }

    /// For people: a header, the tree, and a table of processes.
    pub fn render(&self) -> String {
        let mut out = self.headline();
        out.push('\n');
        if self.hidden > 0 {
            let _ = writeln!(
                out,
                "showing {} of them (a filter left {} out)",
                self.processes.len(),
                self.hidden
            );
        }
        if let Some(cluster) = &self.cluster {
            self.render_cluster(cluster, &mut out);
        }
        if !self.tree.is_empty() {
            out.push('\n');
            out.push_str(&self.tree_table());
        }
        out.push('\n');
        let col = |f: fn(&ProcessRow) -> &str, title: &str| {
            self.processes
                .iter()
                .map(|p| f(p).chars().count())
                .max()
                .unwrap_or(0)
                .max(title.len())
        };
        let (wp, we, wh) = (
            col(|p| &p.pid, "PID"),
            col(|p| &p.entry, "ENTRY"),
            col(|p| &p.host, "HOST"),
        );
        let ws = col(|p| p.service.as_deref().unwrap_or("-"), "SERVICE");
        let _ = writeln!(
            out,
            "{:wp$}  {:we$}  {:wh$}  {:ws$}  {:10}  {:>8}  {:>7}  {:>10}  {:>10}  {:>9}",
            "PID",
            "ENTRY",
            "HOST",
            "SERVICE",
            "STATE",
            "UPTIME",
            "MAILBOX",
            "MEMORY",
            "HELD",
            "CPU"
        );
        for p in &self.processes {
            let _ = writeln!(
                out,
                "{:wp$}  {:we$}  {:wh$}  {:ws$}  {:10}  {:>8}  {:>7}  {:>10}  {:>10}  {:>9}",
                p.pid,
                p.entry,
                p.host,
                p.service.as_deref().unwrap_or("-"),
                p.state,
                show_ms(p.uptime_ms),
                p.mailbox,
                show_size(p.memory),
                show_size(p.held),
                show_cpu(p.cpu_us)
            );
        }
        out
    }

    /// The cluster's line and its peers' table.
    fn render_cluster(&self, cluster: &ClusterRow, out: &mut String) {
        let _ = writeln!(
            out,
            "cluster {} · node {} · session {} · {} peers · {} malformed frames dropped",
            cluster.url,
            cluster.node,
            cluster.session,
            cluster.peers.len(),
            cluster.malformed
        );
        if cluster.peers.is_empty() {
            return;
        }
        let width = cluster
            .peers
            .iter()
            .map(|p| p.node.len())
            .max()
            .unwrap_or(0);
        let width = width.max("PEER".len());
        out.push('\n');
        let _ = writeln!(
            out,
            "{:width$}  {:5}  {:>8}  {:>8}  {:>9}  {:>8}  {:>8}",
            "PEER", "STATE", "FOR", "SESSION", "RECEIVED", "REFUSED", "DROPPED"
        );
        for p in &cluster.peers {
            let _ = writeln!(
                out,
                "{:width$}  {:5}  {:>8}  {:>8}  {:>9}  {:>8}  {:>8}",
                p.node,
                p.state,
                show_ms(p.for_ms),
                p.session,
                p.received,
                p.refused,
                p.dropped
            );
        }
    }

    /// The tree's rows in order, each with its label drawn under its supervisor.
    fn tree_rows(&self) -> Vec<(String, &UnitRow)> {
        let mut children: BTreeMap<Option<&str>, Vec<&UnitRow>> = BTreeMap::new();
        for u in &self.tree {
            children.entry(u.parent.as_deref()).or_default().push(u);
        }
        let mut rows = Vec::new();
        // (unit, the prefix its children's lines start with), depth first, without recursion.
        let mut stack: Vec<(&UnitRow, String, String)> = children
            .get(&None)
            .map(|top| {
                top.iter()
                    .rev()
                    .map(|u| (*u, String::new(), String::new()))
                    .collect()
            })
            .unwrap_or_default();
        while let Some((u, label, prefix)) = stack.pop() {
            rows.push((format!("{label}{}", u.id), u));
            let kids = children
                .get(&Some(u.id.as_str()))
                .cloned()
                .unwrap_or_default();
            for (i, kid) in kids.iter().enumerate().rev() {
                let last = i + 1 == kids.len();
                let (branch, rest) = if last {
                    ("└─ ", "   ")
                } else {
                    ("├─ ", "│  ")
                };
                stack.push((kid, format!("{prefix}{branch}"), format!("{prefix}{rest}")));
            }
        }
        rows
    }
}

/// A duration for people: `420ms`, `1.5s`, `1m01s`, `2h05m`.
pub fn show_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn show_cpu(us: u64) -> String {
    if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1000.0)
    } else {
        show_ms(us / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, parent: Option<&str>, state: &str) -> UnitRow {
        UnitRow {
            id: id.into(),
            kind: "service".into(),
            parent: parent.map(Into::into),
            state: state.into(),
            reason: (state == "failed").then(|| "error: broken".into()),
            pid: None,
            restarts: 0,
            for_ms: 1_500,
            restart_in_ms: (state == "restarting").then_some(4_200),
        }
    }

    #[test]
    fn the_tree_is_drawn_under_each_supervisor() {
        let snapshot = Snapshot {
            node: NodeRow {
                os_pid: 7,
                app: "/app".into(),
                uptime_ms: 61_000,
                max_processes: 100,
                memory: 3 << 20,
                held: 70 << 10,
                hibernated: 1,
                waiting: 1,
            },
            tree: vec![
                unit("app:top", None, "running"),
                unit("app:a", Some("app:top"), "running"),
                unit("app:inner", Some("app:top"), "running"),
                unit("app:b", Some("app:inner"), "failed"),
                unit("app:c", Some("app:inner"), "running"),
                unit("app:alone", None, "exited"),
                unit("app:again", None, "restarting"),
            ],
            processes: vec![ProcessRow {
                pid: "{app:processes|0x00001}".into(),
                entry: "app:child".into(),
                host: "app:processes".into(),
                parent: None,
                service: Some("app:a".into()),
                state: "hibernated".into(),
                state_bytes: Some(40),
                uptime_ms: 1_500,
                mailbox: 2,
                memory: 1 << 20,
                held: 2 << 10,
                cpu_us: 420,
            }],
            cluster: None,
            hidden: 0,
        };
        assert_eq!(
            snapshot.render(),
            "\
node 7 · /app · up 1m01s · 0 of 100 processes running, 1 hibernated (1 woken, waiting for a place in the pool) · 3.0 MiB of memory · 70.0 KiB held

SUPERVISION   STATE            FOR  RESTARTS  PID
app:top       running         1.5s         0  -
├─ app:a      running         1.5s         0  -
└─ app:inner  running         1.5s         0  -
   ├─ app:b   failed          1.5s         0  -  (error: broken)
   └─ app:c   running         1.5s         0  -
app:alone     exited          1.5s         0  -
app:again     restarting      1.5s         0  -  (starts again in 4.2s)

PID                      ENTRY      HOST           SERVICE  STATE         UPTIME  MAILBOX      MEMORY        HELD        CPU
{app:processes|0x00001}  app:child  app:processes  app:a    hibernated      1.5s        2     1.0 MiB     2.0 KiB      0.4ms
"
        );
    }

    #[test]
    fn a_filter_keeps_what_it_names_and_what_descends_from_it() {
        let process = |n: u32, entry: &str, parent: Option<u32>, service: Option<&str>| {
            let pid = |n| format!("{{app:processes|0x{n:05x}}}");
            ProcessRow {
                pid: pid(n),
                entry: entry.into(),
                host: "app:processes".into(),
                parent: parent.map(pid),
                service: service.map(Into::into),
                state: "running".into(),
                state_bytes: None,
                uptime_ms: 0,
                mailbox: 0,
                memory: 0,
                held: 0,
                cpu_us: 0,
            }
        };
        let snapshot = Snapshot {
            node: NodeRow {
                os_pid: 7,
                app: "/app".into(),
                uptime_ms: 0,
                max_processes: 100,
                memory: 0,
                held: 0,
                hibernated: 0,
                waiting: 0,
            },
            tree: vec![
                unit("app:top", None, "running"),
                unit("app:inner", Some("app:top"), "running"),
                unit("app:relay", Some("app:inner"), "running"),
                unit("app:other", Some("app:top"), "running"),
            ],
            processes: vec![
                process(1, "app:relay", None, Some("app:relay")),
                process(2, "app:worker", Some(1), None),
                process(3, "app:other", None, Some("app:other")),
                process(4, "app:worker", Some(3), None),
                process(5, "app:cli", None, None),
            ],
            cluster: None,
            hidden: 0,
        };
        let only = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let kept = snapshot.clone().only(&names);
            let units: Vec<(String, Option<String>)> = kept
                .tree
                .iter()
                .map(|u| (u.id.clone(), u.parent.clone()))
                .collect();
            let pids: Vec<String> = kept.processes.iter().map(|p| p.pid.clone()).collect();
            (units, pids, kept.hidden)
        };
        let pid = |n: u32| format!("{{app:processes|0x{n:05x}}}");
        // A supervisor: its subtree, drawn from it; its services' processes and theirs.
        let (units, pids, hidden) = only(&["app:inner"]);
        assert_eq!(
            units,
            [
                ("app:inner".to_string(), None),
                ("app:relay".to_string(), Some("app:inner".to_string()))
            ]
        );
        assert_eq!((pids, hidden), (vec![pid(1), pid(2)], 3));
        // An entry: every process of it, and what they spawned.
        let (units, pids, _) = only(&["app:worker", "app:cli"]);
        assert!(units.is_empty());
        assert_eq!(pids, [pid(2), pid(4), pid(5)]);
        let text = snapshot.clone().only(&["app:cli".into()]).render();
        assert!(
            text.starts_with(
                "node 7 · /app · up 0ms · 5 of 100 processes · 0 B of memory · 0 B held\n\
                 showing 1 of them (a filter left 4 out)\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_node_of_a_cluster_shows_its_peers_and_their_counters() {
        let peer = |node: &str, state: &str, received| PeerRow {
            node: node.into(),
            session: 12,
            state: state.into(),
            for_ms: 2_500,
            received,
            refused: 1,
            dropped: 0,
        };
        let snapshot = Snapshot {
            node: NodeRow {
                os_pid: 7,
                app: "/app".into(),
                uptime_ms: 3_000,
                max_processes: 100,
                memory: 0,
                held: 0,
                hibernated: 0,
                waiting: 0,
            },
            tree: Vec::new(),
            processes: Vec::new(),
            cluster: Some(ClusterRow {
                url: "nats://127.0.0.1:4222".into(),
                node: "b.3".into(),
                session: 3,
                malformed: 2,
                peers: vec![peer("a.9", "up", 40), peer("c.11", "down", 0)],
            }),
            hidden: 0,
        };
        let text = snapshot.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..6],
            [
                "cluster nats://127.0.0.1:4222 · node b.3 · session 3 · 2 peers · 2 malformed frames dropped",
                "",
                "PEER  STATE       FOR   SESSION   RECEIVED   REFUSED   DROPPED",
                "a.9   up         2.5s        12         40         1         0",
                "c.11  down       2.5s        12          0         1         0",
            ],
            "{text}"
        );
    }
}
