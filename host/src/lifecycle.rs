//! A node's life as `wasmhost run` lives it, for an embedder too: the services started and
//! the control socket answering (`Running::start`), an entry run on a terminal host once the
//! services are ready (`Running::run_entry`) or the services kept until a stop is asked
//! (`Running::serve`), and the stop itself, where a second request forces it
//! (`Running::stop`). What asks for a stop is the caller's: `Signals` is Ctrl+C and SIGTERM.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::oneshot;

use futures::future::BoxFuture;

use crate::app::{App, AppRoot};
use crate::control::{self, Requests, Serving, Snapshot, UpgradeAnswer};
use crate::runtime::{ExitReason, Node, Pid, SpawnOptions};
use crate::services::Services;
use crate::services::Tree;

/// What asks a node to stop: each request is one `requested()` that completes.
pub trait StopRequests {
    fn requested(&mut self) -> impl Future<Output = ()> + Send;
}

/// Ctrl+C (SIGINT), or SIGTERM as a service manager sends it: both stop the node cleanly.
pub struct Signals {
    int: Signal,
    term: Signal,
    /// Whether a Ctrl+C came (a shell reports that as exit 130; a stop by SIGTERM is a
    /// service manager's normal stop).
    interrupted: bool,
}

impl Signals {
    /// Listens from now on: a signal at any later moment is a request, never the default
    /// kill.
    pub fn listen() -> Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt()).context("listening for Ctrl+C (SIGINT)")?,
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupted: false,
        })
    }

    /// Whether a Ctrl+C (SIGINT) was one of the requests.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }
}

impl StopRequests for Signals {
    async fn requested(&mut self) {
        tokio::select! {
            _ = self.int.recv() => self.interrupted = true,
            _ = self.term.recv() => {}
        }
    }
}

/// A process entry and the terminal host it runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryOnTerminal {
    pub host: String,
    pub entry: String,
}

impl EntryOnTerminal {
    /// Reads `app:terminal/app:cli` as host and entry; a bare entry runs on the app's only
    /// terminal host, and a name without its namespace (`cli`) is the app's one entry of that
    /// name. Checked against the app, so a mistyped entry is found before anything boots,
    /// with the nearest name suggested.
    pub fn resolve(app: &App, spec: &str) -> Result<EntryOnTerminal> {
        let (host, entry) = match spec.split_once('/') {
            Some((host, entry)) => (
                qualified(
                    host,
                    app.terminals.keys(),
                    ("terminal.host", "terminal hosts"),
                )?,
                entry,
            ),
            None => {
                let mut terminals = app.terminals.keys();
                match (terminals.next(), terminals.next()) {
                    (Some(host), None) => (host.clone(), spec),
                    (None, _) => bail!(
                        "the app has no terminal.host to run {spec} on\n  hint: add an entry with `kind: terminal.host`"
                    ),
                    (Some(_), Some(_)) => bail!(
                        "the app has several terminal hosts; name one: `wasmhost run HOST/{spec}`"
                    ),
                }
            }
        };
        let entry = qualified(
            entry,
            app.processes.keys(),
            ("process entry", "process entries"),
        )?;
        Ok(EntryOnTerminal { host, entry })
    }
}

/// The full ids of the services, supervisors or process entries `names` stand for (each
/// as `wasmhost run` reads an entry: a name without its namespace if the app has one such),
/// for `wasmhost ps NAME…`; an unknown one is an error naming the nearest.
pub fn resolve_names(app: &App, names: &[String]) -> Result<Vec<String>> {
    let known: std::collections::BTreeSet<&String> = app
        .services
        .iter()
        .map(|s| &s.id)
        .chain(app.supervisors.keys())
        .chain(app.processes.keys())
        .collect();
    let what = (
        "service, supervisor or entry",
        "services, supervisors and entries",
    );
    names
        .iter()
        .map(|name| qualified(name, known.iter().copied(), what))
        .collect()
}

