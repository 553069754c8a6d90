//! Every limit of a process, defined once (`limits!` below): its field under `limits:` in the
//! registry and `[node.limits]` in wasmhost.toml, how it is written and read (a size, a
//! count, a duration, a share of a core), its default, its minimum, and what it means. From
//! that one table come the limits in force (`Limits`), the ones an entry, host or node sets
//! (`LimitOverrides`), both written forms (`RawLimits`, `TomlLimits`) with their errors, and
//! the checks against the pool. README.md and SECURITY.md are checked against it (tests
//! below).

use std::time::Duration;

use super::values::{
    DURATION_HINT, RATE_HINT, SIZE_HINT, parse_duration, parse_rate, parse_size, show_size,
};

/// How a kind of limit is written and read.
pub trait LimitKind {
    /// The value in force.
    type Value: Copy + PartialEq;
    /// As written: text for sizes, durations and shares; a number for counts.
    type Written;
    /// What to tell someone whose value did not read.
    const HINT: &'static str;
    fn read(written: &Self::Written) -> Result<Self::Value, String>;
    /// As the docs show it: `64 MiB`, `100 000`.
    fn show(value: Self::Value) -> String;
    /// The value as a number a minimum applies to, if it is one (counts and sizes).
    fn number(_value: Self::Value) -> Option<u64> {
        None
    }
}

/// The minimum `value` is below, with why there is one.
fn below<K: LimitKind>(
    value: K::Value,
    at_least: Option<(u64, &'static str)>,
) -> Option<(u64, &'static str)> {
    let (least, why) = at_least?;
    (K::number(value)? < least).then_some((least, why))
}

/// Bytes: `"64MiB"`.
pub struct Size;
/// A number: `100000`.
pub struct Count;
/// A duration: `"200ms"`.
pub struct Time;
/// A share of one core, in per mille: `"25%"` is 250.
pub struct Share;

impl LimitKind for Size {
    type Value = u64;
    type Written = String;
    const HINT: &'static str = SIZE_HINT;
    fn read(written: &String) -> Result<u64, String> {
        parse_size(written)
    }
    fn number(value: u64) -> Option<u64> {
        Some(value)
    }
    fn show(value: u64) -> String {
        show_size(value).replace(".0 ", " ")
    }
}

impl LimitKind for Count {
    type Value = u64;
    type Written = u64;
    const HINT: &'static str = "write a whole number";
    fn read(written: &u64) -> Result<u64, String> {
        Ok(*written)
    }
    fn number(value: u64) -> Option<u64> {
        Some(value)
    }
    fn show(value: u64) -> String {
        // Grouped by thousands with spaces, as the docs write numbers.
        let digits = value.to_string();
        let mut shown = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                shown.push(' ');
            }
            shown.push(digit);
        }
        shown
    }
}

impl LimitKind for Time {
    type Value = Duration;
    type Written = String;
    const HINT: &'static str = DURATION_HINT;
    fn read(written: &String) -> Result<Duration, String> {
        parse_duration(written)
    }
    fn show(value: Duration) -> String {
        humantime::format_duration(value).to_string()
    }
}

impl LimitKind for Share {
    type Value = u32;
    type Written = String;
    const HINT: &'static str = RATE_HINT;
    fn read(written: &String) -> Result<u32, String> {
        parse_rate(written)
    }
    fn show(value: u32) -> String {
        format!("{}%", f64::from(value) / 10.0)
    }
}

/// The node's pool, which some defaults and bounds come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// `max_memory`: the largest memory a process may have.
    pub max_memory: u64,
    /// `max_processes`: processes alive at once.
    pub max_processes: u32,
}

/// A limit's value that did not read, or is below its minimum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitProblem {
    pub field: &'static str,
    pub message: String,
    pub hint: &'static str,
    /// Where it was written: a line (YAML) or a byte offset (TOML).
    pub at: usize,
}

