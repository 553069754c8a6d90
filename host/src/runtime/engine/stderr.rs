//! A guest's stderr outside the terminal: the last few KiB are kept, so that when the guest
//! panics its exit reason can carry the panic message. Writes never fail (a failing stderr
//! would make Rust's `eprintln!` panic).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

const KEEP: usize = 4096;

#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// What the guest wrote last, as text.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Where and why a Rust guest panicked, if it printed that: `src/lib.rs:3:5: boom`.
    pub fn panic_message(&self) -> Option<String> {
        let text = self.text();
        let start = text.rfind("panicked at ")?;
        let mut lines = text[start..].lines();
        let location = lines
            .next()?
            .trim_start_matches("panicked at ")
            .trim_end_matches(':');
        let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
        Some(format!("{location}: {}", message.join(" ").trim()))
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend_from_slice(buf);
        if kept.len() > KEEP {
            let excess = kept.len() - KEEP;
            kept.drain(..excess);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_message_is_found_in_stderr() {
        let tail = StderrTail::default();
        tail.0.lock().unwrap().extend_from_slice(
            b"\nthread 'main' panicked at src/lib.rs:3:5:\nboom\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        assert_eq!(
            tail.panic_message().as_deref(),
            Some("src/lib.rs:3:5: boom")
        );
    }
}
