//! The modules a `process.wasm` entry can grant, and the imports each one allows.

use std::fmt;
use std::str::FromStr;

/// The WIT package of the process ABI (`wit/wasmhost.wit`).
pub const ABI_PACKAGE: &str = "wasmhost:abi";

/// A capability a registry entry grants with `modules:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    /// Messaging, spawning, monitors, links, names: `wasmhost:abi/process`.
    Process,
    /// Timers: `wasmhost:abi/time`.
    Time,
    /// Structured logging: `wasmhost:abi/logger`.
    Logger,
    /// The terminal: `wasmhost:abi/io`.
    Io,
    /// In-process channels. They live inside the guest (the SDK), so this grants no
    /// import; it is accepted so registries read like the seed's.
    Channel,
}

impl Module {
    pub const ALL: [Module; 5] = [
        Module::Process,
        Module::Time,
        Module::Logger,
        Module::Io,
        Module::Channel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Module::Process => "process",
            Module::Time => "time",
            Module::Logger => "logger",
            Module::Io => "io",
            Module::Channel => "channel",
        }
    }

    /// The WIT interface this module grants, if any (`process` → `wasmhost:abi/process`).
    pub fn interface(self) -> Option<&'static str> {
        match self {
            Module::Channel => None,
            other => Some(other.name()),
        }
    }

    /// What grants the import `name` (e.g. `wasmhost:abi/time@0.1.0`).
    pub fn for_import(name: &str) -> Grant {
        let unversioned = name.split('@').next().unwrap_or(name);
        if unversioned.starts_with("wasi:") {
            return Grant::Always;
        }
        let Some(interface) = unversioned
            .strip_prefix(ABI_PACKAGE)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Grant::Unknown;
        };
        if interface == "types" {
            return Grant::Always;
        }
        Module::ALL
            .into_iter()
            .find(|m| m.interface() == Some(interface))
            .map_or(Grant::Unknown, Grant::Module)
    }
}

/// What an import needs to be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Every process gets it: WASI (sandboxed: nothing reaches the outside unless granted)
    /// and the ABI's shared types.
    Always,
    /// The entry's `modules` must list this module.
    Module(Module),
    /// The host does not provide it at all.
    Unknown,
}

impl fmt::Display for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Module {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Module::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Module::ALL.iter().map(|m| m.name()).collect();
                format!("unknown module `{s}` (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_map_to_the_module_that_grants_them() {
        assert_eq!(
            Module::for_import("wasmhost:abi/time@0.1.0"),
            Grant::Module(Module::Time)
        );
        assert_eq!(
            Module::for_import("wasmhost:abi/types@0.1.0"),
            Grant::Always
        );
        assert_eq!(Module::for_import("wasi:io/poll@0.2.12"), Grant::Always);
        assert_eq!(Module::for_import("acme:db/query"), Grant::Unknown);
    }
}
