//! Guest log lines. What a process logs — through `logger`, or through `io` when it is not
//! on the terminal — goes through here: one line whatever it holds (control characters
//! escaped, so a guest cannot forge a line or move the cursor), bounded in size (so
//! rendering it is cheap), and within the process's `log_rate` (so a guest cannot flood the
//! log). The writer behind `tracing` never blocks, and a line waiting in its queue is
//! charged to the process that logged it ([`payer`]; `crate::logs`).

use std::cell::RefCell;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use tracing::Level;
use wasmhost_types::payload::{display_within, printable};

use super::ledger::Account;
use super::text::char_boundary;

thread_local! {
    /// The process whose line `tracing` is writing on this thread, if any.
    static PAYER: RefCell<Option<Arc<Account>>> = const { RefCell::new(None) };
}

/// Who pays for the guest line being written on this thread (`None` for the host's own
/// lines): a log writer that queues lines charges them here.
pub fn payer() -> Option<Arc<Account>> {
    PAYER.with(|payer| payer.borrow().clone())
}
/// The longest message shown, in bytes.
pub const MAX_MESSAGE: usize = 4 << 10;
/// The longest field value shown.
pub const MAX_VALUE: usize = 1 << 10;
/// The longest field key shown.
pub const MAX_KEY: usize = 64;
/// The most fields shown.
pub const MAX_FIELDS: usize = 32;
/// The longest line.
pub const MAX_LINE: usize = 16 << 10;

/// A process's allowance of log lines: a token bucket that fills at `log_rate` lines per
/// second and holds as many.
#[derive(Debug)]
pub struct LogBudget {
    rate: u64,
    tokens: f64,
    last: Instant,
    /// Lines refused since the last one written.
    dropped: u64,
}

impl LogBudget {
    pub fn new(rate: u64) -> Self {
        LogBudget {
            rate,
            tokens: rate as f64,
            last: Instant::now(),
            dropped: 0,
        }
    }

    /// Whether a line may be written at `now`; counts it as dropped if not.
    fn take(&mut self, now: Instant) -> bool {
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate as f64;
        self.tokens = (self.tokens + earned).min(self.rate as f64);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// Whether a guest line at `level` would be shown at all.
pub fn enabled(level: Level) -> bool {
    match level {
        Level::TRACE => tracing::enabled!(target: "guest", Level::TRACE),
        Level::DEBUG => tracing::enabled!(target: "guest", Level::DEBUG),
        Level::INFO => tracing::enabled!(target: "guest", Level::INFO),
        Level::WARN => tracing::enabled!(target: "guest", Level::WARN),
        Level::ERROR => tracing::enabled!(target: "guest", Level::ERROR),
    }
}

/// Writes one guest line, `{pid} {entry}: {message} key=value…`, if the level is on and the
/// budget allows.
pub fn write(
    budget: &mut LogBudget,
    payer: &Arc<Account>,
    origin: &str,
    level: Level,
    message: &str,
    fields: &[(String, Vec<u8>)],
) {
    // Skip the work for lines nobody will see, and keep the budget for those they will.
    if !enabled(level) || !budget.take(Instant::now()) {
        return;
    }
    let line = render(origin, message, fields, std::mem::take(&mut budget.dropped));
    PAYER.with(|p| *p.borrow_mut() = Some(payer.clone()));
    match level {
        Level::TRACE => tracing::trace!(target: "guest", "{line}"),
        Level::DEBUG => tracing::debug!(target: "guest", "{line}"),
        Level::INFO => tracing::info!(target: "guest", "{line}"),
        Level::WARN => tracing::warn!(target: "guest", "{line}"),
        Level::ERROR => tracing::error!(target: "guest", "{line}"),
    }
    PAYER.with(|p| p.borrow_mut().take());
}

/// The line itself, within its bounds. Text is cut before it is escaped, so a huge message
/// costs no more than a small one.
pub fn render(origin: &str, message: &str, fields: &[(String, Vec<u8>)], dropped: u64) -> String {
    let mut line = format!("{origin}: ");
    push_cut(&mut line, message, MAX_MESSAGE);
    for (key, value) in fields.iter().take(MAX_FIELDS) {
        if line.len() >= MAX_LINE {
            break;
        }
        line.push(' ');
        push_cut(&mut line, key, MAX_KEY);
        line.push('=');
        line.push_str(&display_within(value, MAX_VALUE));
    }
    if fields.len() > MAX_FIELDS {
        let _ = write!(line, " (+{} fields)", fields.len() - MAX_FIELDS);
    }
    if line.len() > MAX_LINE {
        line.truncate(char_boundary(&line, MAX_LINE));
        line.push('…');
    }
    if dropped > 0 {
        let _ = write!(line, " ({dropped} lines dropped over the log rate)");
    }
    line
}

/// Appends `text` cut at `max` bytes (with `…`), its control characters escaped.
fn push_cut(out: &mut String, text: &str, max: usize) {
    let end = char_boundary(text, max);
    out.push_str(&printable(&text[..end]));
    if end < text.len() {
        out.push('…');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wasmhost_types::payload::encode;

    #[test]
    fn a_line_stays_one_line_and_within_its_size() {
        let fields = vec![
            ("from".to_string(), encode("{app|0x00001}")),
            ("evil\nkey".to_string(), encode("x\r\ny")),
            ("big".to_string(), encode(&"z".repeat(1 << 20))),
        ];
        let line = render("{app|0x00002} app:w", "two\nlines\x1b[2J", &fields, 0);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\x1b'));
        assert!(line.starts_with("{app|0x00002} app:w: two\\nlines\\u{1b}[2J from={app|0x00001} evil\\nkey=x\\r\\ny big=zzz"), "{line}");
        assert!(line.len() < MAX_MESSAGE + MAX_VALUE + 200, "{}", line.len());
        assert!(line.ends_with('…'));
    }

    #[test]
    fn many_fields_are_counted_not_shown() {
        let fields: Vec<_> = (0..1000).map(|i| (format!("k{i}"), encode(&i))).collect();
        let line = render("p", "m", &fields, 3);
        assert!(
            line.ends_with(" k31=31 (+968 fields) (3 lines dropped over the log rate)"),
            "{line}"
        );
    }

    #[test]
    fn the_budget_allows_its_rate_and_counts_the_rest() {
        let mut budget = LogBudget::new(10);
        let start = budget.last;
        let written = (0..100).filter(|_| budget.take(start)).count();
        assert_eq!(written, 10, "a burst of the rate");
        assert_eq!(budget.dropped, 90);
        assert!(
            budget.take(start + Duration::from_millis(100)),
            "a tenth of a second earns one"
        );
        assert!(!budget.take(start + Duration::from_millis(100)));
    }
}
