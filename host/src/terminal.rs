//! The terminal: the one process bound to a `terminal.host` owns stdin and stdout.
//!
//! Stdin is read line by line on a plain thread (a read blocked on a terminal must not hold
//! up the async runtime or its shutdown), so the same code serves a real terminal and a
//! pipe. Nothing puts the terminal in raw mode, so there is nothing to restore on exit.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// No process is bound.
const FREE: u64 = 0;

pub struct Terminal {
    bound: AtomicU64,
    /// Lines from the stdin reader thread, started on the first `readline`.
    lines: tokio::sync::Mutex<Option<mpsc::Receiver<String>>>,
    color: bool,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

impl Terminal {
    pub fn new() -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Terminal {
            bound: AtomicU64::new(FREE),
            lines: tokio::sync::Mutex::new(None),
            color,
        }
    }

    /// Binds the terminal to process `id`; false if another process holds it.
    pub fn bind(&self, id: u64) -> bool {
        self.bound
            .compare_exchange(FREE, id, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Frees the terminal if `id` holds it.
    pub fn unbind(&self, id: u64) {
        let _ = self
            .bound
            .compare_exchange(id, FREE, Ordering::AcqRel, Ordering::Acquire);
    }

    pub fn is_bound_to(&self, id: u64) -> bool {
        self.bound.load(Ordering::Acquire) == id
    }

    /// Whether output should be styled.
    pub fn color(&self) -> bool {
        self.color
    }

    pub fn print(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    pub fn write(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = write!(out, "{text}");
        let _ = out.flush();
    }

    pub fn eprint(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    /// The next line of stdin without its line ending; `None` at end of input.
    pub async fn readline(&self) -> Option<String> {
        let mut lines = self.lines.lock().await;
        if lines.is_none() {
            *lines = Some(self.start_reader());
        }
        lines.as_mut()?.recv().await
    }

    /// Called once, under the `lines` lock.
    fn start_reader(&self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(1);
        let spawned = std::thread::Builder::new()
            .name("wasmhost-stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                let mut line = String::new();
                loop {
                    line.clear();
                    match stdin.lock().read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = line.trim_end_matches(['\n', '\r']).to_string();
                            if tx.blocking_send(text).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start the stdin reader: {err}");
        }
        rx
    }
}
