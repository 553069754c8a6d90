//! One registry file's text → its raw entries, each parsed with the schema of its kind.
//!
//! Two passes: a lenient one reads each entry's line, name and kind; the second parses every
//! entry with the struct of its kind (`schema`), so a field another kind takes is refused
//! where it is written. A file that does not parse yields one diagnostic (its first problem),
//! placed at its line and inside the entry it belongs to.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::diagnostic::Diagnostic;
use super::schema::*;

/// One registry file (`_index.yaml` and friends), as written.
#[derive(Debug)]
pub struct RawFile {
    pub version: Spanned<String>,
    pub namespace: Spanned<String>,
    pub entries: Vec<RawEntry>,
}

/// One entry as written: its line (where its mapping starts) and its fields.
#[derive(Debug)]
pub struct RawEntry {
    pub line: u64,
    pub fields: EntryFields,
}

/// An entry's fields, by kind. (Each lives only while its file is resolved, so the sizes of
/// the variants do not matter.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum EntryFields {
    ProcessWasm(ProcessWasmFields),
    ProcessHost(ProcessHostFields),
    TerminalHost(TerminalHostFields),
    ProcessService(ProcessServiceFields),
    ProcessSupervisor(ProcessSupervisorFields),
    /// A kind the registry does not know; its fields were not read.
    UnknownKind {
        name: Spanned<String>,
        kind: Spanned<String>,
    },
}

/// Just enough of an entry to tell its kind, name and line.
#[derive(Deserialize)]
struct Header {
    name: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct Headers {
    namespace: Option<String>,
    #[serde(default)]
    entries: Vec<Spanned<Header>>,
}

/// Parses one registry file. `shown` is the path to show in messages.
pub fn parse(shown: &Path, text: &str) -> Result<RawFile, Diagnostic> {
    let headers = serde_saphyr::from_str::<Headers>(text)
        .map_err(|err| diagnostic(shown, text, None, &err))?;
    let kinds: Vec<Option<Kind>> = headers
        .entries
        .iter()
        .map(|e| {
            e.value
                .kind
                .as_ref()
                .and_then(|k| Kind::from_name(&k.value))
        })
        .collect();
    let seed = FileSeed {
        headers: &headers.entries,
        kinds: &kinds,
    };
    serde_saphyr::with_deserializer_from_str(text, |de| seed.deserialize(de))
        .map_err(|err| diagnostic(shown, text, Some(&headers), &err))
}

const FILE_FIELDS: &[&str] = &["version", "namespace", "entries"];

/// Parses a whole file, each entry with the struct of the kind found in the first pass.
struct FileSeed<'a> {
    headers: &'a [Spanned<Header>],
    kinds: &'a [Option<Kind>],
}

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = RawFile;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawFile, D::Error> {
        de.deserialize_struct("RegistryFile", FILE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = RawFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a registry file with `version`, `namespace` and `entries`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFile, A::Error> {
        let (mut version, mut namespace, mut entries) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => version = Some(map.next_value()?),
                "namespace" => namespace = Some(map.next_value()?),
                "entries" => {
                    entries = Some(map.next_value_seed(EntriesSeed {
                        headers: self.headers,
                        kinds: self.kinds,
                    })?)
                }
                other => return Err(de::Error::unknown_field(other, FILE_FIELDS)),
            }
        }
        Ok(RawFile {
            version: version.ok_or_else(|| de::Error::missing_field("version"))?,
            namespace: namespace.ok_or_else(|| de::Error::missing_field("namespace"))?,
            entries: entries.unwrap_or_default(),
        })
    }
}

struct EntriesSeed<'a> {
    headers: &'a [Spanned<Header>],
    kinds: &'a [Option<Kind>],
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<RawEntry>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Vec<RawEntry>, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<RawEntry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RawEntry>, A::Error> {
        let mut entries = Vec::new();
        loop {
            let i = entries.len();
            let seed = EntrySeed {
                header: self.headers.get(i),
                kind: self.kinds.get(i).copied().flatten(),
            };
            match seq.next_element_seed(seed)? {
                Some(entry) => entries.push(entry),
                None => return Ok(entries),
            }
        }
    }
}

/// Parses one entry with the struct of its kind.
struct EntrySeed<'a> {
    header: Option<&'a Spanned<Header>>,
    kind: Option<Kind>,
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = RawEntry;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawEntry, D::Error> {
        let line = self.header.map_or(0, |h| h.referenced.line());
        let fields = match self.kind {
            Some(Kind::ProcessWasm) => EntryFields::ProcessWasm(Deserialize::deserialize(de)?),
            Some(Kind::ProcessHost) => EntryFields::ProcessHost(Deserialize::deserialize(de)?),
            Some(Kind::TerminalHost) => EntryFields::TerminalHost(Deserialize::deserialize(de)?),
            Some(Kind::ProcessService) => {
                EntryFields::ProcessService(Deserialize::deserialize(de)?)
            }
            Some(Kind::ProcessSupervisor) => {
                EntryFields::ProcessSupervisor(Deserialize::deserialize(de)?)
            }
            None => {
                let header = self.header.map(|h| &h.value);
                match header.and_then(|h| h.name.clone().zip(h.kind.clone())) {
                    Some((name, kind)) => {
                        IgnoredAny::deserialize(de)?;
                        EntryFields::UnknownKind { name, kind }
                    }
                    // Let serde say which of the two is missing.
                    None => {
                        #[derive(Deserialize)]
                        #[allow(dead_code)]
                        struct Required {
                            name: String,
                            kind: String,
                        }
                        Required::deserialize(de)?;
                        return Err(de::Error::custom("an entry needs `name` and `kind`"));
                    }
                }
            }
        };
        Ok(RawEntry { line, fields })
    }
}

