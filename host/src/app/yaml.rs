//! The registry files as written: YAML parsed into raw entries that remember their lines.
//!
//! Every field a kind may use is known here, so a misspelt field is an error at its line.
//! Which fields belong to which kind, and what the values mean, is `model`'s business.

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostic::Diagnostic;

/// The kinds of entry the registry knows.
pub const KINDS: [&str; 4] = [
    "process.wasm",
    "process.host",
    "terminal.host",
    "process.service",
];

/// The fields each kind may use, besides `name` and `kind`.
pub fn fields_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "process.wasm" => &["source", "method", "modules", "hash", "limits"],
        "process.host" => &["workers", "limits", "lifecycle"],
        "terminal.host" => &["lifecycle"],
        "process.service" => &["process", "host", "args", "lifecycle"],
        _ => &[],
    }
}

/// One registry file (`_index.yaml` and friends).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub version: Spanned<String>,
    pub namespace: Spanned<String>,
    #[serde(default)]
    pub entries: Vec<Spanned<RawEntry>>,
}

/// Any entry, whatever its kind: the union of all kinds' fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    // process.wasm
    pub source: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub modules: Option<Spanned<Vec<Spanned<String>>>>,
    pub hash: Option<Spanned<String>>,
    pub limits: Option<Spanned<RawLimits>>,
    // process.host
    pub workers: Option<Spanned<u32>>,
    // process.service
    pub process: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub args: Option<Spanned<Vec<ciborium::Value>>>,
    // hosts and services
    pub lifecycle: Option<Spanned<RawLifecycle>>,
}

/// Per-process limits; sizes like `"64MiB"`, durations like `"30s"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<Spanned<String>>,
    pub cpu: Option<Spanned<String>>,
    pub mailbox: Option<Spanned<u64>>,
    pub message_size: Option<Spanned<String>>,
    pub children: Option<Spanned<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    pub auto_start: Option<Spanned<bool>>,
    pub requires: Option<Vec<Spanned<String>>>,
    pub start_timeout: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub stable_threshold: Option<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestart {
    pub initial_delay: Option<Spanned<String>>,
    pub max_delay: Option<Spanned<String>>,
    pub backoff_factor: Option<Spanned<f64>>,
    pub jitter: Option<Spanned<f64>>,
    pub max_attempts: Option<Spanned<u32>>,
}

/// Just enough of an entry to name it, for placing a parse error inside an entry.
#[derive(Deserialize)]
struct NamedEntry {
    name: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
struct NamedFile {
    namespace: Option<String>,
    #[serde(default)]
    entries: Vec<Spanned<NamedEntry>>,
}

/// Parses one registry file. `shown` is the path to show in messages.
pub fn parse(shown: &Path, text: &str) -> Result<RawFile, Diagnostic> {
    serde_saphyr::from_str::<RawFile>(text).map_err(|err| {
        let line = err.location().map(|l| l.line()).unwrap_or(0);
        let mut message = clean_message(&err);
        let (entry, kind) = entry_at(text, line);
        let mut hint = None;
        if let Some(field) = unknown_field(&message) {
            // serde lists every field of every kind; name only those of this kind.
            message = format!("unknown field `{field}`");
            hint = Some(match kind.as_deref().filter(|k| KINDS.contains(k)) {
                Some(kind) => format!("`{kind}` takes: {}", fields_of(kind).join(", ")),
                None => "check the spelling; README.md describes the registry format".to_string(),
            });
        } else if message.contains("missing field") {
            hint = Some(
                "every file needs `version` and `namespace`; every entry needs `name` and `kind`"
                    .to_string(),
            );
        }
        let mut diagnostic = Diagnostic::new(shown, message).at(line);
        if let Some(entry) = entry {
            diagnostic = diagnostic.entry(entry);
        }
        if let Some(hint) = hint {
            diagnostic = diagnostic.hint(hint);
        }
        diagnostic
    })
}

/// The parser's message without its location: the caller prints the location in the
/// same form as every other diagnostic.
fn clean_message(err: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let rendered = err.render_with_options(options);
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// `sorce` from "unknown field `sorce`, expected one of ...".
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The id and kind of the entry whose text contains `line`: from a lenient second parse,
/// or, when the YAML does not parse at all, from the nearest `- name:` above the line.
fn entry_at(text: &str, line: u64) -> (Option<String>, Option<String>) {
    if line == 0 {
        return (None, None);
    }
    if let Ok(file) = serde_saphyr::from_str::<NamedFile>(text) {
        let Some(entry) = file
            .entries
            .iter()
            .rev()
            .find(|e| e.referenced.line() <= line)
        else {
            return (None, None);
        };
        let name = entry.value.name.clone().map(|name| match &file.namespace {
            Some(ns) => format!("{ns}:{name}"),
            None => name,
        });
        return (name, entry.value.kind.clone());
    }
    let namespace = text
        .lines()
        .find_map(|l| l.strip_prefix("namespace:"))
        .map(|ns| ns.trim().trim_matches('"').to_string());
    let name = text
        .lines()
        .take(line as usize)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("- name:"))
        .map(|n| n.trim().trim_matches('"').to_string());
    let name = name.map(|name| match namespace {
        Some(ns) => format!("{ns}:{name}"),
        None => name,
    });
    (name, None)
}
