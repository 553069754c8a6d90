//! The node: the compiled programs, the hosts, and every live process — built once from an
//! app, a configuration and a table of host interfaces. Each concern has its own file and,
//! where it needs one, its own lock: the process table (`table`), names (`names`), links and
//! monitors (`links`, under each process's own lock), spawning (`spawn`), messages (`send`),
//! stop orders (`signals`) and the exit protocol (`exit`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::runtime::{Handle, RuntimeFlavor};
use wasmtime::Engine;

use super::names::Names;
use super::table::ProcessTable;
use super::upgrades::Upgrades;
use crate::app::Limits;
use crate::app::{App, Diagnostics, LimitOverrides, ProcessEntry};
use crate::runtime::cluster::Cluster;
use crate::runtime::engine;
use crate::runtime::engine::{
    CompileCache, CompileProgress, Compiler, ConfigError, HostInterface, NodeConfig, NodeState,
    Program, check_against_pool, compile_all, compile_entry,
};
use crate::runtime::process::{Account, NodeLedger, Process};
use crate::runtime::scheduler::Scheduler;
use crate::terminal::Terminal;
use wasmhost_types::{NodeId, Pid};

/// One wasmhost node. Built with [`Node::builder`].
pub struct Node {
    pub(super) config: NodeConfig,
    pub(super) engine: Engine,
    pub(super) app: Arc<App>,
    /// Each entry's program: the one new processes (and woken ones) run. `upgrade` replaces
    /// one.
    pub(super) programs: RwLock<HashMap<String, Arc<Program>>>,
    /// The host interfaces processes may be granted, kept to link an upgrade's component.
    pub(super) interfaces: Vec<HostInterface>,
    pub(super) progress: Option<Arc<dyn CompileProgress>>,
    /// Processes asked to hand over to a new component (`signals/upgrade.rs`).
    pub(in crate::runtime) upgrades: Upgrades,
    pub(super) hosts: HashMap<String, Host>,
    pub(super) defaults: Limits,
    pub(in crate::runtime) table: ProcessTable,
    pub(super) names: Names,
    /// Names the registry reserves, with the entries that may register them.
    pub(super) reserved: HashMap<String, Vec<String>>,
    /// Linear memory and tables of all processes, and what the host holds for them, against
    /// the node's budget.
    pub(super) ledger: Arc<NodeLedger>,
    /// What the node itself makes the host hold (messages it sends, cancels it asks for).
    pub(in crate::runtime) account: Arc<Account>,
    pub(in crate::runtime) terminal: Arc<Terminal>,
    /// Where the processes of hosts without threads of their own run; `None` if the node was
    /// built outside an async runtime, which processes need for time and I/O.
    pub(super) shared: Option<Threads>,
    /// The state of an embedder's host interfaces (`NodeBuilder::state`).
    pub(super) state: NodeState,
    /// The cluster this node is a member of, if any (`NodeBuilder::cluster`).
    pub(in crate::runtime) cluster: Option<Arc<Cluster>>,
}

/// The threads processes run on.
pub(in crate::runtime) enum Threads {
    /// The node's own scheduler (`scheduler.rs`).
    Own(Scheduler),
    /// The tasks of a single-threaded tokio runtime, the one the node was built in.
    Tokio(Handle),
}

impl Threads {
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        match self {
            Threads::Own(scheduler) => scheduler.spawn(task),
            Threads::Tokio(handle) => drop(handle.spawn(task)),
        }
    }

    /// The runtime that gives processes time and I/O.
    pub fn clock(&self) -> &Handle {
        match self {
            Threads::Own(scheduler) => scheduler.clock(),
            Threads::Tokio(handle) => handle,
        }
    }
}

/// A host entry as the node runs it.
pub(in crate::runtime) struct Host {
    /// The host's id, shared by the pids of its processes.
    pub id: Arc<str>,
    pub limits: LimitOverrides,
    /// A `terminal.host`: spawning binds the terminal.
    pub terminal: bool,
    /// Threads of its own (`workers`), if it has them.
    pub threads: Option<Threads>,
    /// The limits of each entry's processes on this host, resolved once and shared by them
    /// (a process holds a pointer, not its own copy).
    pub limits_of: HashMap<Arc<str>, Arc<Limits>>,
}

