//! The registry's schema: the kinds of entry, and for each kind one struct that declares the
//! fields it takes. Parsing, the "unknown field" and "does not apply" diagnostics, and the
//! README's table of kinds all follow from these structs (a unit test holds the README to
//! them), so they cannot drift apart.

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, Visitor};
use serde_saphyr::Spanned;

use super::limits::RawLimits;

/// The kinds of entry a registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A WebAssembly component and what it may do.
    ProcessWasm,
    /// A scheduling domain with default limits for its processes.
    ProcessHost,
    /// Binds one process at a time to the terminal.
    TerminalHost,
    /// A supervised instance of a process entry on a host.
    ProcessService,
    /// Starts, stops and restarts services and supervisors, as an OTP supervisor does.
    ProcessSupervisor,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ProcessWasm,
        Kind::ProcessHost,
        Kind::TerminalHost,
        Kind::ProcessService,
        Kind::ProcessSupervisor,
    ];

    /// The name written in `kind:`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ProcessWasm => "process.wasm",
            Kind::ProcessHost => "process.host",
            Kind::TerminalHost => "terminal.host",
            Kind::ProcessService => "process.service",
            Kind::ProcessSupervisor => "process.supervisor",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The fields an entry of this kind takes besides `name` and `kind`, in the order its
    /// schema struct declares them.
    pub fn fields(self) -> Vec<&'static str> {
        let all = match self {
            Kind::ProcessWasm => field_names::<ProcessWasmFields>(),
            Kind::ProcessHost => field_names::<ProcessHostFields>(),
            Kind::TerminalHost => field_names::<TerminalHostFields>(),
            Kind::ProcessService => field_names::<ProcessServiceFields>(),
            Kind::ProcessSupervisor => field_names::<ProcessSupervisorFields>(),
        };
        all.iter()
            .copied()
            .filter(|f| !matches!(*f, "name" | "kind"))
            .collect()
    }

    /// The names of all kinds, for hints.
    pub fn names() -> String {
        Kind::ALL.map(Kind::name).join(", ")
    }
}

/// `process.wasm`: a component, what it may import, and its limits.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessWasmFields {
    pub name: Spanned<String>,
    /// Read by the parser's first pass, which chose this struct.
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// The component file, relative to the YAML file (`file://` optional).
    pub source: Option<Spanned<String>>,
    /// The exported function to call (default `main`).
    pub method: Option<Spanned<String>>,
    /// The modules (host interfaces) the process is granted.
    pub modules: Option<Spanned<Vec<Spanned<String>>>>,
    /// `sha256:<hex>` the component must match.
    pub hash: Option<Spanned<String>>,
    pub limits: Option<Spanned<RawLimits>>,
    /// Names reserved for this entry's processes.
    pub names: Option<Spanned<Vec<Spanned<String>>>>,
    /// What its processes may do beyond their own descendants.
    pub authority: Option<Spanned<RawAuthority>>,
}

/// `process.host`: a scheduling domain.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessHostFields {
    pub name: Spanned<String>,
    /// Read by the parser's first pass, which chose this struct.
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// Threads of its own for its processes (default: the node's shared threads).
    pub workers: Option<Spanned<u32>>,
    /// Default limits of the processes on it.
    pub limits: Option<Spanned<RawLimits>>,
    pub lifecycle: Option<Spanned<HostLifecycle>>,
}

/// `terminal.host`: the terminal, bound to one process at a time.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalHostFields {
    pub name: Spanned<String>,
    /// Read by the parser's first pass, which chose this struct.
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    pub lifecycle: Option<Spanned<HostLifecycle>>,
}

/// `process.service`: a supervised instance of a process entry.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessServiceFields {
    pub name: Spanned<String>,
    /// Read by the parser's first pass, which chose this struct.
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// The `process.wasm` entry to run.
    pub process: Option<Spanned<String>>,
    /// The `process.host` to run it on.
    pub host: Option<Spanned<String>>,
    /// Values passed to the entry point, one payload each.
    pub args: Option<Spanned<Vec<ciborium::Value>>>,
    pub lifecycle: Option<Spanned<ServiceLifecycle>>,
}

