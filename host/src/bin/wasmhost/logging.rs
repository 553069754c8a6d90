//! The command's log: to stderr through a bounded queue and a writer thread
//! (`wasmhost::logs`), so a slow or stalled stderr never blocks the threads that run
//! processes (lines beyond the queue are dropped and counted, not waited for).

use std::io::IsTerminal;

use wasmhost::logs::{JsonLines, LogFormat, LogQueue};

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

impl From<Format> for LogFormat {
    fn from(format: Format) -> LogFormat {
        match format {
            Format::Text => LogFormat::Text,
            Format::Json => LogFormat::Json,
        }
    }
}

/// Installs the log; the guard flushes what is left when `main` returns.
pub fn init(verbose: bool, format: LogFormat) -> wasmhost::logs::FlushOnDrop {
    let default = if verbose {
        "warn,wasmhost=debug,guest=debug"
    } else {
        "warn,wasmhost=info,guest=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = LogQueue::to_as(std::io::stderr(), format);
    match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_ansi(ansi)
                .with_target(false)
                .compact()
                .init();
        }
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(false)
            .json()
            .event_format(JsonLines::new())
            .init(),
    }
    guard
}