/// Why a node could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A node setting cannot be honoured.
    #[error("invalid node setting {0}")]
    Config(#[from] ConfigError),
    /// The registry or its components have problems, each with its file and line.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The engine or a host's threads could not be set up.
    #[error("cannot start the node: {0:#}")]
    Engine(anyhow::Error),
}

/// Builds a [`Node`]: an app, its configuration, the host interfaces processes may be
/// granted, and the terminal.
///
/// ```no_run
/// # async fn example(app: wasmhost::app::App) -> Result<(), wasmhost::runtime::StartError> {
/// use wasmhost::runtime::{Node, NodeConfig, SpawnOptions};
///
/// let node = Node::builder(app)
///     .config(NodeConfig { max_processes: 1_000, ..NodeConfig::default() })
///     .interfaces(wasmhost::abi::INTERFACES)
///     .build()?;
/// let (exit, exited) = tokio::sync::oneshot::channel();
/// let pid = node
///     .spawn(SpawnOptions::new("app:worker", "app:processes").on_exit(exit))
///     .expect("spawned");
/// println!("{pid} ended: {:?}", exited.await);
/// # Ok(())
/// # }
/// ```
pub struct NodeBuilder {
    app: App,
    config: NodeConfig,
    interfaces: Vec<HostInterface>,
    terminal: Option<Arc<Terminal>>,
    runtime: Option<Handle>,
    progress: Option<Arc<dyn CompileProgress>>,
    state: NodeState,
    cluster: Option<Arc<Cluster>>,
}

impl NodeBuilder {
    /// The cluster the node is a member of ([`Cluster::join`]): its pids carry the node's
    /// name and incarnation, and its processes reach those of the other members.
    pub fn cluster(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The node's sizes (default: [`NodeConfig::default`]).
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// Host interfaces processes may be granted; `wasmhost::abi::INTERFACES` is the standard
    /// table. Later rows for the same interface replace earlier ones.
    pub fn interfaces(mut self, table: &[HostInterface]) -> Self {
        for row in table {
            self.interfaces.retain(|r| !row.replaces(r));
            self.interfaces.push(row.clone());
        }
        self
    }

    /// The terminal a `terminal.host` binds (default: this process's stdin and stdout).
    pub fn terminal(mut self, terminal: Arc<Terminal>) -> Self {
        self.terminal = Some(terminal);
        self
    }

    /// The async runtime that gives processes time and I/O (default: the runtime `build` is
    /// called in, if any). Processes run on the node's own threads (`NodeConfig::workers`,
    /// and a host's `workers`) and are cancelled when this runtime shuts down; if it is a
    /// single-threaded runtime, those of hosts without `workers` run as its tasks instead.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// State for the node's host interfaces, one value per type: an embedder's interface
    /// reaches it from a process with `ProcessState::node_state`, and the embedder with
    /// `Node::state`. A later value of the same type replaces an earlier one.
    pub fn state<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.state.insert(value);
        self
    }

