//! Raw entries → the validated model: names checked, values parsed (sizes, durations),
//! references between entries resolved, services put in start order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::limits::{LimitOverrides, RawLimits};
use super::model::*;
use super::parse::{EntryFields, RawEntry, RawFile};
use super::schema::*;
use super::values::{DURATION_HINT, parse_duration};

mod tree;

/// Collects every file's entries into an `App`, and every problem found on the way.
pub struct Resolver {
    problems: Diagnostics,
    app: App,
    /// Every entry id with its kind and origin, to report duplicates and check references.
    seen: BTreeMap<String, (Kind, Origin)>,
    /// Services wait for all entries before their references are checked.
    services: Vec<(ServiceEntry, PendingRefs)>,
    /// And supervisors, whose children and `requires` name other entries.
    supervisors: Vec<(SupervisorEntry, PendingRefs)>,
    /// So do the entries named in an `authority`: (process entry, named entry, line,
    /// whether it names a host).
    authority_refs: Vec<(String, String, u64, bool)>,
}

/// Reference lines of a service or supervisor, checked once every entry is known.
#[derive(Default)]
struct PendingRefs {
    process_line: u64,
    host_line: u64,
    requires_lines: Vec<u64>,
    children_lines: Vec<u64>,
}

/// Reports problems about one entry at the lines they are on.
struct At<'a> {
    file: &'a Path,
    id: &'a str,
}

impl At<'_> {
    fn problem(&self, message: impl Into<String>, line: u64) -> Diagnostic {
        Diagnostic::new(self.file, message).at(line).entry(self.id)
    }
}

impl Resolver {
    pub fn new(root: PathBuf, problems: Diagnostics) -> Self {
        Resolver {
            problems,
            app: App {
                root,
                ..App::default()
            },
            seen: BTreeMap::new(),
            services: Vec::new(),
            supervisors: Vec::new(),
            authority_refs: Vec::new(),
        }
    }

    pub fn problem(&mut self, diagnostic: Diagnostic) {
        self.problems.push(diagnostic);
    }

    /// Takes in the entries of one parsed file.
    pub fn file(&mut self, file: &Path, raw: RawFile) {
        let namespace = raw.namespace.value.clone();
        if let Err(message) = check_name(&namespace) {
            self.problem(
                Diagnostic::new(file, format!("namespace {message}"))
                    .at(raw.namespace.referenced.line()),
            );
        }
        if raw.version.value != "1.0" {
            self.problem(
                Diagnostic::new(file, format!("unsupported version `{}`", raw.version.value))
                    .at(raw.version.referenced.line())
                    .hint("the registry format is version \"1.0\""),
            );
        }
        for entry in raw.entries {
            self.entry(file, &namespace, entry);
        }
    }

    fn entry(&mut self, file: &Path, namespace: &str, raw: RawEntry) {
        let (name, kind) = match &raw.fields {
            EntryFields::ProcessWasm(f) => (&f.name, Some(Kind::ProcessWasm)),
            EntryFields::ProcessHost(f) => (&f.name, Some(Kind::ProcessHost)),
            EntryFields::TerminalHost(f) => (&f.name, Some(Kind::TerminalHost)),
            EntryFields::ProcessService(f) => (&f.name, Some(Kind::ProcessService)),
            EntryFields::ProcessSupervisor(f) => (&f.name, Some(Kind::ProcessSupervisor)),
            EntryFields::UnknownKind { name, .. } => (name, None),
        };
        let id = format!("{namespace}:{}", name.value);
        let at = At { file, id: &id };
        if let Err(message) = check_name(&name.value) {
            self.problem(at.problem(message, name.referenced.line()));
            return;
        }
        let Some(kind) = kind else {
            if let EntryFields::UnknownKind { kind, .. } = &raw.fields {
                self.problem(
                    at.problem(
                        format!("unknown kind `{}`", kind.value),
                        kind.referenced.line(),
                    )
                    .hint(format!("known kinds: {}", Kind::names())),
                );
            }
            return;
        };
        let origin = Origin {
            file: file.to_path_buf(),
            line: raw.line,
        };
        if let Some((_, first)) = self.seen.get(&id) {
            let first = format!("{}:{}", first.file.display(), first.line);
            self.problem(at.problem(
                format!("duplicate entry; the first is at {first}"),
                raw.line,
            ));
            return;
        }
        self.seen.insert(id.clone(), (kind, origin.clone()));

        match raw.fields {
            EntryFields::ProcessWasm(f) => self.process(&at, origin, f),
            EntryFields::ProcessHost(f) => {
                let workers = f.workers.and_then(|w| {
                    if w.value == 0 {
                        self.problem(
                            at.problem("`workers` must be at least 1", w.referenced.line())
                                .hint("leave `workers` out to share the node's threads"),
                        );
                    }
                    (w.value > 0).then_some(w.value)
                });
                let limits = self.limits(&at, f.limits.as_ref());
                self.host_lifecycle(&at, Kind::ProcessHost, f.lifecycle.as_ref());
                self.app.hosts.insert(
                    id.clone(),
                    HostEntry {
                        id: id.clone(),
                        origin,
                        workers,
                        limits,
                    },
                );
            }
            EntryFields::TerminalHost(f) => {
                self.host_lifecycle(&at, Kind::TerminalHost, f.lifecycle.as_ref());
                self.app.terminals.insert(
                    id.clone(),
                    TerminalEntry {
                        id: id.clone(),
                        origin,
                    },
                );
            }
            EntryFields::ProcessService(f) => self.service(&at, namespace, origin, f),
            EntryFields::ProcessSupervisor(f) => self.supervisor(&at, namespace, origin, f),
            EntryFields::UnknownKind { .. } => {}
        }
    }

