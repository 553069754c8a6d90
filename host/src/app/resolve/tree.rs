//! The supervision tree: each supervisor's children must exist, be services or supervisors,
//! have one supervisor each and leave starting and restarting to it, and no supervisor may
//! own itself. What no supervisor owns is put in start order by `requires`.

use std::collections::{BTreeMap, BTreeSet};

use super::{At, PendingRefs, Resolver, known};
use crate::app::diagnostic::Diagnostic;
use crate::app::model::*;

impl Resolver {
    /// Checks the tree and returns the top-level services and supervisors in start order.
    pub(super) fn arrange(
        &mut self,
        services: &[(ServiceEntry, PendingRefs)],
        supervisors: &[(SupervisorEntry, PendingRefs)],
    ) -> Vec<String> {
        let service_ids: BTreeSet<&str> = services.iter().map(|(s, _)| s.id.as_str()).collect();
        let supervisor_ids: BTreeSet<&str> =
            supervisors.iter().map(|(s, _)| s.id.as_str()).collect();
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();

        for (supervisor, refs) in supervisors {
            let at = At {
                file: &supervisor.origin.file,
                id: &supervisor.id,
            };
            for (i, child) in supervisor.children.iter().enumerate() {
                let line = refs
                    .children_lines
                    .get(i)
                    .copied()
                    .unwrap_or(supervisor.origin.line);
                let exists =
                    service_ids.contains(child.as_str()) || supervisor_ids.contains(child.as_str());
                if !exists {
                    let message = match self.seen.get(child) {
                        Some((kind, _)) => format!(
                            "`children`: {child} is a {}, not a process.service or process.supervisor",
                            kind.name()
                        ),
                        None => format!("`children`: {child} names no entry"),
                    };
                    let hint = known(
                        "services and supervisors",
                        services
                            .iter()
                            .map(|(s, _)| &s.id)
                            .chain(supervisors.iter().map(|(s, _)| &s.id)),
                    );
                    self.problem(at.problem(message, line).hint(hint));
                } else if *child == supervisor.id {
                    self.problem(at.problem("a supervisor cannot be its own child", line));
                } else if let Some(first) = parent.get(child.as_str()) {
                    self.problem(
                        at.problem(
                            format!("`children`: {child} is already a child of {first}"),
                            line,
                        )
                        .hint("a service or supervisor has one supervisor"),
                    );
                } else {
                    parent.insert(child, &supervisor.id);
                }
            }
        }

        // A child is started and restarted by its supervisor, not by its own lifecycle.
        for (service, _) in services {
            let Some(owner) = parent.get(service.id.as_str()) else {
                continue;
            };
            let l = &service.lifecycle;
            let defaults = Lifecycle::default();
            let conflicts = [
                (
                    l.auto_start,
                    "auto_start",
                    "it starts its children; start the supervisor instead",
                ),
                (
                    !l.requires.is_empty(),
                    "requires",
                    "it starts its children in the order of its `children`",
                ),
                (
                    !l.nodes.is_empty(),
                    "nodes",
                    "it runs where its supervisor runs; place the supervisor instead",
                ),
                (
                    l.restart != defaults.restart
                        || l.stable_threshold != defaults.stable_threshold,
                    "restart",
                    "it restarts its children at once, at most `max_restarts` times in `period`; `restart_type` says whether this one is restarted",
                ),
            ];
            self.child_conflicts(&service.id, &service.origin, owner, &conflicts);
        }
        for (supervisor, _) in supervisors {
            if let Some(owner) = parent.get(supervisor.id.as_str()) {
                let conflicts = [
                    (
                        supervisor.auto_start,
                        "auto_start",
                        "it starts its children; start the supervisor instead",
                    ),
                    (
                        !supervisor.requires.is_empty(),
                        "requires",
                        "it starts its children in the order of its `children`",
                    ),
                    (
                        !supervisor.nodes.is_empty(),
                        "nodes",
                        "it runs where its supervisor runs; place the supervisor instead",
                    ),
                ];
                self.child_conflicts(&supervisor.id, &supervisor.origin, owner, &conflicts);
            }
        }

        // A supervisor among its own descendants: following owners from it comes back to it.
        for (supervisor, _) in supervisors {
            let mut at = supervisor.id.as_str();
            let mut cycle = vec![at];
            while let Some(&up) = parent.get(at) {
                if up == supervisor.id {
                    // Reported once, by the cycle's first member in name order.
                    if cycle.iter().all(|&id| id >= supervisor.id.as_str()) {
                        cycle.reverse();
                        cycle.insert(0, up);
                        self.problem(
                            Diagnostic::new(
                                &supervisor.origin.file,
                                format!(
                                    "supervisors own each other in a cycle: {}",
                                    cycle.join(" → ")
                                ),
                            )
                            .at(supervisor.origin.line)
                            .entry(supervisor.id.clone()),
                        );
                    }
                    break;
                }
                if cycle.len() > supervisors.len() {
                    break;
                }
                cycle.push(up);
                at = up;
            }
        }

        // What the node starts, and what each of those requires.
        let units: Vec<(&str, &Origin, &[String], &[u64])> = services
            .iter()
            .map(|(s, r)| {
                (
                    s.id.as_str(),
                    &s.origin,
                    s.lifecycle.requires.as_slice(),
                    r.requires_lines.as_slice(),
                )
            })
            .chain(supervisors.iter().map(|(s, r)| {
                (
                    s.id.as_str(),
                    &s.origin,
                    s.requires.as_slice(),
                    r.requires_lines.as_slice(),
                )
            }))
            .filter(|(id, ..)| !parent.contains_key(id))
            .collect();
        let top: BTreeSet<&str> = units.iter().map(|(id, ..)| *id).collect();
        for (id, origin, requires, lines) in &units {
            let at = At {
                file: &origin.file,
                id,
            };
            for (i, required) in requires.iter().enumerate() {
                if top.contains(required.as_str()) {
                    continue;
                }
                let line = lines.get(i).copied().unwrap_or(origin.line);
                let problem = match parent.get(required.as_str()) {
                    Some(owner) => at
                        .problem(
                            format!("`requires: {required}` is a child of supervisor {owner}"),
                            line,
                        )
                        .hint(format!("require {owner} instead")),
                    None => at
                        .problem(
                            format!(
                                "`requires: {required}` names no process.service or process.supervisor"
                            ),
                            line,
                        )
                        .hint(known("services and supervisors", top.iter())),
                };
                self.problem(problem);
            }
        }
        let graph: Vec<(&str, &[String])> = units.iter().map(|(id, _, r, _)| (*id, *r)).collect();
        match start_order(&graph) {
            Ok(order) => order,
            Err(cycle) => {
                if let Some((_, origin, ..)) = units.iter().find(|(id, ..)| *id == cycle[0]) {
                    self.problem(
                        Diagnostic::new(
                            &origin.file,
                            format!(
                                "services require each other in a cycle: {}",
                                cycle.join(" → ")
                            ),
                        )
                        .at(origin.line)
                        .entry(cycle[0].clone()),
                    );
                }
                Vec::new()
            }
        }
    }