    /// Who hears when a component must be compiled, which can take seconds (default: no
    /// one). `wasmhost` shows it on the terminal.
    pub fn progress(mut self, progress: Arc<dyn CompileProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Validates the configuration against the app, compiles and checks every component,
    /// and returns a node ready to spawn. Nothing runs yet.
    pub fn build(self) -> Result<Arc<Node>, StartError> {
        self.config.validate()?;
        let config = self.config.fitted_to_machine()?;
        let problems = check_against_pool(&self.app, &config);
        if !problems.is_empty() {
            return Err(StartError::Invalid(problems));
        }
        let engine = engine::engine(&config).map_err(StartError::Engine)?;
        let cache = config.compile_cache.as_ref().map(CompileCache::new);
        let compiler = Compiler {
            cache: cache.as_ref(),
            progress: self.progress.as_deref(),
        };
        let programs = compile_all(&engine, &self.app, &self.interfaces, compiler)
            .map_err(StartError::Invalid)?;
        let clock = self.runtime.or_else(|| Handle::try_current().ok());
        let mut hosts = hosts(&self.app, clock.as_ref()).map_err(StartError::Engine)?;
        let defaults = config.default_limits();
        for host in hosts.values_mut() {
            host.limits_of = programs
                .values()
                .map(|p| {
                    (
                        p.id.clone(),
                        Arc::new(defaults.resolve(&p.entry.limits, &host.limits)),
                    )
                })
                .collect();
        }
        let shared = match clock {
            // tokio's paused clock (its test-util) moves on only when every task of its
            // runtime waits; there processes must be that runtime's tasks.
            Some(clock) if clock.runtime_flavor() == RuntimeFlavor::CurrentThread => {
                Some(Threads::Tokio(clock))
            }
            Some(clock) => {
                let threads = config
                    .workers
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
                let scheduler = Scheduler::start(threads, "wasmhost", clock)
                    .map_err(|err| StartError::Engine(anyhow::anyhow!("worker threads: {err}")))?;
                Some(Threads::Own(scheduler))
            }
            None => None,
        };
        let mut reserved: HashMap<String, Vec<String>> = HashMap::new();
        for entry in self.app.processes.values() {
            for name in &entry.names {
                reserved
                    .entry(name.clone())
                    .or_default()
                    .push(entry.id.clone());
            }
        }
        let ledger = NodeLedger::new(config.memory_budget());
        let node = Arc::new(Node {
            defaults,
            table: ProcessTable::new(config.max_processes),
            reserved,
            account: Account::new(u64::MAX, &ledger),
            ledger,
            config,
            engine,
            app: Arc::new(self.app),
            programs: RwLock::new(programs),
            interfaces: self.interfaces,
            progress: self.progress,
            upgrades: Upgrades::default(),
            hosts,
            names: Names::default(),
            terminal: self.terminal.unwrap_or_default(),
            shared,
            state: self.state,
            cluster: self.cluster,
        });
        if let Some(cluster) = &node.cluster {
            cluster.attach(&node);
        }
        Ok(node)
    }
}

/// The app's hosts, each with its own threads if it asks for them (and there is a runtime to
/// give them time).
fn hosts(app: &App, clock: Option<&Handle>) -> anyhow::Result<HashMap<String, Host>> {
    let mut hosts = HashMap::new();
    for host in app.hosts.values() {
        let threads = match (host.workers, clock) {
            (Some(workers), Some(clock)) => Some(Threads::Own(
                Scheduler::start(workers as usize, &host.id, clock.clone())
                    .map_err(|err| anyhow::anyhow!("threads for {}: {err}", host.id))?,
            )),
            _ => None,
        };
        let entry = Host {
            id: Arc::from(host.id.as_str()),
            limits: host.limits.clone(),
            terminal: false,
            threads,
            limits_of: HashMap::new(),
        };
        hosts.insert(host.id.clone(), entry);
    }
    for terminal in app.terminals.values() {
        let entry = Host {
            id: Arc::from(terminal.id.as_str()),
            limits: LimitOverrides::default(),
            terminal: true,
            threads: None,
            limits_of: HashMap::new(),
        };
        hosts.insert(terminal.id.clone(), entry);
    }
    Ok(hosts)
}

impl Node {
    /// Starts building a node for `app`.
    pub fn builder(app: App) -> NodeBuilder {
        NodeBuilder {
            app,
            config: NodeConfig::default(),
            interfaces: Vec::new(),
            terminal: None,
            runtime: None,
            progress: None,
            state: NodeState::default(),
            cluster: None,
        }
    }

    /// The cluster this node is a member of, if any.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// This node's name and incarnation in its cluster; `None` outside a cluster.
    pub fn node_id(&self) -> Option<&NodeId> {
        self.cluster.as_ref().map(|cluster| cluster.node_id())
    }

    /// The limits a process has unless its entry or host says otherwise.
    pub(in crate::runtime) fn defaults(&self) -> &Limits {
        &self.defaults
    }

