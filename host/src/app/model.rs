//! The validated app: what the runtime needs, with every reference checked and every default
//! filled in. Built by `load`; nothing downstream reads YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostic::Diagnostic;
use super::limits::LimitOverrides;

/// Where an entry was written, for messages about it later (e.g. a component that does not
/// compile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: u64,
}

/// A loaded and validated app.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The app's root folder (where `wasmhost.toml` is).
    pub root: PathBuf,
    pub processes: BTreeMap<String, ProcessEntry>,
    pub hosts: BTreeMap<String, HostEntry>,
    pub terminals: BTreeMap<String, TerminalEntry>,
    /// Every service, those outside supervisors in start order (after what they `require`).
    pub services: Vec<ServiceEntry>,
    pub supervisors: BTreeMap<String, SupervisorEntry>,
    /// The services and supervisors no supervisor owns, in start order: each after what it
    /// `requires`. The node starts these; supervisors start their children.
    pub top: Vec<String>,
    /// Process entries whose component file is missing (not built yet), each with the problem
    /// to show. The node compiles the others; spawning one of these fails (`no process
    /// entry`). `wasmhost check` refuses them all; `wasmhost run` those it would start.
    pub unbuilt: BTreeMap<String, Diagnostic>,
}

impl App {
    pub fn service(&self, id: &str) -> Option<&ServiceEntry> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The process entries a node of this app starts by itself: those of the top-level units
    /// in `placed` (all, if `None`) that start themselves, and of every child of a supervisor
    /// among them, at any depth.
    pub fn started_entries(&self, placed: Option<&[String]>) -> Vec<&str> {
        let mut units: Vec<&str> = Vec::new();
        for id in &self.top {
            let auto_start = match (self.service(id), self.supervisors.get(id)) {
                (Some(service), _) => service.lifecycle.auto_start,
                (None, Some(supervisor)) => supervisor.auto_start,
                (None, None) => false,
            };
            if auto_start && placed.is_none_or(|placed| placed.contains(id)) {
                units.push(id);
            }
        }
        let mut entries = Vec::new();
        while let Some(id) = units.pop() {
            if let Some(service) = self.service(id) {
                entries.push(service.process.as_str());
            } else if let Some(supervisor) = self.supervisors.get(id) {
                units.extend(supervisor.children.iter().map(String::as_str));
            }
        }
        entries
    }
}

/// A `process.wasm` entry: a component and what it may do.
#[derive(Debug, Clone)]
pub struct ProcessEntry {
    pub id: String,
    pub origin: Origin,
    /// Absolute path of the component file.
    pub source: PathBuf,
    /// The exported function to call (`method`, default `main`).
    pub method: String,
    /// The modules granted, as written. Which modules exist is the node's business: it checks
    /// them against the host interfaces it offers.
    pub modules: Vec<ModuleGrant>,
    /// `sha256:<hex>` the component must match, if pinned.
    pub hash: Option<String>,
    /// Overrides of the host's limits.
    pub limits: LimitOverrides,
    /// Names only this entry's processes may register (`names`).
    pub names: Vec<String>,
    /// What its processes may do beyond their own descendants (`authority`).
    pub authority: Authority,
}

/// `authority` of a `process.wasm` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authority {
    /// Besides itself and its descendants, whom a process may terminate, cancel, link and
    /// unlink, and whose exit reasons it sees in full when it monitors them.
    pub signal: Scope,
    /// Besides entries granted no more than its own, which entries a process may spawn.
    pub spawn: Scope,
    /// Besides its own host, which `process.host` entries a process may spawn on: a host of
    /// untrusted workers with threads and limits of its own keeps them off the others'.
    pub hosts: Scope,
}

/// Which entries (process entries, or hosts for `authority.hosts`) an authority reaches,
/// beyond the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// None beyond the default.
    #[default]
    Own,
    /// These `process.wasm` entries.
    Entries(Vec<String>),
    /// Every entry.
    Any,
}

impl Scope {
    pub fn covers(&self, entry: &str) -> bool {
        match self {
            Scope::Own => false,
            Scope::Entries(entries) => entries.iter().any(|e| e == entry),
            Scope::Any => true,
        }
    }

