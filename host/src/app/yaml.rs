//! The registry files as written: YAML parsed into raw entries that remember their lines.
//!
//! Every field a kind may use is known here, so a misspelt field is an error at its line.
//! Which fields belong to which kind, and what the values mean, is `model`'s business.

use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::diagnostic::Diagnostic;

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
        let mut diagnostic = Diagnostic::new(shown, clean_message(&err)).at(line);
        if let Some(entry) = entry_at(text, line) {
            diagnostic = diagnostic.entry(entry);
        }
        if let Some(hint) = hint_for(&diagnostic.message) {
            diagnostic = diagnostic.hint(hint);
        }
        diagnostic
    })
}

/// The parser's message without its own location prefix and source snippet: the caller
/// prints the location in the same form as every other diagnostic.
fn clean_message(err: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let rendered = err.render_with_options(options);
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    // "error: line 3 column 5: message" and similar prefixes.
    let message = first.strip_prefix("error: ").unwrap_or(first);
    message.to_string()
}

/// The name of the entry whose text contains `line`, found by a lenient second parse.
fn entry_at(text: &str, line: u64) -> Option<String> {
    if line == 0 {
        return None;
    }
    let file = serde_saphyr::from_str::<NamedFile>(text).ok()?;
    let entry = file
        .entries
        .iter()
        .rev()
        .find(|e| e.referenced.line() <= line)?;
    let name = entry.value.name.clone()?;
    Some(match file.namespace {
        Some(ns) => format!("{ns}:{name}"),
        None => name,
    })
}

fn hint_for(message: &str) -> Option<&'static str> {
    if message.contains("unknown field") {
        Some("check the spelling; the registry format is described in README.md")
    } else if message.contains("missing field") {
        Some("every file needs `version` and `namespace`; every entry needs `name` and `kind`")
    } else {
        None
    }
}