/// Turns a parse error into a diagnostic at its line, inside the entry it belongs to, with
/// the fields of that entry's kind as the hint for a field that is not one of them.
fn diagnostic(
    shown: &Path,
    text: &str,
    headers: Option<&Headers>,
    err: &serde_saphyr::Error,
) -> Diagnostic {
    let line = err.location().map(|l| l.line()).unwrap_or(0);
    let mut message = clean_message(err);
    let (entry, kind) = match headers {
        Some(headers) => entry_at(headers, line),
        None => entry_near(text, line),
    };
    let mut hint = None;
    if let Some((field, expected)) = unknown_field(&message) {
        let kind = kind.filter(|k| {
            let mut top = vec!["name", "kind"];
            top.extend(k.fields());
            expected == top
        });
        match kind {
            // A field of the entry itself.
            Some(kind) => {
                let elsewhere = Kind::ALL
                    .into_iter()
                    .any(|other| other.fields().contains(&field.as_str()));
                message = if elsewhere {
                    format!("field `{field}` does not apply to kind `{}`", kind.name())
                } else {
                    format!("unknown field `{field}`")
                };
                hint = Some(format!(
                    "`{}` takes: {}",
                    kind.name(),
                    kind.fields().join(", ")
                ));
            }
            // A field inside one of its values (`limits`, `lifecycle`, ...).
            None => {
                message = format!("unknown field `{field}`");
                hint = Some(if expected.is_empty() {
                    "check the spelling; README.md describes the registry format".to_string()
                } else {
                    format!("expected one of: {}", expected.join(", "))
                });
            }
        }
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
}

/// The parser's message without its location: the caller prints the location in the same
/// form as every other diagnostic.
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

/// `sorce` and `[name, kind, source, …]` from
/// "unknown field `sorce`, expected one of name, kind, source, …".
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = match rest.split_once("expected ") {
        Some((_, list)) => list
            .trim_start_matches("one of ")
            .split(", ")
            .flat_map(|item| item.split(" or "))
            .map(|item| item.trim().trim_matches('`').to_string())
            .filter(|item| !item.is_empty())
            .collect(),
        None => Vec::new(),
    };
    Some((field.to_string(), expected))
}

/// The id and kind of the entry whose text contains `line`.
fn entry_at(headers: &Headers, line: u64) -> (Option<String>, Option<Kind>) {
    if line == 0 {
        return (None, None);
    }
    let Some(entry) = headers
        .entries
        .iter()
        .rev()
        .find(|e| e.referenced.line() <= line)
    else {
        return (None, None);
    };
    let name = entry
        .value
        .name
        .as_ref()
        .map(|name| match &headers.namespace {
            Some(ns) => format!("{ns}:{}", name.value),
            None => name.value.clone(),
        });
    let kind = entry
        .value
        .kind
        .as_ref()
        .and_then(|k| Kind::from_name(&k.value));
    (name, kind)
}

/// For YAML that does not parse at all: the entry named by the nearest `- name:` above
/// `line`.
fn entry_near(text: &str, line: u64) -> (Option<String>, Option<Kind>) {
    if line == 0 {
        return (None, None);
    }
    let unquote = |s: &str| s.trim().trim_matches('"').to_string();
    let namespace = text
        .lines()
        .find_map(|l| l.strip_prefix("namespace:"))
        .map(unquote);
    let lines: Vec<&str> = text.lines().take(line as usize).collect();
    let name = lines
        .iter()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("- name:"))
        .map(unquote);
    let name = name.map(|name| match namespace {
        Some(ns) => format!("{ns}:{name}"),
        None => name,
    });
    (name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<RawFile, String> {
        parse(Path::new("r.yaml"), text).map_err(|d| d.to_string())
    }

    #[test]
    fn each_entry_is_parsed_with_its_kind() {
        let file = parse_text(
            "version: \"1.0\"\nnamespace: app\nentries:\n  - name: h\n    kind: process.host\n    workers: 2\n  - name: odd\n    kind: process.lua\n    script: x.lua\n",
        )
        .expect("parses");
        assert_eq!(file.entries.len(), 2);
        assert_eq!(file.entries[0].line, 4);
        assert!(
            matches!(&file.entries[0].fields, EntryFields::ProcessHost(h) if h.workers.as_ref().map(|w| w.value) == Some(2))
        );
        assert!(
            matches!(&file.entries[1].fields, EntryFields::UnknownKind { kind, .. } if kind.value == "process.lua")
        );
    }

    #[test]
    fn a_misspelt_nested_field_lists_what_that_value_takes() {
        let err = parse_text(
            "version: \"1.0\"\nnamespace: app\nentries:\n  - name: w\n    kind: process.wasm\n    limits:\n      memroy: 1MiB\n",
        )
        .expect_err("memroy is not a limit");
        assert_eq!(
            err,
            "r.yaml:7: entry app:w: unknown field `memroy`\n  hint: expected one of: memory, cpu, cpu_rate, mailbox, mailbox_bytes, message_size, children, events, names, handles, log_rate, host_memory"
        );
    }

    #[test]
    fn an_entry_without_a_kind_is_reported() {
        let err = parse_text("version: \"1.0\"\nnamespace: app\nentries:\n  - name: w\n")
            .expect_err("no kind");
        assert!(err.contains("missing field `kind`"), "{err}");
    }
}