    /// A new account on the node's ledger, for what the host holds for someone who is not a
    /// process (a peer node's messages waiting here).
    pub(in crate::runtime) fn new_account(&self, limit: u64) -> Arc<Account> {
        Account::new(limit, &self.ledger)
    }

    /// The state of type `T` given to the builder (`NodeBuilder::state`).
    pub fn state<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.state.get()
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled program of a `process.wasm` entry: the one its new processes run.
    pub fn program(&self, entry: &str) -> Option<Arc<Program>> {
        self.programs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(entry)
            .cloned()
    }

    /// `entry` compiled and linked as the node would at its start, with its compile cache:
    /// the program an upgrade moves the entry to, and its component's `sha256:…`.
    pub(in crate::runtime) fn compile(
        &self,
        entry: &ProcessEntry,
    ) -> Result<(Program, String), Diagnostics> {
        let cache = self.config.compile_cache.as_ref().map(CompileCache::new);
        let compiler = Compiler {
            cache: cache.as_ref(),
            progress: self.progress.as_deref(),
        };
        compile_entry(&self.engine, entry, &self.interfaces, compiler)
    }

    /// Makes `program` its entry's program, if the entry's program is still `expected`;
    /// returns whether it did.
    pub(in crate::runtime) fn replace_program(
        &self,
        expected: &Arc<Program>,
        program: Arc<Program>,
    ) -> bool {
        let mut programs = self.programs.write().unwrap_or_else(|e| e.into_inner());
        match programs.get_mut(&*program.id) {
            Some(current) if Arc::ptr_eq(current, expected) => {
                *current = program;
                true
            }
            _ => false,
        }
    }

    /// How many processes woke from hibernation and wait for a place in the pool.
    pub fn waiting_for_a_place(&self) -> usize {
        self.table.waiting()
    }

    /// How many processes are alive.
    pub fn process_count(&self) -> usize {
        self.table.len()
    }

    /// The live process `pid` names.
    pub(in crate::runtime) fn process_of(&self, pid: &Pid) -> Option<Arc<Process>> {
        self.table.find(pid)
    }

    /// The live process with the id `id`.
    pub(in crate::runtime) fn process(&self, id: u64) -> Option<Arc<Process>> {
        self.table.get(id)
    }

    /// Whether the process `pid` is alive.
    pub fn is_alive(&self, pid: &Pid) -> bool {
        self.table.find(pid).is_some()
    }

    /// Charges `bytes` of linear memory to the node's budget, if it has them.
    pub(in crate::runtime) fn charge_memory(&self, bytes: u64) -> bool {
        self.ledger.take_linear(bytes)
    }

    pub(in crate::runtime) fn release_memory(&self, bytes: u64) {
        self.ledger.give_back_linear(bytes);
    }

    /// Linear memory (and tables) all live processes have together.
    pub fn memory_used(&self) -> u64 {
        self.ledger.linear()
    }

    /// What the host holds for the node's processes (`ledger.rs`): with their linear memory,
    /// `memory_budget` bounds it.
    pub fn held(&self) -> u64 {
        self.ledger.held()
    }

    /// The host entry `name` names, shared by the pids of its processes; `None` if the app
    /// has no such host.
    /// The runtime that gives processes time: the caller's, or the node's own threads'.
    pub(in crate::runtime) fn clock(&self) -> Option<Handle> {
        Handle::try_current().ok().or_else(|| {
            let threads = self.shared.as_ref()?;
            Some(threads.clock().clone())
        })
    }

    pub(super) fn host_id(&self, name: &str) -> Option<&Arc<str>> {
        self.hosts.get(name).map(|host| &host.id)
    }

    /// The threads of `host`, if it has its own (`workers`).
    pub fn host_threads(&self, host: &str) -> Option<HostThreads> {
        let Threads::Own(threads) = self.hosts.get(host)?.threads.as_ref()? else {
            return None;
        };
        Some(HostThreads {
            threads: threads.threads(),
            processes: threads.tasks(),
        })
    }
}

/// A host's own threads, as [`Node::host_threads`] sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostThreads {
    /// How many worker threads it has.
    pub threads: usize,
    /// How many processes they are running.
    pub processes: usize,
}
