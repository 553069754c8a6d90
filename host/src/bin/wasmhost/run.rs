//! `wasmhost run`: boots the app's hosts and services and runs an entry on the terminal, or
//! keeps the services until Ctrl+C. The node's life is `wasmhost::lifecycle`'s; this module
//! reads the arguments and turns how the run ended into an exit code.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use wasmhost::app::{App, AppRoot};
use wasmhost::lifecycle::{Ended, EntryOnTerminal, Running, Signals, Stopped};
use wasmhost::runtime::{Cluster, ClusterConfig, ExitReason, NodeConfig};
use wasmhost::services::placed_on;

use crate::flags::{ClusterFlags, NodeFlags};
use crate::{build, start};

/// The exit code of a run that a stop request ended (as a shell reports Ctrl+C).
const INTERRUPTED: u8 = 130;

#[derive(Args)]
pub struct RunArgs {
    entry: Option<String>,
    /// Build the components first (`wasmhost build`).
    #[arg(long)]
    build: bool,
    /// While it runs, build the app when its sources change and upgrade each entry whose
    /// component changed (`wasmhost upgrade`).
    #[arg(long)]
    watch: bool,
    /// Arguments for ENTRY's entry point, after `--`; each is read as a YAML value, so
    /// `42` is a number, `hi` a string, `[1, 2]` a list.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
    #[command(flatten)]
    cluster: ClusterFlags,
}

pub fn run(app: Option<&Path>, flags: &NodeFlags, run: RunArgs) -> Result<ExitCode> {
    if run.entry.is_none() && !run.args.is_empty() {
        bail!("arguments after `--` are for an ENTRY: name one, e.g. `wasmhost run app:cli -- 42`");
    }
    let args = entry_args(&run.args)?;
    let root = AppRoot::locate(app)?;
    let nothing_to_build = root
        .file
        .build
        .as_ref()
        .is_none_or(|b| b.command.is_none() && b.guest.is_empty());
    if run.watch && nothing_to_build {
        bail!(
            "--watch builds the app when its sources change, and {} says nothing to build\n  hint: add a [[build.guest]] (lang and source), or [build] command = \"…\"",
            root.dir.join(wasmhost::app::ROOT_FILE).display()
        );
    }
    if run.build {
        build::build_app(&root)?;
    }
    let Some(app) = start::load(&root) else {
        return Ok(ExitCode::FAILURE);
    };
    // A mistyped entry is reported before anything boots.
    let entry = match &run.entry {
        Some(spec) => Some(EntryOnTerminal::resolve(&app, spec)?),
        None => None,
    };
    let config = flags.config(&root);
    let mut cluster = run.cluster.config(&root)?;
    let placement = match &mut cluster {
        Some(cluster) => {
            let placement = run.cluster.placement(&root, &app)?;
            cluster.runs = placed_on(&app, &cluster.node, placement.as_deref());
            placement
        }
        None => None,
    };
    // What this run starts must be built; what it may never spawn need not be.
    let mut needed = app.started_entries(placement.as_deref());
    if let Some(entry) = &entry {
        needed.push(&entry.entry);
    }
    if !start::built(&app, &needed) {
        return Ok(ExitCode::FAILURE);
    }
    // Processes run on the node's own threads (`workers`); this runtime keeps their time and
    // I/O, the terminal, the services and the control socket.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("wasmhost")
        .build()
        .context("starting the async runtime")?;
    let watch = run.watch.then_some(root);
    let code = runtime.block_on(run_node(
        app, config, cluster, placement, entry, args, watch,
    ));
    // The stdin reader may be blocked on a read; do not wait for it.
    runtime.shutdown_background();
    code
}

/// Boots the node and runs `entry` on the terminal, or the services until a stop request.
async fn run_node(
    app: App,
    config: NodeConfig,
    cluster: Option<ClusterConfig>,
    placement: Option<Vec<String>>,
    entry: Option<EntryOnTerminal>,
    args: Vec<Vec<u8>>,
    watch: Option<AppRoot>,
) -> Result<ExitCode> {
    let started = Instant::now();
    // Listening from the start: a Ctrl+C at any moment is handled, never the default kill.
    let mut signals = Signals::listen()?;
    let cluster = match cluster {
        Some(config) => match Cluster::join(config).await {
            Ok(cluster) => Some(cluster),
            Err(err) => {
                eprintln!("error: {err}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => None,
    };
    let Some(node) = start::node(app, config, cluster.clone())? else {
        return Ok(ExitCode::FAILURE);
    };
    let running = Running::start_placed(node, started, placement).await;
    let watching = watch.map(|root| {
        let (node, tree) = (running.node().clone(), running.services().tree());
        tokio::spawn(crate::watch::watch(root, node, tree))
    });
    let code = run_services(running, &mut signals, entry, args).await;
    if let Some(watching) = watching {
        watching.abort();
    }
    // The others see this node gone at once, not after `down_after`.
    if let Some(cluster) = cluster {
        cluster.leave().await;
    }
    code
}

/// Runs `entry` on the terminal once the services are ready, or the services until a stop
/// request; stops them either way.
async fn run_services(
    running: Running,
    signals: &mut Signals,
    entry: Option<EntryOnTerminal>,
    args: Vec<Vec<u8>>,
) -> Result<ExitCode> {
    let Some(entry) = entry else {
        return Ok(match running.serve(signals).await {
            Ended::Failed(why) => {
                running.stop(signals, false).await;
                eprintln!("error: {why}");
                ExitCode::FAILURE
            }
            // Ctrl+C is reported as a shell reports it; SIGTERM, a service manager's stop,
            // ends it cleanly.
            _ => match running.stop(signals, true).await {
                Stopped::Cleanly if !signals.interrupted() => ExitCode::SUCCESS,
                _ => ExitCode::from(INTERRUPTED),
            },
        });
    };

    let ended = running.run_entry(&entry, args, signals).await;
    let name = &entry.entry;
    match ended {
        Err(err) => {
            running.stop(signals, false).await;
            Err(err)
        }
        Ok(Ended::Interrupted) => {
            running.stop(signals, true).await;
            Ok(ExitCode::from(INTERRUPTED))
        }
        Ok(Ended::Failed(why)) => {
            running.stop(signals, false).await;
            eprintln!("error: {why}; {name} stopped");
            Ok(ExitCode::FAILURE)
        }
        Ok(Ended::Exited(pid, reason)) => {
            if running.stop(signals, false).await == Stopped::Forced {
                return Ok(ExitCode::from(INTERRUPTED));
            }
            match reason {
                ExitReason::Normal(value) => Ok(ExitCode::from(exit_code(&value))),
                other => {
                    eprintln!("error: {name} {pid} failed: {other}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
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

/// The exit code for a returned value: a number (clamped to 0..=255), or 0.
fn exit_code(value: &[u8]) -> u8 {
    wasmhost::payload::as_integer(value).map_or(0, |n| n.clamp(0, 255) as u8)
}