    /// Whether this scope reaches at least as far as `other`.
    pub fn includes(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::Any, _) | (_, Scope::Own) => true,
            (Scope::Entries(mine), Scope::Entries(theirs)) => {
                theirs.iter().all(|e| mine.contains(e))
            }
            (_, _) => false,
        }
    }
}

/// One module named in an entry's `modules`, and the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleGrant {
    pub name: String,
    pub line: u64,
}

impl ProcessEntry {
    /// Whether `modules` lists `module`.
    pub fn grants(&self, module: &str) -> bool {
        self.modules.iter().any(|m| m.name == module)
    }
}

/// A `process.host`: a scheduling domain and the default limits of its processes.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub id: String,
    pub origin: Origin,
    /// Worker threads of its own; `None` runs its processes on the node's shared threads.
    pub workers: Option<u32>,
    pub limits: LimitOverrides,
}

/// A `terminal.host`: binds one process at a time to the terminal.
#[derive(Debug, Clone)]
pub struct TerminalEntry {
    pub id: String,
    pub origin: Origin,
}

/// A `process.service`: a supervised instance of a process entry.
#[derive(Debug, Clone)]
pub struct ServiceEntry {
    pub id: String,
    pub origin: Origin,
    pub process: String,
    pub host: String,
    /// Arguments for the entry point, CBOR-encoded.
    pub args: Vec<Vec<u8>>,
    pub lifecycle: Lifecycle,
}

/// A `process.supervisor`: starts its children (services and supervisors) in order, stops
/// them in reverse, and restarts them by its strategy, as an OTP supervisor does.
#[derive(Debug, Clone)]
pub struct SupervisorEntry {
    pub id: String,
    pub origin: Origin,
    /// Services and supervisors, in start order.
    pub children: Vec<String>,
    pub strategy: Strategy,
    /// More restarts than this within `period` and the supervisor gives up: it stops its
    /// children and fails, which its own supervisor sees as a child failing.
    pub max_restarts: u32,
    pub period: Duration,
    pub auto_start: bool,
    pub requires: Vec<String>,
    /// In a cluster, the nodes that may run it (see [`Lifecycle::nodes`]).
    pub nodes: Vec<String>,
}

/// Which children a supervisor restarts when one of them ends and is to be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Only that child.
    OneForOne,
    /// Every child: the others are stopped in reverse order, then all start in order.
    OneForAll,
    /// That child and those after it in `children`.
    RestForOne,
}

impl Strategy {
    pub const ALL: [(Strategy, &'static str); 3] = [
        (Strategy::OneForOne, "one_for_one"),
        (Strategy::OneForAll, "one_for_all"),
        (Strategy::RestForOne, "rest_for_one"),
    ];

    pub fn name(self) -> &'static str {
        Strategy::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("one_for_one", |(_, n)| n)
    }
}

/// When a service that ended is started again (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartType {
    /// Always, even after it returned normally.
    Permanent,
    /// Only when it failed (error, trap, limit, kill): a normal return leaves it exited.
    Transient,
    /// Never.
    Temporary,
}

impl RestartType {
    pub const ALL: [(RestartType, &'static str); 3] = [
        (RestartType::Permanent, "permanent"),
        (RestartType::Transient, "transient"),
        (RestartType::Temporary, "temporary"),
    ];

    /// Whether a service that ended so is started again.
    pub fn restarts(self, normal: bool) -> bool {
        match self {
            RestartType::Permanent => true,
            RestartType::Transient => !normal,
            RestartType::Temporary => false,
        }
    }
}

/// How a service is started, stopped and restarted.
#[derive(Debug, Clone, PartialEq)]
pub struct Lifecycle {
    pub auto_start: bool,
    pub requires: Vec<String>,
    /// In a cluster, the nodes that may run it, in order of preference: it runs on one at a
    /// time, the first that is up, and moves to the next one up when its node is down.
    /// Empty: every node that places it (`[cluster] services`) runs it.
    pub nodes: Vec<String>,
    /// Whether it is started again when it ends (default: transient).
    pub restart_type: RestartType,
    /// How long a starting service has to become ready (to register the names its entry
    /// reserves) before the start counts as failed.
    pub start_timeout: Duration,
    /// How long a stopping service has between its cancel and being terminated.
    pub stop_timeout: Duration,
    /// Running this long without failing resets the restart backoff.
    pub stable_threshold: Duration,
    pub restart: Restart,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            auto_start: false,
            requires: Vec::new(),
            nodes: Vec::new(),
            restart_type: RestartType::Transient,
            start_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(5),
            stable_threshold: Duration::from_secs(30),
            restart: Restart::default(),
        }
    }
}

