//! The log's writer: lines go to stderr through a bounded queue and a thread of their own,
//! so a slow or stalled stderr never blocks the threads that run processes, and what waits
//! in the queue is bounded and paid for. A guest's line waiting there is charged to the
//! process that logged it (`runtime::guest_log_payer`, within its `host_memory`); a line that
//! finds the queue full, or its process's bytes used up, is dropped and counted, and the
//! count is written with the next line that gets through. Nothing is dropped silently.
//!
//! ```no_run
//! let (writer, _flush_on_drop) = wasmhost::logs::LogQueue::stderr();
//! tracing_subscriber::fmt().with_writer(writer).init();
//! ```
//!
//! As JSON, one object per line (`LogFormat::Json`): tracing-subscriber's JSON format for
//! the host's own lines, and for a guest's line the object `runtime/process/log.rs` made of
//! it (`JsonLines`), its fields as typed values.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::runtime::{Charge, JsonLine, guest_log_json, guest_log_payer};

/// The time now as the JSON lines write it (RFC 3339, microseconds, UTC).
fn now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

/// How log lines are written: text for people (the default), or one JSON object per line
/// for a log system (`--log-format json`, `[node] log_format = "json"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The JSON lines' format: a guest's line is the object its process's log call made (pid,
/// entry, message, fields as typed values), with the time and level; every other line is
/// tracing-subscriber's JSON, its fields at the top level.
pub struct JsonLines {
    host: Format<Json>,
}

impl JsonLines {
    /// The format; guest lines are handed to it as JSON objects from now on.
    pub fn new() -> JsonLines {
        crate::runtime::guest_logs_as_json(true);
        let host = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false);
        JsonLines { host }
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        JsonLines::new()
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if event.metadata().target() == "guest"
            && let Some(line) = guest_log_json()
        {
            /// In the order the host's lines have: time, level, message, then the rest.
            #[derive(serde::Serialize)]
            struct Stamped<'a> {
                timestamp: String,
                level: &'a str,
                #[serde(flatten)]
                line: JsonLine,
            }
            let stamped = Stamped {
                timestamp: now(),
                level: event.metadata().level().as_str(),
                line,
            };
            let text = serde_json::to_string(&stamped).map_err(|_| std::fmt::Error)?;
            return writeln!(writer, "{text}");
        }
        self.host.format_event(ctx, writer, event)
    }
}

/// Lines the queue holds. A guest's line is at most 16 KiB (`runtime/log.rs`), so the
/// queue holds at most 16 MiB of them.
pub const QUEUED_LINES: usize = 1024;

/// How long the guard waits for the queue to be written when the program ends.
const FLUSH_PATIENCE: Duration = Duration::from_secs(1);

enum Entry {
    Line {
        bytes: Vec<u8>,
        _receipt: Option<Charge>,
    },
    /// Written once every line before it is; answered on the channel it carries.
    Flush(SyncSender<()>),
}

/// The writer side: give it to `tracing_subscriber::fmt().with_writer(…)`.
#[derive(Clone)]
pub struct LogQueue {
    queue: SyncSender<Entry>,
    dropped: Arc<AtomicU64>,
}

/// Flushes the queue when dropped (at the end of `main`), waiting at most a second.
pub struct FlushOnDrop(LogQueue);

impl LogQueue {
    /// A queue written to stderr by a thread named `wasmhost-log`.
    pub fn stderr() -> (LogQueue, FlushOnDrop) {
        Self::to(std::io::stderr())
    }

    /// A queue written to `sink`.
    pub fn to(sink: impl Write + Send + 'static) -> (LogQueue, FlushOnDrop) {
        Self::to_as(sink, LogFormat::Text)
    }

    /// A queue written to `sink`, its own notices (lines dropped) in `format`.
    pub fn to_as(sink: impl Write + Send + 'static, format: LogFormat) -> (LogQueue, FlushOnDrop) {
        let (queue, lines) = sync_channel(QUEUED_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        // Without the thread, lines are counted as dropped: logging never fails a program.
        let _ = std::thread::Builder::new()
            .name("wasmhost-log".into())
            .spawn(move || write_lines(lines, sink, counter, format));
        let queue = LogQueue { queue, dropped };
        (queue.clone(), FlushOnDrop(queue))
    }

    /// Waits (about a second at most: stderr may be stalled for good) until every line
    /// queued so far is written.
    pub fn flush(&self) {
        let deadline = Instant::now() + FLUSH_PATIENCE;
        let (done, flushed) = sync_channel(1);
        let mut entry = Entry::Flush(done);
        loop {
            match self.queue.try_send(entry) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    entry = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match flushed.recv_timeout(left) {
            Ok(()) | Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
    }

    fn push(&self, bytes: Vec<u8>) {
        let receipt = match guest_log_payer() {
            Some(payer) => match payer.charge(bytes.len() as u64) {
                Ok(receipt) => Some(receipt),
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            None => None,
        };
        let entry = Entry::Line {
            bytes,
            _receipt: receipt,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.queue.try_send(entry)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn write_lines(
    lines: Receiver<Entry>,
    mut sink: impl Write,
    dropped: Arc<AtomicU64>,
    format: LogFormat,
) {
    for entry in lines {
        match entry {
            Entry::Line { bytes, _receipt } => {
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let why = "the log's queue was full, or their process's host_memory was \
                               used up";
                    let _ = match format {
                        LogFormat::Text => {
                            writeln!(sink, "wasmhost: {lost} log lines dropped ({why})")
                        }
                        LogFormat::Json => writeln!(
                            sink,
                            "{}",
                            serde_json::json!({
                                "timestamp": now(),
                                "level": "WARN",
                                "message": format!("{lost} log lines dropped ({why})"),
                                "lines_dropped": lost,
                            })
                        ),
                    };
                }
                let _ = sink.write_all(&bytes);
            }
            Entry::Flush(done) => {
                let _ = sink.flush();
                let _ = done.send(());
            }
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// One line being formatted; queued when `tracing` drops it.
pub struct LineWriter<'a> {
    queue: &'a LogQueue,
    bytes: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            self.queue.push(std::mem::take(&mut self.bytes));
        }
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            queue: self,
            bytes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink that holds what was written, and can be made to wait.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_past_a_full_queue_are_counted_and_said() {
        let sink = Sink::default();
        let blocked = Arc::new(Mutex::new(()));
        let hold = blocked.lock().expect("lock");
        let gate = blocked.clone();
        // The writer thread waits on `gate` in its first write: the queue fills behind it.
        struct Gated(Sink, Arc<Mutex<()>>);
        impl Write for Gated {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                drop(self.1.lock().expect("gate"));
                self.0.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (queue, flush) = LogQueue::to(Gated(sink.clone(), gate));
        let total = QUEUED_LINES + 100;
        for i in 0..total {
            let mut line = queue.make_writer();
            let _ = writeln!(line, "line {i}");
        }
        drop(hold);
        queue.flush();
        queue.make_writer().write_all(b"last\n").expect("written");
        drop(flush);
        let text = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("text");
        let written = text.lines().filter(|l| l.starts_with("line ")).count();
        // Counted whenever a line gets through after some were dropped: before the first
        // one, or later, or both.
        let said: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("wasmhost: "))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(written as u64 + said, total as u64, "{text}");
        assert!(text.ends_with("last\n"));
    }
}
