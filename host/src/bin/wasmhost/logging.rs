//! The command's log: to stderr through a bounded queue and a writer thread
//! (`wasmhost::logs`), so a slow or stalled stderr never blocks the threads that run
//! processes (lines beyond the queue are dropped and counted, not waited for).

use std::io::IsTerminal;

/// Installs the log; the guard flushes what is left when `main` returns.
pub fn init(verbose: bool) -> wasmhost::logs::FlushOnDrop {
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
