//! Guest log lines. What a process logs — through `logger`, or through `io` when it is not
//! on the terminal — goes through here: one line whatever it holds (control characters
//! escaped, so a guest cannot forge a line or move the cursor), bounded in size (so
//! rendering it is cheap), and within the process's `log_rate` (so a guest cannot flood the
//! log). The writer behind `tracing` never blocks, and a line waiting in its queue is
//! charged to the process that logged it ([`payer`]; `crate::logs`).

use std::cell::RefCell;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::Level;
use wasmhost_types::payload::{display_within, printable};

use super::ledger::Account;
use super::text::char_boundary;

thread_local! {
    /// The process whose line `tracing` is writing on this thread, if any.
    static PAYER: RefCell<Option<Arc<Account>>> = const { RefCell::new(None) };
    /// The guest line `tracing` is writing on this thread, when the log is JSON.
    static LINE: RefCell<Option<JsonLine>> = const { RefCell::new(None) };
}

/// Whether guest lines are handed to the log as JSON objects (`crate::logs::JsonLines`)
/// rather than rendered as text.
static JSON: AtomicBool = AtomicBool::new(false);

/// Hands guest lines to the log as JSON objects from now on (the JSON log installs this).
pub fn structured(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// The guest line being written on this thread, if the log is JSON.
pub fn json_line() -> Option<JsonLine> {
    LINE.with(|line| line.borrow().clone())
}

/// A guest's line for the JSON log: who logged it, its message, and each field's payload as
/// JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JsonLine {
    pub message: String,
    pub pid: String,
    pub entry: String,
    /// The service it runs as, or descends from (spawned by its process, or theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Fields past `MAX_FIELDS`, left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more_fields: Option<usize>,
    /// Lines of this process dropped over its `log_rate` since the last one written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_dropped: Option<u64>,
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

/// Who logged a line: its process and that process's entry.
pub struct Origin<'a> {
    pub pid: &'a str,
    pub entry: &'a str,
    /// The service it runs as or descends from, if any.
    pub service: Option<&'a str>,
}

/// Writes one guest line, `{pid} {entry}: {message} key=value…` (or its JSON object, when the
/// log is JSON), if the level is on and the budget allows.
pub fn write(
    budget: &mut LogBudget,
    payer: &Arc<Account>,
    origin: Origin<'_>,
    level: Level,
    message: &str,
    fields: &[(String, Vec<u8>)],
) {
    // Skip the work for lines nobody will see, and keep the budget for those they will.
    if !enabled(level) || !budget.take(Instant::now()) {
        return;
    }
    let dropped = std::mem::take(&mut budget.dropped);
    PAYER.with(|p| *p.borrow_mut() = Some(payer.clone()));
    if JSON.load(Ordering::Relaxed) {
        let object = to_json(&origin, message, fields, dropped);
        LINE.with(|line| *line.borrow_mut() = Some(object));
        emit(level, "");
        LINE.with(|line| line.borrow_mut().take());
    } else {
        let origin = format!("{} {}", origin.pid, origin.entry);
        emit(level, &render(&origin, message, fields, dropped));
    }
    PAYER.with(|p| p.borrow_mut().take());
}

fn emit(level: Level, line: &str) {
    match level {
        Level::TRACE => tracing::trace!(target: "guest", "{line}"),
        Level::DEBUG => tracing::debug!(target: "guest", "{line}"),
        Level::INFO => tracing::info!(target: "guest", "{line}"),
        Level::WARN => tracing::warn!(target: "guest", "{line}"),
        Level::ERROR => tracing::error!(target: "guest", "{line}"),
    }
}

/// The line for the JSON log, within the text line's bounds: the message cut at
/// `MAX_MESSAGE`, at most `MAX_FIELDS` fields (`more_fields` counts the rest), each key cut at
/// `MAX_KEY`, and a value whose payload is larger than `MAX_VALUE` shown as its cut text
/// rendering.
pub fn to_json(
    origin: &Origin<'_>,
    message: &str,
    fields: &[(String, Vec<u8>)],
    dropped: u64,
) -> JsonLine {
    let cut = |text: &str, max: usize| -> String {
        let end = char_boundary(text, max);
        match end < text.len() {
            true => format!("{}…", &text[..end]),
            false => text.to_string(),
        }
    };
    let mut values = serde_json::Map::new();
    for (key, value) in fields.iter().take(MAX_FIELDS) {
        let json = match value.len() <= MAX_VALUE {
            true => payload_json(value),
            false => None,
        };
        let json = json.unwrap_or_else(|| display_within(value, MAX_VALUE).into());
        values.insert(cut(key, MAX_KEY), json);
    }
    JsonLine {
        message: cut(message, MAX_MESSAGE),
        pid: origin.pid.to_string(),
        entry: origin.entry.to_string(),
        service: origin.service.map(str::to_string),
        fields: values,
        more_fields: (fields.len() > MAX_FIELDS).then(|| fields.len() - MAX_FIELDS),
        lines_dropped: (dropped > 0).then_some(dropped),
    }
}

