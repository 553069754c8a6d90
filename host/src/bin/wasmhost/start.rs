//! Loading an app and building its node as the subcommands do: every problem printed, and a
//! spinner on the terminal while a component compiles.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Result, bail};
use wasmhost::app::values::show_size;
use wasmhost::app::{self, App, AppRoot, Diagnostics};
use wasmhost::runtime::{Cluster, CompileProgress, Node, NodeConfig, StartError};

/// Loads the registry, printing every problem found. `None` if there were any.
pub fn load(root: &AppRoot) -> Option<App> {
    match app::load(root) {
        Ok(app) => Some(app),
        Err(problems) => {
            eprintln!("{problems}");
            None
        }
    }
}

/// Whether every process entry in `needed` has its component built; if not, prints what is
/// missing. Of those not built that are not needed, says once that spawning them fails
/// until they are built: a run that never spawns them goes on.
pub fn built(app: &App, needed: &[&str]) -> bool {
    let mut missing = Diagnostics::default();
    let mut others = Vec::new();
    for (id, diagnostic) in &app.unbuilt {
        if needed.contains(&id.as_str()) {
            missing.push(diagnostic.clone());
        } else {
            others.push(id.as_str());
        }
    }
    if !others.is_empty() {
        tracing::warn!(
            "not built, so spawning them fails until they are (`wasmhost build`): {}",
            others.join(", ")
        );
    }
    if missing.is_empty() {
        return true;
    }
    eprintln!("{missing}");
    false
}

/// Builds the node: checks the configuration against the app, compiles and checks the
/// components, printing every problem found. `None` if there were any.
pub fn node(
    app: App,
    config: NodeConfig,
    cluster: Option<Arc<Cluster>>,
) -> Result<Option<Arc<Node>>> {
    let mut builder = Node::builder(app);
    if let Some(cluster) = cluster {
        builder = builder.cluster(cluster);
    }
    let built = builder
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

/// How long a compile runs before it is logged when stderr is not a terminal: most take a
/// fraction of a second, a Python or JavaScript component tens of seconds.
const LONG_COMPILE: Duration = Duration::from_secs(1);

/// A compile's watcher: told when it is done, it answers whether it logged the start.
type Watcher = (Sender<()>, JoinHandle<bool>);

/// Shows a long compile: on a terminal a spinner with the component, its size and the time
/// so far; elsewhere (a log file, a service manager) a log line once it has run for
/// `LONG_COMPILE`, and one when it is done, so a cold start is never silent.
#[derive(Default)]
struct CompileSpinner {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    /// Compiles under way, when stderr is not a terminal: each one's watcher, told when it
    /// is done.
    watchers: Mutex<HashMap<PathBuf, Watcher>>,
}

impl CompileProgress for CompileSpinner {
    fn compiling(&self, source: &Path, bytes: usize) {
        let what = format!(
            "compiling {} ({}; later starts load it from the compile cache)",
            source.display(),
            show_size(bytes as u64)
        );
        if !std::io::stderr().is_terminal() {
            let (done, finished) = channel();
            // A watcher that speaks only if the compile is still running after a while, and
            // says whether it did.
            let watcher = std::thread::Builder::new()
                .name("compile-progress".into())
                .spawn(move || {
                    let long =
                        finished.recv_timeout(LONG_COMPILE) == Err(RecvTimeoutError::Timeout);
                    if long {
                        tracing::info!("{what}");
                    }
                    long
                });
            if let Ok(watcher) = watcher
                && let Ok(mut watchers) = self.watchers.lock()
            {
                watchers.insert(source.to_path_buf(), (done, watcher));
            }
            return;
        }
        let bar = indicatif::ProgressBar::new_spinner().with_message(what);
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
        let watcher = self
            .watchers
            .lock()
            .ok()
            .and_then(|mut watchers| watchers.remove(source));
        match watcher {
            Some((done, watcher)) => {
                let _ = done.send(());
                // It ends at once now; its start line, if any, comes before this one.
                if watcher.join().unwrap_or(false) {
                    tracing::info!(source = %source.display(), "compiled in {took:.2?}");
                } else {
                    tracing::debug!(source = %source.display(), "compiled in {took:.2?}");
                }
            }
            None => tracing::debug!(source = %source.display(), "compiled in {took:.2?}"),
        }
    }
}