/// Restart backoff: `initial_delay * backoff_factor^n`, capped at `max_delay`, ± `jitter`.
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub backoff_factor: f64,
    pub jitter: f64,
    /// 0 restarts forever.
    pub max_attempts: u32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(90),
            backoff_factor: 2.0,
            jitter: 0.1,
            max_attempts: 0,
        }
    }
}

impl Restart {
    /// The delay before restart number `attempt` (1-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = self
            .backoff_factor
            .max(1.0)
            .powi(attempt.saturating_sub(1) as i32);
        let secs = (self.initial_delay.as_secs_f64() * factor).min(self.max_delay.as_secs_f64());
        Duration::from_secs_f64(secs)
    }
}

/// The `[node]` section of `wasmhost.toml`: how the node is sized. Unset fields keep the
/// node's defaults; command-line flags override them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSettings {
    pub max_processes: Option<u32>,
    pub reserved_processes: Option<u32>,
    pub max_memory: Option<u64>,
    pub memory_budget: Option<u64>,
    pub epoch_tick: Option<Duration>,
    pub workers: Option<usize>,
    pub zero_stacks: Option<bool>,
    /// How the `wasmhost` command writes its log (`--log-format` overrides).
    pub log_format: Option<crate::logs::LogFormat>,
    /// `[node.limits]`: defaults for every process of the app.
    pub limits: LimitOverrides,
}

/// `[cluster]` of wasmhost.toml (or `--cluster`, `--node`, `--services`): how the node joins a
/// cluster. Nothing here means a node of its own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSettings {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: Option<String>,
    /// This node's name in the cluster.
    pub node: Option<String>,
    /// How often the node tells the others it is alive.
    pub heartbeat: Option<Duration>,
    /// How long a node may be silent before the others take it for down.
    pub down_after: Option<Duration>,
    /// The services (and supervisors) this node runs; `None`: every one that starts itself.
    pub services: Option<Vec<String>>,
    /// A NATS credentials file (`.creds`) the node authenticates with.
    pub credentials: Option<PathBuf>,
    /// A CA certificate (PEM) that the server's TLS certificate must chain to; TLS is then
    /// required.
    pub tls_ca: Option<PathBuf>,
}

impl ClusterSettings {
    /// `other`'s settings where it has them, else these.
    pub fn merged(&self, other: &ClusterSettings) -> ClusterSettings {
        ClusterSettings {
            url: other.url.clone().or_else(|| self.url.clone()),
            node: other.node.clone().or_else(|| self.node.clone()),
            heartbeat: other.heartbeat.or(self.heartbeat),
            down_after: other.down_after.or(self.down_after),
            services: other.services.clone().or_else(|| self.services.clone()),
            credentials: other
                .credentials
                .clone()
                .or_else(|| self.credentials.clone()),
            tls_ca: other.tls_ca.clone().or_else(|| self.tls_ca.clone()),
        }
    }
}

impl App {
    /// The host a process may be spawned on: a `process.host` or a `terminal.host`.
    pub fn has_host(&self, id: &str) -> bool {
        self.hosts.contains_key(id) || self.terminals.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_grows_by_the_factor_and_stops_at_the_cap() {
        let restart = Restart::default();
        assert_eq!(restart.delay(1), Duration::from_secs(1));
        assert_eq!(restart.delay(2), Duration::from_secs(2));
        assert_eq!(restart.delay(4), Duration::from_secs(8));
        assert_eq!(restart.delay(20), Duration::from_secs(90));
    }
}
