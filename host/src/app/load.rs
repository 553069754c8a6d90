//! Loading: every `*.yaml` under the registry folder → one validated `App`.
//!
//! All problems are collected in one pass, so a user fixes them in one go.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::*;
use super::modules::Module;
use super::root::AppRoot;
use super::yaml::{self, KINDS, RawEntry, RawLifecycle, RawLimits, fields_of};

/// Loads and validates the app at `root`. Components are checked later, by the runtime
/// that compiles them (`runtime::programs`).
pub fn load(root: &AppRoot) -> Result<App, Diagnostics> {
    let mut problems = Diagnostics::default();
    let registry = root.registry_dir();
    let files = match yaml_files(&registry) {
        Ok(files) => files,
        Err(err) => {
            problems.push(
                Diagnostic::new(&registry, format!("cannot read the registry folder: {err}"))
                    .hint("the folder is set by `registry` in wasmhost.toml"),
            );
            return Err(problems);
        }
    };
    if files.is_empty() {
        problems.push(
            Diagnostic::new(&registry, "no *.yaml registry files here")
                .hint("add an _index.yaml with `version`, `namespace` and `entries`"),
        );
        return Err(problems);
    }

    let mut entries: Vec<(PathBuf, String, Spanned<RawEntry>)> = Vec::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) => {
                problems.push(Diagnostic::new(file, format!("cannot read: {err}")));
                continue;
            }
        };
        match yaml::parse(file, &text) {
            Ok(raw) => {
                let namespace = raw.namespace.value.clone();
                if let Err(message) = check_name(&namespace) {
                    problems.push(
                        Diagnostic::new(file, format!("namespace {message}"))
                            .at(raw.namespace.referenced.line()),
                    );
                }
                if raw.version.value != "1.0" {
                    problems.push(
                        Diagnostic::new(
                            file,
                            format!("unsupported version `{}`", raw.version.value),
                        )
                        .at(raw.version.referenced.line())
                        .hint("the registry format is version \"1.0\""),
                    );
                }
                for entry in raw.entries {
                    entries.push((file.clone(), namespace.clone(), entry));
                }
            }
            Err(diagnostic) => problems.push(diagnostic),
        }
    }

    let mut builder = Builder {
        problems,
        app: App {
            root: root.dir.clone(),
            ..App::default()
        },
        seen: BTreeMap::new(),
        services: Vec::new(),
    };
    for (file, namespace, entry) in entries {
        builder.entry(&file, &namespace, entry);
    }
    builder.finish()
}