/// A payload as JSON: numbers, strings, booleans, null, arrays and maps as themselves (a
/// map's keys as their text), bytes as hex, tags as what they tag. `None` if it is not CBOR.
fn payload_json(payload: &[u8]) -> Option<serde_json::Value> {
    let value: ciborium::Value = ciborium::from_reader(payload).ok()?;
    Some(cbor_to_json(value))
}

fn cbor_to_json(value: ciborium::Value) -> serde_json::Value {
    use ciborium::Value as C;
    use serde_json::Value as J;
    match value {
        C::Integer(n) => {
            let n = i128::from(n);
            match (i64::try_from(n), u64::try_from(n)) {
                (Ok(n), _) => J::from(n),
                (_, Ok(n)) => J::from(n),
                _ => J::from(n.to_string()),
            }
        }
        C::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        C::Text(text) => J::String(text),
        C::Bytes(bytes) => J::String(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        C::Bool(b) => J::Bool(b),
        C::Null => J::Null,
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(items) => J::Array(items.into_iter().map(cbor_to_json).collect()),
        C::Map(entries) => J::Object(
            entries
                .into_iter()
                .map(|(key, value)| {
                    let key = match key {
                        C::Text(text) => text,
                        other => cbor_to_json(other).to_string(),
                    };
                    (key, cbor_to_json(value))
                })
                .collect(),
        ),
        _ => J::Null,
    }
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
    fn a_json_line_keeps_each_fields_type_within_the_text_lines_bounds() {
        #[derive(serde::Serialize)]
        struct Point {
            x: i32,
            y: f64,
        }
        let mut fields = vec![
            ("n".to_string(), encode(&-7)),
            ("big".to_string(), encode(&u64::MAX)),
            ("ok".to_string(), encode(&true)),
            ("name".to_string(), encode("a\nb")),
            ("at".to_string(), encode(&Point { x: 1, y: 2.5 })),
            ("list".to_string(), encode(&[1, 2])),
            ("none".to_string(), encode(&Option::<u8>::None)),
            (
                "bytes".to_string(),
                encode(&serde_bytes::ByteBuf::from(vec![0xde, 0xad])),
            ),
            ("huge".to_string(), encode(&"z".repeat(1 << 20))),
            ("not cbor".to_string(), vec![0xff, 0xfe]),
        ];
        fields.extend((0..40).map(|i| (format!("k{i}"), encode(&i))));
        let origin = Origin {
            pid: "{app|0x00002}",
            entry: "app:w",
            service: Some("app:w-service"),
        };
        let line = to_json(&origin, &"m".repeat(MAX_MESSAGE + 10), &fields, 3);
        let json = serde_json::to_value(&line).expect("serializable");
        let f = &json["fields"];
        assert_eq!(f["n"], -7);
        assert_eq!(f["big"], u64::MAX);
        assert_eq!(f["ok"], true);
        assert_eq!(f["name"], "a\nb");
        assert_eq!(f["at"], serde_json::json!({ "x": 1, "y": 2.5 }));
        assert_eq!(f["list"], serde_json::json!([1, 2]));
        assert_eq!(f["none"], serde_json::Value::Null);
        assert_eq!(f["bytes"], "dead");
        assert!(
            f["huge"]
                .as_str()
                .is_some_and(|s| s.len() < MAX_VALUE + 8 && s.ends_with('…'))
        );
        assert_eq!(f["not cbor"], "<2 bytes, not CBOR>");
        assert_eq!(line.fields.len(), MAX_FIELDS);
        assert_eq!(line.more_fields, Some(fields.len() - MAX_FIELDS));
        assert_eq!(line.lines_dropped, Some(3));
        assert!(line.message.ends_with('…') && line.message.len() < MAX_MESSAGE + 4);
        assert_eq!(
            (json["pid"].as_str(), json["entry"].as_str()),
            (Some("{app|0x00002}"), Some("app:w"))
        );
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