/// `process.supervisor`: children started in order and restarted by a strategy.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSupervisorFields {
    pub name: Spanned<String>,
    /// Read by the parser's first pass, which chose this struct.
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    /// The services and supervisors it owns, in start order.
    pub children: Option<Spanned<Vec<Spanned<String>>>>,
    /// `one_for_one` (default), `one_for_all` or `rest_for_one`.
    pub strategy: Option<Spanned<String>>,
    /// Restart intensity: at most `max_restarts` (default 3) within `period` (default 5s).
    pub max_restarts: Option<Spanned<u32>>,
    pub period: Option<Spanned<String>>,
    pub lifecycle: Option<Spanned<SupervisorLifecycle>>,
}

/// `authority` of a `process.wasm`: each `any`, or a list of `process.wasm` entries.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthority {
    /// Whom its processes may terminate, cancel, link and unlink (and monitor in full),
    /// besides their descendants.
    pub signal: Option<Spanned<RawScope>>,
    /// Which entries its processes may spawn even when those are granted more.
    pub spawn: Option<Spanned<RawScope>>,
    /// Which `process.host` entries its processes may spawn on, besides their own.
    pub hosts: Option<Spanned<RawScope>>,
}

/// `any`, or a list of entries.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum RawScope {
    Word(String),
    Entries(Vec<String>),
}

/// A host's lifecycle: hosts start with the node, so only `auto_start: true` is meaningful.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLifecycle {
    pub auto_start: Option<Spanned<bool>>,
}

/// A supervisor's lifecycle: whether the node starts it, and after what.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorLifecycle {
    pub auto_start: Option<Spanned<bool>>,
    pub requires: Option<Vec<Spanned<String>>>,
    pub nodes: Option<Vec<Spanned<String>>>,
}

/// A service's lifecycle.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLifecycle {
    pub auto_start: Option<Spanned<bool>>,
    pub requires: Option<Vec<Spanned<String>>>,
    /// In a cluster, the nodes that may run it, one at a time, in order of preference.
    pub nodes: Option<Vec<Spanned<String>>>,
    /// `permanent`, `transient` (default) or `temporary`.
    pub restart_type: Option<Spanned<String>>,
    pub start_timeout: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub stable_threshold: Option<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestart {
    pub initial_delay: Option<Spanned<String>>,
    pub max_delay: Option<Spanned<String>>,
    pub backoff_factor: Option<Spanned<f64>>,
    pub jitter: Option<Spanned<f64>>,
    pub max_attempts: Option<Spanned<u32>>,
}

/// The fields a derived `Deserialize` struct declares, read by asking it to deserialize
/// from a deserializer that only records what it is asked for.
fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only structs are read"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("fields read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_lists_the_fields_its_struct_declares() {
        assert_eq!(
            Kind::ProcessWasm.fields(),
            [
                "source",
                "method",
                "modules",
                "hash",
                "limits",
                "names",
                "authority"
            ]
        );
        assert_eq!(
            Kind::ProcessHost.fields(),
            ["workers", "limits", "lifecycle"]
        );
        assert_eq!(Kind::TerminalHost.fields(), ["lifecycle"]);
        assert_eq!(
            Kind::ProcessService.fields(),
            ["process", "host", "args", "lifecycle"]
        );
        assert_eq!(
            Kind::ProcessSupervisor.fields(),
            [
                "children",
                "strategy",
                "max_restarts",
                "period",
                "lifecycle"
            ]
        );
    }

    /// The README's registry table has a row per kind whose second column lists its fields:
    /// it must say exactly what the schema takes.
    #[test]
    fn the_readme_table_of_kinds_matches_the_schema() {
        let readme = include_str!("../../../README.md");
        for kind in Kind::ALL {
            let prefix = format!("| `{}` |", kind.name());
            let row = readme
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("README.md has no row for {}", kind.name()));
            let column = row[prefix.len()..].split('|').next().unwrap_or_default();
            let listed: Vec<&str> = column
                .split(',')
                .map(|f| f.trim().trim_matches('`'))
                .filter(|f| !f.is_empty())
                .collect();
            assert_eq!(
                listed,
                kind.fields(),
                "the README's row for {}",
                kind.name()
            );
        }
    }
}
