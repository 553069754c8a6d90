//! The `wasmhost` command. Each subcommand is a module of its own; what they share is the
//! global flags (`flags.rs`), the log (`logging.rs`) and how a node is built with a spinner
//! for long compiles (`start.rs`). The node's life itself is the library's
//! (`wasmhost::lifecycle`), so an embedder lives it the same way.

mod build;
mod check;
mod flags;
mod init;
mod logging;
mod ps;
mod run;
mod start;
mod top;
mod upgrade;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

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

    /// How the log is written: `text` for people, `json` for a log system (one object per
    /// line). Default: `[node] log_format` of wasmhost.toml, else text.
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<logging::Format>,

    #[command(flatten)]
    node: flags::NodeFlags,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the app's hosts and auto-start services, and run ENTRY on the terminal.
    ///
    /// ENTRY is a process entry such as `app:cli` (or `cli`, if one namespace has it),
    /// optionally with its terminal host (`app:terminal/app:cli`), and arguments for its
    /// entry point after `--`. The exit code is the process's: a returned number, 1 for an
    /// error, 130 after Ctrl+C. Without ENTRY, runs the services until Ctrl+C (exit 130; a
    /// second Ctrl+C forces) or SIGTERM (exit 0).
    Run(run::RunArgs),
    /// Validate the registry and the components without running anything.
    Check,
    /// Build the app's components: its [build] command, then each [[build.guest]] of
    /// wasmhost.toml (Rust, Python, JavaScript or C) with a toolchain wasmhost installs on
    /// first use; a guest whose files did not change is not rebuilt.
    Build,
    /// Make DIR (default: the current folder) an app that runs: wasmhost.toml, a registry
    /// with a `hello` entry, and the hello guest in LANG (`wasmhost run --build app:hello`).
    /// Writes nothing if any of its files is there.
    Init {
        dir: Option<PathBuf>,
        /// The hello guest's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: wasmhost::app::GuestLang,
    },
    /// Show the running node of this app: its supervision tree and every live process (pid,
    /// entry, host, service, uptime, mailbox, memory, CPU time).
    Ps {
        /// Only these services, supervisors or process entries (`relay` for `app:relay` if
        /// the app has one of that name) and what descends from them.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
        /// One JSON document, for scripts.
        #[arg(long)]
        json: bool,
        /// The node of a cluster to ask, when several nodes of the app run on this machine.
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
    /// Upgrade ENTRY in the running node to its component as the registry names it now
    /// (its `hash` checked as at start): new processes start it, and each live one moves to
    /// it keeping its pid, names, links, monitors and mailbox — services first, in
    /// supervision order. A process hands over its state when it gets the `upgrade` event;
    /// one that has not within the grace period is killed (its supervisor starts the new
    /// component). If the new component fails before it first receives, the upgrade is
    /// rolled back and the command fails, saying why.
    Upgrade {
        /// The process entry, e.g. `app:relay` (or `relay`, if one namespace has it).
        entry: String,
        /// How long each process has to hand over.
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// One JSON document, for scripts.
        #[arg(long)]
        json: bool,
        /// The node of a cluster to ask, when several nodes of the app run on this machine.
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
    /// Watch the running node of this app: its supervision tree and its processes sorted by
    /// CPU (`c`), memory (`m`) or mailbox (`b`), refreshed every interval; `q` quits.
    Top {
        /// How often to ask the node, e.g. 500ms.
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// The node of a cluster to ask, when several nodes of the app run on this machine.
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match cli.log_format {
        Some(format) => format.into(),
        // The app's setting, if there is an app; a broken one is reported by the command.
        None => wasmhost::app::AppRoot::locate(cli.app.as_deref())
            .ok()
            .and_then(|root| root.node.log_format)
            .unwrap_or_default(),
    };
    let _logs = logging::init(cli.verbose, format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let app = cli.app.as_deref();
    match cli.command {
        Command::Init { dir, lang } => init::init(dir, lang),
        Command::Build => build::build(app),
        Command::Check => check::check(app, &cli.node),
        Command::Ps { names, json, node } => ps::ps(app, node.as_deref(), &names, json),
        Command::Run(args) => run::run(app, &cli.node, args),
        Command::Top { interval, node } => top::top(app, node.as_deref(), interval),
        Command::Upgrade {
            entry,
            grace,
            json,
            node,
        } => upgrade::upgrade(app, node.as_deref(), &entry, grace, json),
    }
}