/// What the docs need to know of one limit.
#[derive(Clone, Copy, Debug)]
pub struct LimitInfo {
    pub name: &'static str,
    /// The `[node]` setting its default is, if it is one.
    pub default_from: Option<&'static str>,
    /// Its default shown as the docs show it (for `Pool`'s defaults); `None`: unlimited.
    pub default: fn(&Pool) -> Option<String>,
    /// The smallest value allowed, and why.
    pub at_least: Option<(u64, &'static str)>,
}

/// A written value with where it was written.
pub trait Located {
    type Inner;
    fn inner(&self) -> &Self::Inner;
    fn at(&self) -> usize;
}

impl<T> Located for serde_saphyr::Spanned<T> {
    type Inner = T;
    fn inner(&self) -> &T {
        &self.value
    }
    fn at(&self) -> usize {
        self.referenced.line() as usize
    }
}

impl<T> Located for toml::Spanned<T> {
    type Inner = T;
    fn inner(&self) -> &T {
        self.get_ref()
    }
    fn at(&self) -> usize {
        self.span().start
    }
}

/// Reads one written value (a limit, or a `[node]` setting of the same kind): its value, or
/// a problem (it does not read, or is too small).
pub(super) fn read_one<K: LimitKind, L: Located<Inner = K::Written>>(
    field: &'static str,
    prefix: &str,
    written: &Option<L>,
    at_least: Option<(u64, &'static str)>,
    problems: &mut Vec<LimitProblem>,
) -> Option<K::Value> {
    let written = written.as_ref()?;
    let problem = |message: String, hint: &'static str| LimitProblem {
        field,
        message,
        hint,
        at: written.at(),
    };
    match K::read(written.inner()) {
        Ok(value) => {
            if let Some((least, why)) = below::<K>(value, at_least) {
                problems.push(problem(
                    format!("`{prefix}{field}` must be at least {least}"),
                    why,
                ));
                return None;
            }
            Some(value)
        }
        Err(message) => {
            problems.push(problem(format!("`{prefix}{field}`: {message}"), K::HINT));
            None
        }
    }
}

/// The type of a limit in force: unlimited ones are `Option`s.
macro_rules! in_force {
    ($kind:ident, unlimited) => { Option<<$kind as LimitKind>::Value> };
    ($kind:ident, $($default:tt)+) => { <$kind as LimitKind>::Value };
}

/// A limit's default for `$pool`: `None` when unlimited.
macro_rules! default_of {
    ($pool:ident, unlimited) => {
        None
    };
    ($pool:ident, pool . $setting:ident) => {
        Some($pool.$setting.into())
    };
    ($pool:ident, $value:expr) => {
        Some($value)
    };
}

/// The `[node]` setting a default is, if it is one.
macro_rules! default_from {
    (pool . $setting:ident) => {
        Some(stringify!($setting))
    };
    ($($default:tt)+) => {
        None
    };
}

/// `set` where set, else `fallback` (`Option`s for unlimited limits).
macro_rules! set_or {
    ($set:expr, $fallback:expr, unlimited) => {
        $set.or($fallback)
    };
    ($set:expr, $fallback:expr, $($default:tt)+) => {
        $set.unwrap_or($fallback)
    };
}

/// The table: `name: Kind = default, at least N ("why");`, each with its meaning. A default
/// is `unlimited`, a `[node]` setting (`pool.max_memory`), or a value.
macro_rules! limits {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $kind:ident = [$($default:tt)+] $(, at least $least:literal ($why:literal))?;
    )*) => {
        /// Limits in force for one process. SECURITY.md gives each one's default and why.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $name: in_force!($kind, $($default)+), )*
        }

        /// Limits set on an entry, a host or the node; unset fields fall back (entry → host
        /// → node → built-in default).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct LimitOverrides {
            $( $(#[doc = $doc])* pub $name: Option<<$kind as LimitKind>::Value>, )*
            /// The line of the `limits` they were written under (0 when not from a file).
            pub line: u64,
        }

        /// `limits:` of an entry or host, as written in the registry.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawLimits {
            $( pub $name: Option<serde_saphyr::Spanned<<$kind as LimitKind>::Written>>, )*
        }

        /// `[node.limits]`, as written in wasmhost.toml.
        #[derive(Debug, Clone, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct TomlLimits {
            $( pub $name: Option<toml::Spanned<<$kind as LimitKind>::Written>>, )*
        }

        /// Every limit, in the table's order.
        pub const LIMITS: &[LimitInfo] = &[$(
            LimitInfo {
                name: stringify!($name),
                default_from: default_from!($($default)+),
                default: |pool| {
                    let _ = pool; // unused by unlimited ones
                    let default: Option<<$kind as LimitKind>::Value> = default_of!(pool, $($default)+);
                    default.map($kind::show)
                },
                at_least: limits!(@least $($least, $why)?),
            },
        )*];

        impl Limits {
            /// The built-in defaults for `pool`, where `set` does not say otherwise.
            pub fn defaults(set: &LimitOverrides, pool: &Pool) -> Limits {
                Limits {
                    $( $name: {
                        let default: Option<<$kind as LimitKind>::Value> = default_of!(pool, $($default)+);
                        limits!(@default set.$name, default, $($default)+)
                    }, )*
                }
            }

            /// `entry`'s limits where set, else `host`'s, else these.
            pub fn resolve(&self, entry: &LimitOverrides, host: &LimitOverrides) -> Limits {
                let set = entry.or(host);
                Limits {
                    $( $name: set_or!(set.$name, self.$name, $($default)+), )*
                }
            }
        }

        impl LimitOverrides {
            /// Each limit set below its minimum: (`limits.field`, minimum, why).
            pub fn below_minimum(&self) -> Vec<(&'static str, u64, &'static str)> {
                let mut found = Vec::new();
                $(
                    if let Some((least, why)) = self
                        .$name
                        .and_then(|value| below::<$kind>(value, limits!(@least $($least, $why)?)))
                    {
                        found.push((concat!("limits.", stringify!($name)), least, why));
                    }
                )*
                found
            }

            /// `self` where set, else `fallback`.
            pub fn or(&self, fallback: &LimitOverrides) -> LimitOverrides {
                LimitOverrides {
                    $( $name: self.$name.or(fallback.$name), )*
                    line: self.line,
                }
            }
        }

        impl RawLimits {
            /// The limits written, each read and checked; problems name the field and line.
            pub fn read(&self, line: u64, problems: &mut Vec<LimitProblem>) -> LimitOverrides {
                LimitOverrides {
                    $( $name: read_one::<$kind, _>(
                        stringify!($name), "", &self.$name, limits!(@least $($least, $why)?), problems,
                    ), )*
                    line,
                }
            }
        }

        impl TomlLimits {
            /// The limits written, each read and checked; problems name the field (as
            /// `limits.memory`) and offset.
            pub fn read(&self, problems: &mut Vec<LimitProblem>) -> LimitOverrides {
                LimitOverrides {
                    $( $name: read_one::<$kind, _>(
                        stringify!($name), "limits.", &self.$name, limits!(@least $($least, $why)?), problems,
                    ), )*
                    line: 0,
                }
            }
        }
    };
    (@least) => { None };
    (@least $least:literal, $why:literal) => { Some(($least, $why)) };
    (@default $set:expr, $default:ident, unlimited) => {{
        let _ = $default;
        $set
    }};
    (@default $set:expr, $default:ident, $($rest:tt)+) => {
        // A limited limit always has a default.
        $set.or($default).unwrap_or_default()
    };
}

