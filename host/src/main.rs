//! The `wasmhost` command: wires the app loader, the runtime and the supervisors together.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

use wasmhost::app::values::{parse_duration, parse_size, show_size};
use wasmhost::app::{self, App, AppRoot, Authority, Scope};
use wasmhost::control::{self, ControlSocket, Snapshot};
use wasmhost::runtime::{
    CompileProgress, Compiled, ExitReason, Node, NodeConfig, SpawnOptions, StartError,
};
use wasmhost::services::Services;

/// A WebAssembly-sandboxed process host: Erlang's process model, where every process is a
/// WebAssembly component.
#[derive(Parser)]
#[command(name = "wasmhost", version, about)]
struct Cli {
    /// The app folder (the one holding wasmhost.toml). Default: the nearest one at or above
    /// the current folder.
    #[arg(long, global = true, value_name = "DIR")]
    app: Option<PathBuf>,

    /// More logs (debug level). RUST_LOG overrides.
    #[arg(short, long, global = true)]
    verbose: bool,

    #[command(flatten)]
    node: NodeFlags,

    #[command(subcommand)]
    command: Command,
}

/// The node's sizes; each overrides its setting in `[node]` of wasmhost.toml.
#[derive(Args)]
struct NodeFlags {
    /// Processes alive at once (the size of the instance pool) [default: 10000].
    #[arg(long, global = true, value_name = "N")]
    max_processes: Option<u32>,

    /// The largest memory a process may have, e.g. 64MiB [default: 64MiB].
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,

    /// How long a guest runs before it yields to others, e.g. 5ms [default: 2ms].
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    epoch_tick: Option<Duration>,

    /// Threads for processes of hosts without `workers` of their own [default: one per core].
    #[arg(long, global = true, value_name = "N")]
    workers: Option<usize>,

    /// Keep compiled components in DIR, so later starts skip compiling [default:
    /// $XDG_CACHE_HOME/wasmhost, else ~/.cache/wasmhost].
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        conflicts_with = "no_compile_cache"
    )]
    compile_cache: Option<PathBuf>,

    /// Compile every component on every start.
    #[arg(long, global = true)]
    no_compile_cache: bool,
}

impl NodeFlags {
    /// The defaults, then `[node]`, then these flags.
    fn config(&self, root: &AppRoot) -> NodeConfig {
        let mut config = NodeConfig::default().with_settings(&root.node);
        if let Some(n) = self.max_processes {
            config.max_processes = n;
            config.fit_to_machine = false;
        }
        if let Some(size) = self.max_memory {
            config.max_memory = size;
        }
        if let Some(tick) = self.epoch_tick {
            config.epoch_tick = tick;
        }
        if self.workers.is_some() {
            config.workers = self.workers;
        }
        if let Some(dir) = &self.compile_cache {
            config.compile_cache = Some(dir.clone());
        }
        if self.no_compile_cache {
            config.compile_cache = None;
        }
        config
    }
}