    fn process(&mut self, at: &At, origin: Origin, f: ProcessWasmFields) {
        let Some(source) = f.source else {
            self.problem(
                at.problem("missing field `source`", origin.line)
                    .hint("`source` is the component file, relative to this YAML file"),
            );
            return;
        };
        let relative = source
            .value
            .strip_prefix("file://")
            .unwrap_or(&source.value);
        let dir = at.file.parent().unwrap_or(Path::new("."));
        let path = dir.join(relative);
        if !path.is_file() {
            // Not a problem of the registry yet: a run that never spawns it may go on.
            let diagnostic = at
                .problem(
                    format!("source `{}` not found (looked for {})", source.value, path.display()),
                    source.referenced.line(),
                )
                .hint("build the components with `wasmhost build`, or fix the path (relative to this YAML file)");
            self.app.unbuilt.insert(at.id.to_string(), diagnostic);
        }
        let mut modules: Vec<ModuleGrant> = Vec::new();
        for module in f.modules.map(|m| m.value).unwrap_or_default() {
            if !modules.iter().any(|m| m.name == module.value) {
                modules.push(ModuleGrant {
                    name: module.value,
                    line: module.referenced.line(),
                });
            }
        }
        if let Some(hash) = &f.hash {
            let ok = hash
                .value
                .strip_prefix("sha256:")
                .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                self.problem(
                    at.problem(
                        format!("hash `{}` is not `sha256:<64 hex digits>`", hash.value),
                        hash.referenced.line(),
                    )
                    .hint("`wasmhost check` prints each component's sha256"),
                );
            }
        }
        let limits = self.limits(at, f.limits.as_ref());
        let method = f
            .method
            .map(|m| m.value)
            .unwrap_or_else(|| "main".to_string());
        let mut names = Vec::new();
        for name in f.names.map(|n| n.value).unwrap_or_default() {
            if name.value.is_empty() || name.value.len() > MAX_NAME_LEN {
                self.problem(at.problem(
                    format!("`names`: a name must be 1 to {MAX_NAME_LEN} bytes"),
                    name.referenced.line(),
                ));
            } else if !names.contains(&name.value) {
                names.push(name.value);
            }
        }
        let namespace = at.id.split(':').next().unwrap_or_default();
        let authority = match &f.authority {
            Some(raw) => Authority {
                signal: self.scope(at, namespace, "signal", raw.value.signal.as_ref()),
                spawn: self.scope(at, namespace, "spawn", raw.value.spawn.as_ref()),
                hosts: self.scope(at, namespace, "hosts", raw.value.hosts.as_ref()),
            },
            None => Authority::default(),
        };
        self.app.processes.insert(
            at.id.to_string(),
            ProcessEntry {
                id: at.id.to_string(),
                origin,
                source: path,
                hash: f.hash.map(|h| h.value),
                method,
                modules,
                limits,
                names,
                authority,
            },
        );
    }

    /// `any`, or a list of entries (checked once every entry is known).
    fn scope(
        &mut self,
        at: &At,
        namespace: &str,
        field: &str,
        raw: Option<&Spanned<RawScope>>,
    ) -> Scope {
        let Some(raw) = raw else {
            return Scope::Own;
        };
        let line = raw.referenced.line();
        match &raw.value {
            RawScope::Word(word) if word == "any" => Scope::Any,
            RawScope::Word(word) => {
                self.problem(
                    at.problem(
                        format!(
                            "`authority.{field}`: `{word}` is neither `any` nor a list of entries"
                        ),
                        line,
                    )
                    .hint(match field {
                        "hosts" => "write `hosts: any` or `hosts: [app:workers]`".to_string(),
                        _ => format!("write `{field}: any` or `{field}: [app:worker]`"),
                    }),
                );
                Scope::Own
            }
            RawScope::Entries(entries) => {
                let entries: Vec<String> = entries.iter().map(|e| qualify(namespace, e)).collect();
                for entry in &entries {
                    self.authority_refs.push((
                        at.id.to_string(),
                        entry.clone(),
                        line,
                        field == "hosts",
                    ));
                }
                Scope::Entries(entries)
            }
        }
    }

    fn service(&mut self, at: &At, namespace: &str, origin: Origin, f: ProcessServiceFields) {
        let (Some(process), Some(host)) = (f.process.as_ref(), f.host.as_ref()) else {
            for (field, value) in [("process", &f.process), ("host", &f.host)] {
                if value.is_none() {
                    self.problem(at.problem(format!("missing field `{field}`"), origin.line));
                }
            }
            return;
        };
        let mut args = Vec::new();
        if let Some(raw) = &f.args {
            for (i, value) in raw.value.iter().enumerate() {
                let mut bytes = Vec::new();
                match ciborium::into_writer(value, &mut bytes) {
                    Ok(()) => args.push(bytes),
                    Err(err) => self.problem(at.problem(
                        format!("argument {} cannot be encoded as a payload: {err}", i + 1),
                        raw.referenced.line(),
                    )),
                }
            }
        }
        let lifecycle = self.lifecycle(at, namespace, f.lifecycle.as_ref());
        let refs = PendingRefs {
            process_line: process.referenced.line(),
            host_line: host.referenced.line(),
            requires_lines: f
                .lifecycle
                .as_ref()
                .and_then(|l| l.value.requires.as_ref())
                .map(|r| r.iter().map(|s| s.referenced.line()).collect())
                .unwrap_or_default(),
            children_lines: Vec::new(),
        };
        self.services.push((
            ServiceEntry {
                id: at.id.to_string(),
                origin,
                process: qualify(namespace, &process.value),
                host: qualify(namespace, &host.value),
                args,
                lifecycle,
            },
            refs,
        ));
    }

    fn supervisor(&mut self, at: &At, namespace: &str, origin: Origin, f: ProcessSupervisorFields) {
        let children = f.children.map(|c| c.value).unwrap_or_default();
        if children.is_empty() {
            self.problem(
                at.problem("a supervisor needs `children`", origin.line)
                    .hint("list the services and supervisors it starts, in order"),
            );
        }
        let strategy = match &f.strategy {
            None => Strategy::OneForOne,
            Some(raw) => self.one_of(at, "strategy", raw, &Strategy::ALL, Strategy::OneForOne),
        };
        let period = f
            .period
            .as_ref()
            .and_then(|v| self.duration(at, "period", v))
            .unwrap_or(Duration::from_secs(5));
        if period.is_zero() {
            let line = f
                .period
                .as_ref()
                .map_or(origin.line, |p| p.referenced.line());
            self.problem(at.problem("`period` must be longer than 0s", line));
        }
        let lifecycle = f.lifecycle.map(|l| l.value).unwrap_or_default();
        let nodes = self.nodes(at, lifecycle.nodes.as_deref());
        let requires = lifecycle.requires.unwrap_or_default();
        let refs = PendingRefs {
            requires_lines: requires.iter().map(|r| r.referenced.line()).collect(),
            children_lines: children.iter().map(|c| c.referenced.line()).collect(),
            ..PendingRefs::default()
        };
        self.supervisors.push((
            SupervisorEntry {
                id: at.id.to_string(),
                origin,
                children: children
                    .iter()
                    .map(|c| qualify(namespace, &c.value))
                    .collect(),
                strategy,
                max_restarts: f.max_restarts.map_or(3, |m| m.value),
                period,
                auto_start: lifecycle.auto_start.is_some_and(|a| a.value),
                requires: requires
                    .iter()
                    .map(|r| qualify(namespace, &r.value))
                    .collect(),
                nodes,
            },
            refs,
        ));
    }

    /// `lifecycle.nodes`: node names, each once.
    fn nodes(&mut self, at: &At, raw: Option<&[Spanned<String>]>) -> Vec<String> {
        let mut nodes: Vec<String> = Vec::new();
        for node in raw.unwrap_or_default() {
            let line = node.referenced.line();
            if let Err(why) = wasmhost_types::NodeId::check_name(&node.value) {
                self.problem(at.problem(format!("nodes: {why}"), line));
            } else if nodes.contains(&node.value) {
                self.problem(at.problem(format!("nodes: {} is listed twice", node.value), line));
            } else {
                nodes.push(node.value.clone());
            }
        }
        nodes
    }

    /// One of a few words, or a problem listing them (and `fallback`).
    fn one_of<T: Copy>(
        &mut self,
        at: &At,
        field: &str,
        raw: &Spanned<String>,
        words: &[(T, &str)],
        fallback: T,
    ) -> T {
        match words.iter().find(|(_, w)| *w == raw.value) {
            Some((value, _)) => *value,
            None => {
                let known: Vec<&str> = words.iter().map(|(_, w)| *w).collect();
                self.problem(
                    at.problem(
                        format!("`{field}`: unknown value `{}`", raw.value),
                        raw.referenced.line(),
                    )
                    .hint(format!("one of: {}", known.join(", "))),
                );
                fallback
            }
        }
    }

    fn limits(&mut self, at: &At, raw: Option<&Spanned<RawLimits>>) -> LimitOverrides {
        let Some(raw) = raw else {
            return LimitOverrides::default();
        };
        let mut problems = Vec::new();
        let limits = raw.value.read(raw.referenced.line(), &mut problems);
        for problem in problems {
            self.problem(
                at.problem(problem.message, problem.at as u64)
                    .hint(problem.hint),
            );
        }
        limits
    }

    /// Hosts start with the node: `auto_start: true` says so, `false` cannot be honoured.
    fn host_lifecycle(&mut self, at: &At, kind: Kind, raw: Option<&Spanned<HostLifecycle>>) {
        let auto_start = raw.and_then(|l| l.value.auto_start.as_ref());
        if let Some(v) = auto_start.filter(|v| !v.value) {
            self.problem(
                at.problem(
                    format!(
                        "`auto_start: false` is not supported: a {} starts with the node",
                        kind.name()
                    ),
                    v.referenced.line(),
                )
                .hint("remove `auto_start`, or set it to true"),
            );
        }
    }

    fn lifecycle(
        &mut self,
        at: &At,
        namespace: &str,
        raw: Option<&Spanned<ServiceLifecycle>>,
    ) -> Lifecycle {
        let mut lifecycle = Lifecycle::default();
        let Some(raw) = raw else {
            return lifecycle;
        };
        let raw = &raw.value;
        if let Some(v) = &raw.auto_start {
            lifecycle.auto_start = v.value;
        }
        lifecycle.nodes = self.nodes(at, raw.nodes.as_deref());
        if let Some(requires) = &raw.requires {
            lifecycle.requires = requires
                .iter()
                .map(|r| qualify(namespace, &r.value))
                .collect();
        }
        if let Some(v) = &raw.restart_type {
            lifecycle.restart_type = self.one_of(
                at,
                "restart_type",
                v,
                &RestartType::ALL,
                RestartType::Transient,
            );
        }
        let durations = [
            (
                &raw.start_timeout,
                "start_timeout",
                &mut lifecycle.start_timeout,
            ),
            (
                &raw.stop_timeout,
                "stop_timeout",
                &mut lifecycle.stop_timeout,
            ),
            (
                &raw.stable_threshold,
                "stable_threshold",
                &mut lifecycle.stable_threshold,
            ),
        ];
        for (value, field, slot) in durations {
            if let Some(d) = value.as_ref().and_then(|v| self.duration(at, field, v)) {
                *slot = d;
            }
        }
        if let Some(restart) = &raw.restart {
            self.restart(at, &restart.value, &mut lifecycle.restart);
        }
        lifecycle
    }

    fn restart(&mut self, at: &At, r: &RawRestart, target: &mut Restart) {
        if let Some(d) = r
            .initial_delay
            .as_ref()
            .and_then(|v| self.duration(at, "initial_delay", v))
        {
            target.initial_delay = d;
        }
        if let Some(d) = r
            .max_delay
            .as_ref()
            .and_then(|v| self.duration(at, "max_delay", v))
        {
            target.max_delay = d;
        }
        if let Some(v) = &r.backoff_factor {
            if !(v.value >= 1.0 && v.value.is_finite()) {
                self.problem(
                    at.problem("`backoff_factor` must be at least 1", v.referenced.line()),
                );
            }
            target.backoff_factor = v.value;
        }
        if let Some(v) = &r.jitter {
            if !(0.0..=1.0).contains(&v.value) {
                self.problem(at.problem("`jitter` must be between 0 and 1", v.referenced.line()));
            }
            target.jitter = v.value;
        }
        if let Some(v) = &r.max_attempts {
            target.max_attempts = v.value;
        }
    }

    fn duration(&mut self, at: &At, field: &str, v: &Spanned<String>) -> Option<Duration> {
        parse_duration(&v.value)
            .map_err(|message| {
                self.problem(
                    at.problem(format!("`{field}`: {message}"), v.referenced.line())
                        .hint(DURATION_HINT),
                )
            })
            .ok()
    }

    /// Checks the services' references, orders them by `requires`, and returns the app.
    pub fn finish(mut self) -> Result<App, Diagnostics> {
        let services = std::mem::take(&mut self.services);
        for (service, refs) in &services {
            let at = At {
                file: &service.origin.file,
                id: &service.id,
            };
            if !self.app.processes.contains_key(&service.process) {
                let message = match self.seen.get(&service.process) {
                    Some((kind, _)) => format!(
                        "`process: {}` is a {}, not a process.wasm",
                        service.process,
                        kind.name()
                    ),
                    None => format!("`process: {}` names no entry", service.process),
                };
                let hint = known("process entries", self.app.processes.keys());
                self.problem(at.problem(message, refs.process_line).hint(hint));
            }
            if !self.app.hosts.contains_key(&service.host) {
                let message = match self.seen.get(&service.host) {
                    Some((kind, _)) => format!(
                        "`host: {}` is a {}, not a process.host",
                        service.host,
                        kind.name()
                    ),
                    None => format!("`host: {}` names no entry", service.host),
                };
                let hint = known("process hosts", self.app.hosts.keys());
                self.problem(at.problem(message, refs.host_line).hint(hint));
            }
        }
        for (id, named, line, host) in std::mem::take(&mut self.authority_refs) {
            let (exists, what, hint) = if host {
                (
                    self.app.hosts.contains_key(&named),
                    "process.host",
                    known("process hosts", self.app.hosts.keys()),
                )
            } else {
                (
                    self.app.processes.contains_key(&named),
                    "process.wasm",
                    known("process entries", self.app.processes.keys()),
                )
            };
            if !exists {
                let file = self.app.processes.get(&id).map(|e| e.origin.file.clone());
                let file = file.unwrap_or_default();
                self.problem(
                    Diagnostic::new(
                        &file,
                        format!("`authority` names `{named}`, which is not a {what} entry"),
                    )
                    .at(line)
                    .entry(id)
                    .hint(hint),
                );
            }
        }
        let supervisors = std::mem::take(&mut self.supervisors);
        self.app.top = self.arrange(&services, &supervisors);
        self.app.services = services.into_iter().map(|(s, _)| s).collect();
        self.app.supervisors = supervisors
            .into_iter()
            .map(|(s, _)| (s.id.clone(), s))
            .collect();
        if self.problems.is_empty() {
            Ok(self.app)
        } else {
            // With the registry's problems, every component missing too: one list to fix.
            for diagnostic in std::mem::take(&mut self.app.unbuilt).into_values() {
                self.problems.push(diagnostic);
            }
            Err(self.problems)
        }
    }
}

/// The longest name a process may register (and an entry reserve), in bytes.
pub const MAX_NAME_LEN: usize = 255;

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name (use letters, digits, `-`, `_`, `.`)"
        ))
    }
}

/// `name` in `namespace` unless it is already qualified (`ns:name`).
fn qualify(namespace: &str, name: &str) -> String {
    if name.contains(':') {
        name.to_string()
    } else {
        format!("{namespace}:{name}")
    }
}

fn known<S: AsRef<str>>(what: &str, ids: impl Iterator<Item = S>) -> String {
    let ids: Vec<S> = ids.collect();
    let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
    if ids.is_empty() {
        format!("the registry has no {what}")
    } else {
        format!("{what}: {}", ids.join(", "))
    }
}