limits! {
    /// Bytes of linear memory, all its memories and tables together.
    memory: Size = [pool.max_memory];
    /// Running time over its whole life; `None`: unlimited.
    cpu: Time = [unlimited];
    /// The share of one core it may use, in per mille; over it, it is paused (not ended).
    cpu_rate: Share = [unlimited];
    /// Messages its mailbox holds.
    mailbox: Count = [100_000], at least 1 ("it is how many messages the mailbox holds");
    /// Bytes its mailbox holds (payloads and topics).
    mailbox_bytes: Size = [64 << 20];
    /// Bytes of one message's payload; also of its exit value and of spawn arguments for it.
    message_size: Size = [8 << 20];
    /// Live children it may have.
    children: Count = [pool.max_processes];
    /// Events that may wait in its events, and monitors it may hold.
    events: Count = [10_000], at least 1 ("it is how many events may wait");
    /// Names it may hold.
    names: Count = [16];
    /// Resource handles (mailbox, timers, pollables, …) it may hold.
    handles: Count = [10_000], at least 16
        ("a process needs a few handles for its mailbox, events and timers");
    /// Log lines per second (a burst of as many is allowed).
    log_rate: Count = [200];
    /// Bytes the host may hold on its behalf (`ledger.rs`): messages it sent that wait in
    /// mailboxes, events waiting for it, names, monitors, links, pending cancels, arguments
    /// of children not yet started, queued log lines, timers.
    host_memory: Size = [64 << 20];
}

/// A limit the pool cannot give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolProblem {
    /// As written: `limits.memory`.
    pub field: &'static str,
    /// `128.0 MiB is more than the node's `max_memory` of 64.0 MiB`.
    pub message: String,
    pub hint: &'static str,
}