/// `name` as one of `known` (`namespace:name`): itself, or the one entry whose name it is
/// without the namespace. Otherwise an error naming the nearest.
fn qualified<'a>(
    name: &str,
    known: impl Iterator<Item = &'a String> + Clone,
    (what, whats): (&str, &str),
) -> Result<String> {
    if known.clone().any(|id| id == name) {
        return Ok(name.to_string());
    }
    let bare = |id: &&String| id.split_once(':').map(|(_, n)| n) == Some(name);
    let matching: Vec<&String> = known.clone().filter(bare).collect();
    match matching.as_slice() {
        [one] => return Ok((*one).clone()),
        [] => {}
        several => bail!(
            "`{name}` is in several namespaces; name one: {}",
            several
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    let nearest = known
        .clone()
        .map(|id| {
            let bare = id.split_once(':').map_or(id.as_str(), |(_, n)| n);
            let distance = strsim::levenshtein(id, name).min(strsim::levenshtein(bare, name));
            (distance, id)
        })
        .min();
    let all: Vec<&str> = known.map(String::as_str).collect();
    match nearest {
        Some((distance, id)) if distance <= 2.max(name.len() / 3) => bail!(
            "no {what} `{name}`\n  hint: did you mean `{id}`? ({whats}: {})",
            all.join(", ")
        ),
        _ if all.is_empty() => bail!("no {what} `{name}`: the app has none"),
        _ => bail!("no {what} `{name}`\n  hint: {whats}: {}", all.join(", ")),
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    /// The entry's process ended so.
    Exited(Pid, ExitReason),
    /// A stop was requested first.
    Interrupted,
    /// The app's top supervisor gave up: the app cannot go on (OTP stops the node then).
    Failed(String),
}

/// How the services stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Each within its `stop_timeout`.
    Cleanly,
    /// A second request came first: what still runs ends with the node.
    Forced,
}

/// A node with its services started and its control socket answering `wasmhost ps`.
pub struct Running {
    node: Arc<Node>,
    services: Services,
    _control: Option<Serving>,
}

impl Running {
    /// Starts the services and the control socket. Without a socket (another node of the
    /// app has it, or the runtime folder is not private) the node runs on, unseen, and says
    /// why. `started` is when the node's start began, for `ps`'s uptime.
    pub async fn start(node: Arc<Node>, started: Instant) -> Running {
        Running::start_placed(node, started, None).await
    }

    /// As [`Running::start`], but on a node of a cluster that runs only the top-level
    /// services and supervisors `placed` names (`[cluster] services`); `None`: all of them.
    pub async fn start_placed(
        node: Arc<Node>,
        started: Instant,
        placed: Option<Vec<String>>,
    ) -> Running {
        let services = Services::start(&node, placed.as_deref());
        let control = serve_control(&node, &services, started).await;
        Running {
            node,
            services,
            _control: control,
        }
    }

    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Runs the services until a stop is requested (`Interrupted`) or the top supervisor
    /// gives up (`Failed`); says once when they are all running.
    pub async fn serve(&self, stop: &mut impl StopRequests) -> Ended {
        tracing::info!("running services; Ctrl+C to stop");
        tokio::select! {
            _ = stop.requested() => Ended::Interrupted,
            _ = async {
                match self.services.running().await {
                    Ok(()) => tracing::info!("all services running; `wasmhost ps` shows them"),
                    Err(why) => tracing::warn!("not all services run: {why}"),
                }
                std::future::pending::<()>().await
            } => unreachable!("pending never completes"),
            why = self.services.failed() => Ended::Failed(why),
        }
    }

    /// Runs `entry` with `args` once every service is ready (so its first message finds
    /// them), and waits for it to end. A stop requested meanwhile, or the app failing,
    /// terminates it. An error if a service cannot start or the entry cannot be spawned.
    pub async fn run_entry(
        &self,
        entry: &EntryOnTerminal,
        args: Vec<Vec<u8>>,
        stop: &mut impl StopRequests,
    ) -> Result<Ended> {
        let EntryOnTerminal { host, entry } = entry;
        tokio::select! {
            running = self.services.running() => {
                if let Err(why) = running {
                    bail!("cannot run {entry}: {why}");
                }
            }
            _ = stop.requested() => return Ok(Ended::Interrupted),
        }
        let (tx, exit) = oneshot::channel();
        let pid = self
            .node
            .spawn(SpawnOptions::new(entry, host).args(args).on_exit(tx))
            .map_err(|err| anyhow::anyhow!("cannot start {entry}: {err}"))?;
        tracing::debug!(%pid, "running {entry} on the terminal");
        Ok(tokio::select! {
            reason = exit => {
                let reason = reason.unwrap_or(ExitReason::Error("lost track of the process".into()));
                Ended::Exited(pid, reason)
            }
            _ = stop.requested() => {
                self.node.terminate(&pid, ExitReason::Killed("Ctrl+C".into()));
                Ended::Interrupted
            }
            why = self.services.failed() => {
                self.node.terminate(&pid, ExitReason::Killed(why.clone()));
                Ended::Failed(why)
            }
        })
    }

    /// Stops the services, each within its `stop_timeout`; a stop requested meanwhile
    /// stops waiting for them. `announce` says so on the log first.
    pub async fn stop(self, stop: &mut impl StopRequests, announce: bool) -> Stopped {
        if announce {
            tracing::info!("stopping (Ctrl+C again to force)");
        }
        tokio::select! {
            _ = self.services.stop() => Stopped::Cleanly,
            _ = stop.requested() => {
                tracing::warn!("forced: services still stopping end with wasmhost");
                Stopped::Forced
            }
        }
    }
}

/// What the node answers on its control socket: `ps`, and `upgrade`.
struct Answers {
    node: Arc<Node>,
    tree: Tree,
    started: Instant,
}

impl Requests for Answers {
    fn ps(&self) -> Snapshot {
        Snapshot::take(&self.node, &self.tree, self.started.elapsed())
    }

    fn upgrade(&self, entry: String, grace: Duration) -> BoxFuture<'static, Result<UpgradeAnswer>> {
        let (node, tree) = (self.node.clone(), self.tree.clone());
        Box::pin(async move { upgrade(&node, &tree, &entry, grace).await })
    }
}

/// Upgrades the process entry `entry` (`relay` for `app:relay` if one namespace has it) of
/// `node` to its component as the registry names it now (read again: its `hash` too), each
/// process given `grace` to hand over, the services of `tree` first in supervision order:
/// `wasmhost upgrade` and `wasmhost run --watch`.
pub async fn upgrade(
    node: &Arc<Node>,
    tree: &Tree,
    entry: &str,
    grace: Duration,
) -> Result<UpgradeAnswer> {
    let root = AppRoot::locate(Some(&node.app().root))?;
    let app = crate::app::load(&root).map_err(|problems| anyhow::anyhow!("{problems}"))?;
    let id = qualified(
        entry,
        app.processes.keys(),
        ("process entry", "process entries"),
    )?;
    let Some(entry) = app.processes.get(&id).cloned() else {
        bail!("no process entry {id}");
    };
    // Services first, in the order they start (supervisors before their children).
    let services: Vec<Pid> = tree.units().into_iter().filter_map(|u| u.pid).collect();
    let source = entry.source.display().to_string();
    let report = node.upgrade(entry, &services, grace).await?;
    Ok(UpgradeAnswer::of(report, source))
}

/// Answers `wasmhost ps` and `wasmhost upgrade` while the node runs, or says why it cannot.
async fn serve_control(node: &Arc<Node>, services: &Services, started: Instant) -> Option<Serving> {
    let app_root = node.app().root.clone();
    let name = node.node_id().map(|id| id.name.to_string());
    let answers = Arc::new(Answers {
        node: node.clone(),
        tree: services.tree(),
        started,
    });
    match control::serve(&app_root, name.as_deref(), answers).await {
        Ok(serving) => {
            tracing::debug!(socket = %serving.path().display(), "answering `wasmhost ps`");
            Some(serving)
        }
        Err(err) => {
            tracing::warn!("`wasmhost ps` will not see this node: {err:#}");
            None
        }
    }
}
