//! What `wasmhost check` reports of a node it could build: each host, each process entry with
//! its modules, digest, imports (and which fail for a module not granted), reserved names and
//! authority, each service and supervisor, and what came from the compile cache. Made once
//! from the node (`CheckReport::of`), shown as text (`Display`); `tests/ui/` pins the text.

use std::fmt;
use std::path::PathBuf;

use crate::app::{Authority, Scope};
use crate::runtime::{Compiled, Node, sha256_of};

/// The report of a node that was built, so everything in it was found valid.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub app: PathBuf,
    pub terminals: Vec<String>,
    /// Each `process.host`, with its own worker threads if it has them.
    pub hosts: Vec<(String, Option<u32>)>,
    pub entries: Vec<EntryReport>,
    pub services: Vec<String>,
    pub supervisors: Vec<String>,
    /// The compile cache's folder, components loaded from it, and components in all.
    pub compile_cache: Option<(PathBuf, usize, usize)>,
}

/// One `process.wasm` entry as built.
#[derive(Clone, Debug)]
pub struct EntryReport {
    pub id: String,
    pub modules: Vec<String>,
    /// `sha256:…` of the component, or why it could not be read.
    pub digest: String,
    /// Each import, and the module not granted if its calls fail.
    pub imports: Vec<(String, Option<String>)>,
    pub reserves: Vec<String>,
    /// `signal`, `spawn` and `hosts` when not the defaults.
    pub authority: Option<[String; 3]>,
}

impl CheckReport {
    pub fn of(node: &Node) -> CheckReport {
        let app = node.app();
        let entries = app
            .processes
            .values()
            .filter_map(|entry| {
                let program = node.program(&entry.id)?;
                // Hashed here rather than at every start: only `check` shows it, and a pinned
                // `hash` is checked when the entry is compiled.
                let digest = std::fs::read(&entry.source)
                    .map(|bytes| sha256_of(&bytes))
                    .unwrap_or_else(|err| {
                        format!("(cannot read {}: {err})", entry.source.display())
                    });
                let scope = |scope: &Scope| match scope {
                    Scope::Own => "(own)".to_string(),
                    Scope::Any => "any".to_string(),
                    Scope::Entries(entries) => entries.join(", "),
                };
                let Authority {
                    signal,
                    spawn,
                    hosts,
                } = &entry.authority;
                Some(EntryReport {
                    id: entry.id.clone(),
                    modules: entry.modules.iter().map(|m| m.name.clone()).collect(),
                    digest,
                    imports: program
                        .imports
                        .iter()
                        .map(|import| (import.name.clone(), import.not_granted.map(str::to_string)))
                        .collect(),
                    reserves: entry.names.clone(),
                    authority: (entry.authority != Authority::default())
                        .then(|| [scope(signal), scope(spawn), scope(hosts)]),
                })
            })
            .collect();
        let auto = |auto_start: bool| if auto_start { ", auto_start" } else { "" };
        let services = app
            .services
            .iter()
            .map(|service| {
                let reserved = app.processes.get(&service.process).map(|e| &e.names);
                let ready = match reserved {
                    Some(names) if !names.is_empty() => {
                        format!("ready once it registers {}", names.join(", "))
                    }
                    _ => "ready once spawned: its entry reserves no name".to_string(),
                };
                format!(
                    "{} ({} on {}{}; {ready})",
                    service.id,
                    service.process,
                    service.host,
                    auto(service.lifecycle.auto_start)
                )
            })
            .collect();
        let supervisors = app
            .supervisors
            .values()
            .map(|supervisor| {
                format!(
                    "{} ({}, at most {} restarts in {:?}{}): {}",
                    supervisor.id,
                    supervisor.strategy.name(),
                    supervisor.max_restarts,
                    supervisor.period,
                    auto(supervisor.auto_start),
                    supervisor.children.join(", ")
                )
            })
            .collect();
        let programs: Vec<_> = app
            .processes
            .keys()
            .filter_map(|id| node.program(id))
            .collect();
        let loaded = programs
            .iter()
            .filter(|p| p.compiled == Compiled::Loaded)
            .count();
        CheckReport {
            app: app.root.clone(),
            terminals: app.terminals.values().map(|t| t.id.clone()).collect(),
            hosts: app
                .hosts
                .values()
                .map(|h| (h.id.clone(), h.workers))
                .collect(),
            entries,
            services,
            supervisors,
            compile_cache: node
                .config()
                .compile_cache
                .clone()
                .map(|dir| (dir, loaded, programs.len())),
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "app {}", self.app.display())?;
        for id in &self.terminals {
            writeln!(f, "  terminal.host    {id}")?;
        }
        for (id, workers) in &self.hosts {
            match workers {
                Some(1) => writeln!(f, "  process.host     {id} (1 worker)")?,
                Some(n) => writeln!(f, "  process.host     {id} ({n} workers)")?,
                None => writeln!(f, "  process.host     {id}")?,
            }
        }
        for entry in &self.entries {
            writeln!(
                f,
                "  process.wasm     {} [{}] {}",
                entry.id,
                entry.modules.join(", "),
                entry.digest
            )?;
            let imports: Vec<String> = entry
                .imports
                .iter()
                .map(|(name, denied)| match denied {
                    Some(module) => format!("{name} (`{module}` not granted: its calls fail)"),
                    None => name.clone(),
                })
                .collect();
            writeln!(f, "                   imports {}", imports.join(", "))?;
            if !entry.reserves.is_empty() {
                writeln!(
                    f,
                    "                   reserves {}",
                    entry.reserves.join(", ")
                )?;
            }
            if let Some([signal, spawn, hosts]) = &entry.authority {
                writeln!(
                    f,
                    "                   authority: signal {signal}; spawn {spawn}; hosts {hosts}"
                )?;
            }
        }
        for service in &self.services {
            writeln!(f, "  process.service  {service}")?;
        }
        for supervisor in &self.supervisors {
            writeln!(f, "  process.supervisor {supervisor}")?;
        }
        match &self.compile_cache {
            Some((dir, loaded, all)) => writeln!(
                f,
                "  compile cache    {}: {loaded} of {all} components loaded from it",
                dir.display()
            )?,
            None => writeln!(f, "  compile cache    off: every component compiled")?,
        }
        writeln!(f, "ok")
    }
}