#[derive(Subcommand)]
enum Command {
    /// Boot the app's hosts and auto-start services, and run ENTRY on the terminal.
    ///
    /// ENTRY is a process entry such as `app:cli`, optionally with its terminal host
    /// (`app:terminal/app:cli`), and arguments for its entry point after `--`. The exit code
    /// is the process's: a returned number, 1 for an error. Without ENTRY, runs the services
    /// until Ctrl+C (a second Ctrl+C forces).
    Run {
        entry: Option<String>,
        /// Build the components first (`wasmhost build`).
        #[arg(long)]
        build: bool,
        /// Arguments for ENTRY's entry point, after `--`; each is read as a YAML value, so
        /// `42` is a number, `hi` a string, `[1, 2]` a list.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Validate the registry and the components without running anything.
    Check,
    /// Build the app's components with the command in wasmhost.toml.
    Build,
    /// Make DIR (default: the current folder) a wasmhost app.
    Init { dir: Option<PathBuf> },
    /// Show the running node of this app: its supervision tree and every live process (pid,
    /// entry, host, service, uptime, mailbox, memory, CPU time).
    Ps {
        /// One JSON document, for scripts.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logs = init_logging(cli.verbose);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr through a bounded queue and a writer thread (`wasmhost::logs`): a slow
/// or stalled stderr never blocks the threads that run processes (lines beyond the queue are
/// dropped and counted, not waited for). The guard flushes what is left when `main` returns.
fn init_logging(verbose: bool) -> wasmhost::logs::FlushOnDrop {
    let default = if verbose {
        "warn,wasmhost=debug,guest=debug"
    } else {
        "warn,wasmhost=info,guest=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (writer, guard) = wasmhost::logs::LogQueue::stderr();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .compact()
        .init();
    guard
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("."));
            let path = app::init(&dir)?;
            println!("created {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Build => {
            let root = AppRoot::locate(cli.app.as_deref())?;
            build(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let root = AppRoot::locate(cli.app.as_deref())?;
            let Some(app) = load(&root) else {
                return Ok(ExitCode::FAILURE);
            };
            let Some(node) = start_node(app, cli.node.config(&root))? else {
                return Ok(ExitCode::FAILURE);
            };
            print_summary(&node);
            Ok(ExitCode::SUCCESS)
        }
        Command::Ps { json } => {
            let root = AppRoot::locate(cli.app.as_deref())?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let snapshot = runtime.block_on(control::ps(&root.dir))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshot)?);
            } else {
                print!("{}", snapshot.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            entry,
            build: rebuild,
            args,
        } => {
            if entry.is_none() && !args.is_empty() {
                bail!(
                    "arguments after `--` are for an ENTRY: name one, e.g. `wasmhost run app:cli -- 42`"
                );
            }
            let args = entry_args(&args)?;
            let root = AppRoot::locate(cli.app.as_deref())?;
            if rebuild {
                build(&root)?;
            }
            let Some(app) = load(&root) else {
                return Ok(ExitCode::FAILURE);
            };
            let config = cli.node.config(&root);
            // Processes run on the node's own threads (`workers`); this runtime keeps their
            // time and I/O, the terminal, the services and the control socket.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .thread_name("wasmhost")
                .build()
                .context("starting the async runtime")?;
            let code = runtime.block_on(run(app, config, entry, args))?;
            // The stdin reader may be blocked on a read; do not wait for it.
            runtime.shutdown_background();
            Ok(code)
        }
    }
}

/// Loads the registry, printing every problem found. `None` if there were any.
fn load(root: &AppRoot) -> Option<App> {
    match app::load(root) {
        Ok(app) => Some(app),
        Err(problems) => {
            eprintln!("{problems}");
            None
        }
    }
}

/// Builds the node: checks the configuration against the app, compiles and checks the
/// components, printing every problem found. `None` if there were any.
fn start_node(app: App, config: NodeConfig) -> Result<Option<Arc<Node>>> {
    let built = Node::builder(app)
        .config(config)
        .interfaces(wasmhost::abi::INTERFACES)
        .progress(Arc::new(CompileSpinner::default()))
        .build();
    match built {
        Ok(node) => Ok(Some(node)),
        Err(StartError::Invalid(problems)) => {
            eprintln!("{problems}");
            Ok(None)
        }
        Err(StartError::Config(err)) => bail!(
            "invalid node setting {err}\n  hint: settings come from [node] in wasmhost.toml and the command line (`wasmhost --help`)"
        ),
        Err(err) => Err(err.into()),
    }
}

/// Shows a long compile on the terminal: the component, its size and the time so far.
#[derive(Default)]
struct CompileSpinner {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl CompileProgress for CompileSpinner {
    fn compiling(&self, source: &Path, bytes: usize) {
        // Drawn only on a terminal; indicatif hides it otherwise.
        let bar = indicatif::ProgressBar::new_spinner().with_message(format!(
            "compiling {} ({}; later starts load it from the compile cache)",
            source.display(),
            show_size(bytes as u64)
        ));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn compiled(&self, source: &Path, took: Duration) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut slot| slot.take()) {
            bar.finish_and_clear();
        }
        tracing::debug!(source = %source.display(), "compiled in {took:.2?}");
    }
}

fn build(root: &AppRoot) -> Result<()> {
    let Some(build) = &root.file.build else {
        bail!(
            "{} has no [build] command\n  hint: add [build] command = \"cargo build --release --target wasm32-wasip2\"",
            root.dir.join(app::ROOT_FILE).display()
        );
    };
    eprintln!("building {}: {}", root.dir.display(), build.command);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&root.dir)
        .status()
        .with_context(|| format!("running `{}`", build.command))?;
    if !status.success() {
        bail!("the build command `{}` failed ({status})", build.command);
    }
    Ok(())
}

fn print_summary(node: &Node) {
    let app = node.app();
    println!("app {}", app.root.display());
    for host in app.terminals.values() {
        println!("  terminal.host    {}", host.id);
    }
    for host in app.hosts.values() {
        let workers = match host.workers {
            Some(n) => format!(" ({n} workers)"),
            None => String::new(),
        };
        println!("  process.host     {}{workers}", host.id);
    }
    for entry in app.processes.values() {
        let modules: Vec<_> = entry.modules.iter().map(|m| m.name.as_str()).collect();
        let Some(program) = node.program(&entry.id) else {
            continue;
        };
        // Hashed here rather than at every start: only `check` shows it, and a pinned `hash`
        // is checked when the entry is compiled.
        let sha256 = std::fs::read(&entry.source)
            .map(|bytes| wasmhost::runtime::sha256_of(&bytes))
            .unwrap_or_else(|err| format!("(cannot read {}: {err})", entry.source.display()));
        println!(
            "  process.wasm     {} [{}] {sha256}",
            entry.id,
            modules.join(", "),
        );
        let imports: Vec<String> = program
            .imports
            .iter()
            .map(|import| match import.denied {
                Some(module) => format!("{} (`{module}` not granted: its calls fail)", import.name),
                None => import.name.clone(),
            })
            .collect();
        println!("                   imports {}", imports.join(", "));
        if !entry.names.is_empty() {
            println!("                   reserves {}", entry.names.join(", "));
        }
        if entry.authority != Authority::default() {
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
            println!(
                "                   authority: signal {}; spawn {}; hosts {}",
                scope(signal),
                scope(spawn),
                scope(hosts)
            );
        }
    }
    for service in &app.services {
        let auto = if service.lifecycle.auto_start {
            ", auto_start"
        } else {
            ""
        };
        println!(
            "  process.service  {} ({} on {}{auto})",
            service.id, service.process, service.host
        );
    }
    for supervisor in app.supervisors.values() {
        let auto = if supervisor.auto_start {
            ", auto_start"
        } else {
            ""
        };
        println!(
            "  process.supervisor {} ({}, at most {} restarts in {:?}{auto}): {}",
            supervisor.id,
            supervisor.strategy.name(),
            supervisor.max_restarts,
            supervisor.period,
            supervisor.children.join(", ")
        );
    }
    let programs: Vec<_> = app
        .processes
        .keys()
        .filter_map(|id| node.program(id))
        .collect();
    let loaded = programs
        .iter()
        .filter(|p| p.compiled == Compiled::Loaded)
        .count();
    match &node.config().compile_cache {
        Some(dir) => println!(
            "  compile cache    {}: {loaded} of {} components loaded from it",
            dir.display(),
            programs.len()
        ),
        None => println!("  compile cache    off: every component compiled"),
    }
    println!("ok");
}

/// The arguments after `--`, each read as a YAML value and encoded as a payload.
fn entry_args(args: &[String]) -> Result<Vec<Vec<u8>>> {
    args.iter()
        .enumerate()
        .map(|(i, text)| {
            let value: ciborium::Value = serde_saphyr::from_str(text).map_err(|err| {
                anyhow::anyhow!("argument {} (`{text}`) is not a YAML value: {err}", i + 1)
            })?;
            let mut bytes = Vec::new();
            ciborium::into_writer(&value, &mut bytes).with_context(|| {
                format!(
                    "argument {} (`{text}`) cannot be encoded as a payload",
                    i + 1
                )
            })?;
            Ok(bytes)
        })
        .collect()
}

/// Boots the services and runs `entry` on the terminal (or waits for Ctrl+C).
async fn run(
    app: App,
    config: NodeConfig,
    entry: Option<String>,
    args: Vec<Vec<u8>>,
) -> Result<ExitCode> {
    let started = Instant::now();
    // Listening from the start: a Ctrl+C at any moment is handled, never the default kill.
    let mut interrupt = Interrupt::listen()?;
    let Some(node) = start_node(app, config)? else {
        return Ok(ExitCode::FAILURE);
    };
    let services = Services::start(&node);
    let _control = serve_control(&node, &services, started).await;

    let Some(entry) = entry else {
        tracing::info!("running services; Ctrl+C to stop");
        tokio::select! {
            _ = interrupt.recv() => {}
            // Says so once they are all running, then waits on.
            _ = async {
                match services.running().await {
                    Ok(()) => tracing::info!("all services running; `wasmhost ps` shows them"),
                    Err(why) => tracing::warn!("not all services run: {why}"),
                }
                std::future::pending::<()>().await
            } => {}
            why = services.failed() => {
                stop_services(services, &mut interrupt, false).await;
                eprintln!("error: {why}");
                return Ok(ExitCode::FAILURE);
            }
        }
        return Ok(match stop_services(services, &mut interrupt, true).await {
            Stopped::Cleanly => ExitCode::SUCCESS,
            Stopped::Forced => ExitCode::from(130),
        });
    };

    let (host, entry) = terminal_and_entry(&node, &entry)?;
    // The entry starts once every service is ready, so its first message finds them.
    tokio::select! {
        running = services.running() => {
            if let Err(why) = running {
                stop_services(services, &mut interrupt, false).await;
                bail!("cannot run {entry}: {why}");
            }
        }
        _ = interrupt.recv() => {
            stop_services(services, &mut interrupt, true).await;
            return Ok(ExitCode::from(130));
        }
    }
    let (tx, exit) = oneshot::channel();
    let pid = node
        .spawn(SpawnOptions::new(&entry, &host).args(args).on_exit(tx))
        .map_err(|err| anyhow::anyhow!("cannot start {entry}: {err}"))?;
    tracing::debug!(%pid, "running {entry} on the terminal");

    let reason = tokio::select! {
        reason = exit => reason.unwrap_or(ExitReason::Error("lost track of the process".into())),
        _ = interrupt.recv() => {
            node.terminate(&pid, ExitReason::Killed("Ctrl+C".into()));
            stop_services(services, &mut interrupt, true).await;
            return Ok(ExitCode::from(130));
        }
        // The app's top supervisor gave up: the app cannot go on (OTP stops the node).
        why = services.failed() => {
            node.terminate(&pid, ExitReason::Killed(why.clone()));
            stop_services(services, &mut interrupt, false).await;
            eprintln!("error: {why}; {entry} stopped");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Stopped::Forced = stop_services(services, &mut interrupt, false).await {
        return Ok(ExitCode::from(130));
    }
    match reason {
        ExitReason::Normal(value) => Ok(ExitCode::from(exit_code(&value))),
        other => {
            eprintln!("error: {entry} {pid} failed: {other}");
            Ok(ExitCode::FAILURE)
        }
    }
}

enum Stopped {
    Cleanly,
    Forced,
}

/// Ctrl+C (SIGINT), or SIGTERM as a service manager sends it: both stop the node cleanly.
struct Interrupt {
    int: Signal,
    term: Signal,
}

impl Interrupt {
    fn listen() -> Result<Interrupt> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt()).context("listening for Ctrl+C (SIGINT)")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// The control socket's task; the socket goes when this is dropped.
struct Control {
    task: tokio::task::JoinHandle<()>,
    path: PathBuf,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Answers `wasmhost ps` while the node runs; without a socket (another node of the app has
/// it, or the runtime folder is not private) the node runs on, unseen, and says why.
async fn serve_control(node: &Arc<Node>, services: &Services, started: Instant) -> Option<Control> {
    let socket = match ControlSocket::bind(&node.app().root).await {
        Ok(socket) => socket,
        Err(err) => {
            tracing::warn!("`wasmhost ps` will not see this node: {err:#}");
            return None;
        }
    };
    let path = socket.path().to_path_buf();
    tracing::debug!(socket = %path.display(), "answering `wasmhost ps`");
    let (node, tree) = (node.clone(), services.tree());
    let snapshot = Arc::new(move || Snapshot::take(&node, &tree, started.elapsed()));
    Some(Control {
        task: tokio::spawn(socket.serve(snapshot)),
        path,
    })
}

/// Stops the services (each within its `stop_timeout`); a Ctrl+C meanwhile stops waiting
/// for them, and what is still running ends with wasmhost.
async fn stop_services(services: Services, interrupt: &mut Interrupt, announce: bool) -> Stopped {
    if announce {
        tracing::info!("stopping (Ctrl+C again to force)");
    }
    tokio::select! {
        _ = services.stop() => Stopped::Cleanly,
        _ = interrupt.recv() => {
            tracing::warn!("forced: services still stopping end with wasmhost");
            Stopped::Forced
        }
    }
}

/// The exit code for a returned value: a number (clamped to 0..=255), or 0.
fn exit_code(value: &[u8]) -> u8 {
    wasmhost::payload::as_integer(value).map_or(0, |n| n.clamp(0, 255) as u8)
}

/// Splits `app:terminal/app:cli` into host and entry; a bare entry runs on the app's only
/// terminal host.
fn terminal_and_entry(node: &Node, spec: &str) -> Result<(String, String)> {
    let app = node.app();
    let (host, entry) = match spec.split_once('/') {
        Some((host, entry)) => (host.to_string(), entry.to_string()),
        None => {
            let mut terminals = app.terminals.keys();
            match (terminals.next(), terminals.next()) {
                (Some(host), None) => (host.clone(), spec.to_string()),
                (None, _) => bail!(
                    "the app has no terminal.host to run {spec} on\n  hint: add an entry with `kind: terminal.host`"
                ),
                (Some(_), Some(_)) => bail!(
                    "the app has several terminal hosts; name one: `wasmhost run HOST/{spec}`"
                ),
            }
        }
    };
    if !app.terminals.contains_key(&host) {
        bail!("`{host}` is not a terminal.host of this app");
    }
    if !app.processes.contains_key(&entry) {
        let known: Vec<_> = app.processes.keys().map(String::as_str).collect();
        bail!(
            "no process entry `{entry}`\n  hint: process entries: {}",
            known.join(", ")
        );
    }
    Ok((host, entry))
}