impl LimitOverrides {
    /// What of these the pool cannot give: a `memory` above `max_memory`, `children` above
    /// `max_processes`.
    pub fn beyond(&self, pool: &Pool) -> Vec<PoolProblem> {
        let mut problems = Vec::new();
        if let Some(memory) = self.memory.filter(|&m| m > pool.max_memory) {
            problems.push(PoolProblem {
                field: "limits.memory",
                message: format!(
                    "{} is more than the node's `max_memory` of {}: no pool slot is that large",
                    show_size(memory),
                    show_size(pool.max_memory)
                ),
                hint: "raise `max_memory` in [node] of wasmhost.toml (or --max-memory), or lower the limit",
            });
        }
        if let Some(children) = self.children.filter(|&c| c > u64::from(pool.max_processes)) {
            problems.push(PoolProblem {
                field: "limits.children",
                message: format!(
                    "{children} is more than the node's `max_processes` of {}",
                    pool.max_processes
                ),
                hint: "raise `max_processes` in [node] of wasmhost.toml (or --max-processes), or lower the limit",
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: Pool = Pool {
        max_memory: 64 << 20,
        max_processes: 10_000,
    };

    fn doc(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("reading {name}: {err}"))
    }

    #[test]
    fn defaults_come_from_the_table_and_the_pool() {
        let limits = Limits::defaults(&LimitOverrides::default(), &POOL);
        assert_eq!(limits.memory, 64 << 20);
        assert_eq!(limits.children, 10_000);
        assert_eq!(limits.mailbox, 100_000);
        assert_eq!(limits.cpu, None);
        let set = LimitOverrides {
            mailbox: Some(5),
            cpu: Some(Duration::from_secs(1)),
            ..LimitOverrides::default()
        };
        let limits = Limits::defaults(&set, &POOL);
        assert_eq!(
            (limits.mailbox, limits.cpu),
            (5, Some(Duration::from_secs(1)))
        );
    }

    /// SECURITY.md's table of limits has one row per limit, in the table's order, whose
    /// default is the table's (and names the `[node]` setting it comes from).
    #[test]
    fn security_md_lists_every_limit_with_its_default() {
        let text = doc("SECURITY.md");
        let rows: Vec<(String, String)> = text
            .lines()
            .skip_while(|l| !l.starts_with("| limit | default |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((name.to_string(), cells.get(2)?.to_string()))
            })
            .collect();
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        let table: Vec<&str> = LIMITS.iter().map(|l| l.name).collect();
        assert_eq!(names, table, "SECURITY.md's limits, in order");
        for ((name, cell), limit) in rows.iter().zip(LIMITS) {
            match (limit.default)(&POOL) {
                None => assert_eq!(cell, "none", "{name}'s default in SECURITY.md"),
                Some(shown) => assert!(
                    cell.contains(&shown),
                    "{name}'s default in SECURITY.md is `{cell}`, not {shown}"
                ),
            }
            if let Some(setting) = limit.default_from {
                assert!(
                    cell.contains(&format!("`{setting}`")),
                    "{name}'s default in SECURITY.md names `{setting}`"
                );
            }
        }
    }

    /// README.md's `[node.limits]` example sets every limit to its default (an unlimited one
    /// commented out), and reads back as the table reads it.
    #[test]
    fn readme_shows_every_limit_at_its_default() {
        let text = doc("README.md");
        let block: String = text
            .lines()
            .skip_while(|l| !l.starts_with("[node.limits]"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .map(|l| l.trim_start_matches("# "))
            .collect::<Vec<_>>()
            .join("\n");
        let written: TomlLimits = toml::from_str(&block)
            .unwrap_or_else(|err| panic!("README.md's [node.limits] reads: {err}"));
        let mut problems = Vec::new();
        let read = written.read(&mut problems);
        assert_eq!(problems, []);
        let defaults = Limits::defaults(&LimitOverrides::default(), &POOL);
        let shown = Limits::defaults(&read, &POOL);
        for limit in LIMITS {
            assert!(
                block
                    .lines()
                    .any(|l| l.starts_with(&format!("{} ", limit.name))),
                "README.md's [node.limits] shows `{}`",
                limit.name
            );
        }
        let Limits { cpu, cpu_rate, .. } = shown.clone();
        assert!(
            cpu.is_some() && cpu_rate.is_some(),
            "examples of the unlimited ones"
        );
        assert_eq!(
            Limits {
                cpu: None,
                cpu_rate: None,
                ..shown
            },
            defaults,
            "README.md's [node.limits] shows the defaults"
        );
    }

    #[test]
    fn a_limit_below_its_minimum_or_unreadable_is_a_problem_at_its_place() {
        let written: TomlLimits = toml::from_str("handles = 3\nmemory = \"lots\"").expect("TOML");
        let mut problems = Vec::new();
        let read = written.read(&mut problems);
        assert_eq!((read.handles, read.memory), (None, None));
        assert_eq!(
            problems,
            [
                LimitProblem {
                    field: "memory",
                    message: "`limits.memory`: `lots` is not a size: couldn't parse \"lots\" into a ByteSize, cannot parse float from empty string".into(),
                    hint: SIZE_HINT,
                    at: 21,
                },
                LimitProblem {
                    field: "handles",
                    message: "`limits.handles` must be at least 16".into(),
                    hint: "a process needs a few handles for its mailbox, events and timers",
                    at: 10,
                },
            ]
        );
    }
}