/// `*.yaml` and `*.yml` files under `dir`, sorted, so loading is deterministic.
fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir)? {
            let path = item?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

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

struct Builder {
    problems: Diagnostics,
    app: App,
    /// Every entry id, to report duplicates and check references.
    seen: BTreeMap<String, (String, Origin)>,
    /// Services wait for all entries before their references are checked.
    services: Vec<(ServiceEntry, PendingRefs)>,
}

/// Reference lines of a service, checked once every entry is known.
struct PendingRefs {
    process_line: u64,
    host_line: u64,
    requires_lines: Vec<u64>,
}

impl Builder {
    fn entry(&mut self, file: &Path, namespace: &str, raw: Spanned<RawEntry>) {
        let line = raw.referenced.line();
        let raw = raw.value;
        let name = raw.name.value.clone();
        let id = format!("{namespace}:{name}");
        let origin = Origin {
            file: file.to_path_buf(),
            line,
        };
        let problem =
            |message: String, at: u64| Diagnostic::new(file, message).at(at).entry(id.clone());

        if let Err(message) = check_name(&name) {
            self.problems
                .push(problem(message, raw.name.referenced.line()));
            return;
        }
        let kind = raw.kind.value.as_str();
        if !KINDS.contains(&kind) {
            self.problems.push(
                problem(format!("unknown kind `{kind}`"), raw.kind.referenced.line())
                    .hint(format!("known kinds: {}", KINDS.join(", "))),
            );
            return;
        }
        if let Some((_, first)) = self.seen.get(&id) {
            let first = format!("{}:{}", first.file.display(), first.line);
            self.problems.push(problem(
                format!("duplicate entry; the first is at {first}"),
                line,
            ));
            return;
        }
        self.seen
            .insert(id.clone(), (kind.to_string(), origin.clone()));

        for (field, at) in present_fields(&raw) {
            if !fields_of(kind).contains(&field) {
                self.problems.push(
                    problem(
                        format!("field `{field}` does not apply to kind `{kind}`"),
                        at,
                    )
                    .hint(format!("`{kind}` takes: {}", fields_of(kind).join(", "))),
                );
            }
        }

        match kind {
            "process.wasm" => self.process(file, id, origin, raw),
            "process.host" => {
                let limits = self.limits(file, &id, raw.limits.as_ref());
                let lifecycle = self.lifecycle(file, &id, namespace, raw.lifecycle.as_ref());
                self.app.hosts.insert(
                    id.clone(),
                    HostEntry {
                        id,
                        origin,
                        workers: raw.workers.map(|w| w.value),
                        limits,
                        auto_start: lifecycle.auto_start,
                    },
                );
            }
            "terminal.host" => {
                let lifecycle = self.lifecycle(file, &id, namespace, raw.lifecycle.as_ref());
                self.app.terminals.insert(
                    id.clone(),
                    TerminalEntry {
                        id,
                        origin,
                        auto_start: lifecycle.auto_start,
                    },
                );
            }
            _ => self.service(file, namespace, id, origin, raw),
        }
    }

    fn process(&mut self, file: &Path, id: String, origin: Origin, raw: RawEntry) {
        let problem =
            |message: String, at: u64| Diagnostic::new(file, message).at(at).entry(id.clone());
        let Some(source) = raw.source else {
            self.problems.push(
                problem("missing field `source`".into(), origin.line)
                    .hint("`source` is the component file, relative to this YAML file"),
            );
            return;
        };
        let relative = source
            .value
            .strip_prefix("file://")
            .unwrap_or(&source.value);
        let dir = file.parent().unwrap_or(Path::new("."));
        let path = dir.join(relative);
        if !path.is_file() {
            self.problems.push(
                problem(
                    format!("source `{}` not found (looked for {})", source.value, path.display()),
                    source.referenced.line(),
                )
                .hint("build the components with `wasmhost build`, or fix the path (relative to this YAML file)"),
            );
        }
        let mut modules = Vec::new();
        for module in raw.modules.map(|m| m.value).unwrap_or_default() {
            match module.value.parse::<Module>() {
                Ok(m) if !modules.contains(&m) => modules.push(m),
                Ok(_) => {}
                Err(message) => self
                    .problems
                    .push(problem(message, module.referenced.line())),
            }
        }
        if let Some(hash) = &raw.hash {
            let ok = hash
                .value
                .strip_prefix("sha256:")
                .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
            if !ok {
                self.problems.push(
                    problem(
                        format!("hash `{}` is not `sha256:<64 hex digits>`", hash.value),
                        hash.referenced.line(),
                    )
                    .hint("`wasmhost check` prints each component's sha256"),
                );
            }
        }
        let limits = self.limits(file, &id, raw.limits.as_ref());
        let method = raw
            .method
            .map(|m| m.value)
            .unwrap_or_else(|| "main".to_string());
        self.app.processes.insert(
            id.clone(),
            ProcessEntry {
                id,
                origin,
                source: path,
                hash: raw.hash.map(|h| h.value),
                method,
                modules,
                limits,
            },
        );
    }

    fn service(&mut self, file: &Path, namespace: &str, id: String, origin: Origin, raw: RawEntry) {
        let mut missing = |field: &str| {
            self.problems.push(
                Diagnostic::new(file, format!("missing field `{field}`"))
                    .at(origin.line)
                    .entry(id.clone()),
            );
        };
        let (Some(process), Some(host)) = (raw.process.as_ref(), raw.host.as_ref()) else {
            if raw.process.is_none() {
                missing("process");
            }
            if raw.host.is_none() {
                missing("host");
            }
            return;
        };
        let mut args = Vec::new();
        for value in raw.args.map(|a| a.value).unwrap_or_default() {
            let mut bytes = Vec::new();
            if ciborium::into_writer(&value, &mut bytes).is_ok() {
                args.push(bytes);
            }
        }
        let lifecycle = self.lifecycle(file, &id, namespace, raw.lifecycle.as_ref());
        let refs = PendingRefs {
            process_line: process.referenced.line(),
            host_line: host.referenced.line(),
            requires_lines: raw
                .lifecycle
                .as_ref()
                .and_then(|l| l.value.requires.as_ref())
                .map(|r| r.iter().map(|s| s.referenced.line()).collect())
                .unwrap_or_default(),
        };
        self.services.push((
            ServiceEntry {
                id,
                origin,
                process: qualify(namespace, &process.value),
                host: qualify(namespace, &host.value),
                args,
                lifecycle,
            },
            refs,
        ));
    }

    fn limits(
        &mut self,
        file: &Path,
        id: &str,
        raw: Option<&Spanned<RawLimits>>,
    ) -> LimitOverrides {
        let Some(raw) = raw else {
            return LimitOverrides::default();
        };
        let raw = &raw.value;
        LimitOverrides {
            memory: raw
                .memory
                .as_ref()
                .and_then(|v| self.size(file, id, "memory", v)),
            cpu: raw
                .cpu
                .as_ref()
                .and_then(|v| self.duration(file, id, "cpu", v)),
            mailbox: raw.mailbox.as_ref().map(|v| v.value),
            message_size: raw
                .message_size
                .as_ref()
                .and_then(|v| self.size(file, id, "message_size", v)),
            children: raw.children.as_ref().map(|v| v.value),
        }
    }

    fn lifecycle(
        &mut self,
        file: &Path,
        id: &str,
        namespace: &str,
        raw: Option<&Spanned<RawLifecycle>>,
    ) -> Lifecycle {
        let mut lifecycle = Lifecycle::default();
        let Some(raw) = raw else {
            return lifecycle;
        };
        let raw = &raw.value;
        if let Some(v) = &raw.auto_start {
            lifecycle.auto_start = v.value;
        }
        if let Some(requires) = &raw.requires {
            lifecycle.requires = requires
                .iter()
                .map(|r| qualify(namespace, &r.value))
                .collect();
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
            if let Some(d) = value
                .as_ref()
                .and_then(|v| self.duration(file, id, field, v))
            {
                *slot = d;
            }
        }
        if let Some(restart) = &raw.restart {
            let r = &restart.value;
            let target = &mut lifecycle.restart;
            if let Some(d) = r
                .initial_delay
                .as_ref()
                .and_then(|v| self.duration(file, id, "initial_delay", v))
            {
                target.initial_delay = d;
            }
            if let Some(d) = r
                .max_delay
                .as_ref()
                .and_then(|v| self.duration(file, id, "max_delay", v))
            {
                target.max_delay = d;
            }
            if let Some(v) = &r.backoff_factor {
                if v.value < 1.0 {
                    self.problems.push(
                        Diagnostic::new(file, "`backoff_factor` must be at least 1")
                            .at(v.referenced.line())
                            .entry(id),
                    );
                }
                target.backoff_factor = v.value;
            }
            if let Some(v) = &r.jitter {
                if !(0.0..=1.0).contains(&v.value) {
                    self.problems.push(
                        Diagnostic::new(file, "`jitter` must be between 0 and 1")
                            .at(v.referenced.line())
                            .entry(id),
                    );
                }
                target.jitter = v.value;
            }
            if let Some(v) = &r.max_attempts {
                target.max_attempts = v.value;
            }
        }
        lifecycle
    }

    fn duration(
        &mut self,
        file: &Path,
        id: &str,
        field: &str,
        v: &Spanned<String>,
    ) -> Option<Duration> {
        match humantime::parse_duration(&v.value) {
            Ok(d) => Some(d),
            Err(err) => {
                self.problems.push(
                    Diagnostic::new(
                        file,
                        format!("`{field}`: `{}` is not a duration: {err}", v.value),
                    )
                    .at(v.referenced.line())
                    .entry(id)
                    .hint("write durations like \"100ms\", \"5s\", \"2m\""),
                );
                None
            }
        }
    }

    fn size(&mut self, file: &Path, id: &str, field: &str, v: &Spanned<String>) -> Option<u64> {
        match v.value.parse::<bytesize::ByteSize>() {
            Ok(size) => Some(size.as_u64()),
            Err(err) => {
                self.problems.push(
                    Diagnostic::new(
                        file,
                        format!("`{field}`: `{}` is not a size: {err}", v.value),
                    )
                    .at(v.referenced.line())
                    .entry(id)
                    .hint("write sizes like \"64MiB\", \"512KiB\""),
                );
                None
            }
        }
    }

    /// Checks the services' references, orders them by `requires`, and returns the app.
    fn finish(mut self) -> Result<App, Diagnostics> {
        let services = std::mem::take(&mut self.services);
        let ids: BTreeSet<String> = services.iter().map(|(s, _)| s.id.clone()).collect();
        for (service, refs) in &services {
            let file = &service.origin.file;
            let problem = |message: String, at: u64| {
                Diagnostic::new(file, message)
                    .at(at)
                    .entry(service.id.clone())
            };
            if !self.app.processes.contains_key(&service.process) {
                let message = match self.seen.get(&service.process) {
                    Some((kind, _)) => format!(
                        "`process: {}` is a {kind}, not a process.wasm",
                        service.process
                    ),
                    None => format!("`process: {}` names no entry", service.process),
                };
                self.problems.push(
                    problem(message, refs.process_line)
                        .hint(known("process entries", self.app.processes.keys())),
                );
            }
            if !self.app.hosts.contains_key(&service.host) {
                let message = match self.seen.get(&service.host) {
                    Some((kind, _)) => {
                        format!("`host: {}` is a {kind}, not a process.host", service.host)
                    }
                    None => format!("`host: {}` names no entry", service.host),
                };
                self.problems.push(
                    problem(message, refs.host_line)
                        .hint(known("process hosts", self.app.hosts.keys())),
                );
            }
            for (i, required) in service.lifecycle.requires.iter().enumerate() {
                if !ids.contains(required) {
                    let line = refs
                        .requires_lines
                        .get(i)
                        .copied()
                        .unwrap_or(service.origin.line);
                    self.problems.push(
                        problem(
                            format!("`requires: {required}` names no process.service"),
                            line,
                        )
                        .hint(known("services", ids.iter())),
                    );
                }
            }
        }
        match start_order(services.into_iter().map(|(s, _)| s).collect()) {
            Ok(ordered) => self.app.services = ordered,
            Err(cycle) => {
                let first = &cycle[0];
                self.problems.push(
                    Diagnostic::new(
                        &first.origin.file,
                        format!(
                            "services require each other in a cycle: {}",
                            cycle
                                .iter()
                                .map(|s| s.id.as_str())
                                .collect::<Vec<_>>()
                                .join(" → ")
                        ),
                    )
                    .at(first.origin.line)
                    .entry(first.id.clone()),
                );
            }
        }
        if self.problems.is_empty() {
            Ok(self.app)
        } else {
            Err(self.problems)
        }
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

fn known<'a>(what: &str, ids: impl Iterator<Item = &'a String>) -> String {
    let ids: Vec<&str> = ids.map(String::as_str).collect();
    if ids.is_empty() {
        format!("the registry has no {what}")
    } else {
        format!("{what}: {}", ids.join(", "))
    }
}

/// Every service after those it requires (a stable topological sort); the services on a
/// cycle if there is one.
fn start_order(services: Vec<ServiceEntry>) -> Result<Vec<ServiceEntry>, Vec<ServiceEntry>> {
    let mut pending = services;
    let mut ordered: Vec<ServiceEntry> = Vec::new();
    while !pending.is_empty() {
        let started: BTreeSet<&str> = ordered.iter().map(|s| s.id.as_str()).collect();
        let ready = pending.iter().position(|s| {
            s.lifecycle
                .requires
                .iter()
                .all(|r| started.contains(r.as_str()) || !pending.iter().any(|p| &p.id == r))
        });
        match ready {
            Some(i) => ordered.push(pending.remove(i)),
            None => return Err(pending),
        }
    }
    Ok(ordered)
}

/// The fields present in an entry, with their lines.
fn present_fields(raw: &RawEntry) -> Vec<(&'static str, u64)> {
    let mut fields = Vec::new();
    let mut add = |name: &'static str, line: Option<u64>| {
        if let Some(line) = line {
            fields.push((name, line));
        }
    };
    add("source", raw.source.as_ref().map(|v| v.referenced.line()));
    add("method", raw.method.as_ref().map(|v| v.referenced.line()));
    add("modules", raw.modules.as_ref().map(|v| v.referenced.line()));
    add("hash", raw.hash.as_ref().map(|v| v.referenced.line()));
    add("limits", raw.limits.as_ref().map(|v| v.referenced.line()));
    add("workers", raw.workers.as_ref().map(|v| v.referenced.line()));
    add("process", raw.process.as_ref().map(|v| v.referenced.line()));
    add("host", raw.host.as_ref().map(|v| v.referenced.line()));
    add("args", raw.args.as_ref().map(|v| v.referenced.line()));
    add(
        "lifecycle",
        raw.lifecycle.as_ref().map(|v| v.referenced.line()),
    );
    fields
}