    /// Reports each lifecycle field a supervisor's child sets that its supervisor decides.
    fn child_conflicts(
        &mut self,
        id: &str,
        origin: &Origin,
        owner: &str,
        conflicts: &[(bool, &str, &str)],
    ) {
        for (_, field, why) in conflicts.iter().filter(|(set, ..)| *set) {
            self.problem(
                Diagnostic::new(
                    &origin.file,
                    format!(
                        "`lifecycle.{field}` does not apply: {id} is a child of supervisor {owner}"
                    ),
                )
                .at(origin.line)
                .entry(id.to_string())
                .hint(format!("remove it: {why}")),
            );
        }
    }
}

/// Every unit after those it requires (a stable topological sort; requirements outside the
/// graph are reported elsewhere); the units on a cycle if there is one.
fn start_order(units: &[(&str, &[String])]) -> Result<Vec<String>, Vec<String>> {
    let mut pending: Vec<&(&str, &[String])> = units.iter().collect();
    let mut ordered: Vec<String> = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, requires)| {
            requires
                .iter()
                .all(|r| ordered.iter().any(|o| o == r) || !pending.iter().any(|(id, _)| id == r))
        });
        match ready {
            Some(i) => ordered.push(pending.remove(i).0.to_string()),
            None => return Err(pending.iter().map(|(id, _)| id.to_string()).collect()),
        }
    }
    Ok(ordered)
}
