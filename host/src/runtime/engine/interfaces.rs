//! The host interfaces a node offers its processes, as a table the embedder hands to
//! [`NodeBuilder::interfaces`](super::NodeBuilder::interfaces): which registry module grants
//! each one, which imports it provides, and how to link it. The runtime links every process
//! from this table and knows no interface by name; the standard table is
//! `wasmhost::abi::INTERFACES`.

use wasmtime::component::Linker;

use super::store::ProcessState;

/// Adds an interface's functions to a process's linker.
pub type LinkFn = fn(&mut Linker<ProcessState>) -> wasmtime::Result<()>;

/// What imports a row of the table provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provides {
    /// One WIT interface, named without its version: `wasmhost:abi/time`.
    Interface(&'static str),
    /// Every interface of a WIT package namespace: `wasi` provides `wasi:io/poll`, ….
    Package(&'static str),
    /// No import: the capability lives inside the guest (e.g. in-process channels).
    InGuest,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct HostInterface {
    /// The module that grants it in a registry entry's `modules`; `None`: every process has
    /// it.
    pub module: Option<&'static str>,
    pub provides: Provides,
    /// How to link it; `None` for a capability that needs no import.
    pub link: Option<LinkFn>,
    /// What it gives a process, in a few words.
    pub about: &'static str,
}

impl HostInterface {
    /// Whether `self` takes the place of `other` in a table.
    pub(in crate::runtime) fn replaces(&self, other: &HostInterface) -> bool {
        self.provides == other.provides
            && (self.provides != Provides::InGuest || self.module == other.module)
    }

    /// Whether this row provides `import` (`wasmhost:abi/time@0.5.0`, `wasi:io/poll@0.2.0`).
    pub fn provides(&self, import: &str) -> bool {
        let unversioned = import.split('@').next().unwrap_or(import);
        match self.provides {
            Provides::Interface(name) => name == unversioned,
            Provides::Package(package) => unversioned.split(':').next() == Some(package),
            Provides::InGuest => false,
        }
    }
}

/// The row that provides `import`, if any.
pub fn row_for<'a>(table: &'a [HostInterface], import: &str) -> Option<&'a HostInterface> {
    table.iter().find(|row| row.provides(import))
}

/// The modules the table knows, in its order.
pub fn module_names(table: &[HostInterface]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for name in table.iter().filter_map(|row| row.module) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}
