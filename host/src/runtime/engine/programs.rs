//! Programs: each `process.wasm` entry compiled once, checked against its entry (is it a
//! component, does it match its hash, are its modules known, does it import only what
//! wasmhost provides, does it export its method), linked from the node's interface table
//! (what it imports but is not granted), and pre-instantiated so a spawn only
//! allocates and runs.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use rayon::prelude::*;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{
    Component, ComponentExportIndex, InstancePre, Linker, types::ComponentItem,
};

use super::compile_cache::{
    CompileCache, CompileProgress, Compiled, compile as compile_uncached, digest,
};
use super::interfaces::{HostInterface, module_names, row_for};
use super::not_granted::link_not_granted;
use super::pool::Share;
use super::store::ProcessState;
use crate::app::{App, Diagnostic, Diagnostics, ProcessEntry};
use crate::runtime::process::Privileges;

/// A compiled, linked process entry.
pub struct Program {
    /// The entry's id, shared by every process of it.
    pub id: Arc<str>,
    pub entry: ProcessEntry,
    pub pre: InstancePre<ProcessState>,
    /// The export named by `method`, looked up once.
    pub method: ComponentExportIndex,
    /// What the component imports.
    pub imports: Vec<Import>,
    /// What its processes are granted.
    pub privileges: Arc<Privileges>,
    /// Whether its machine code came from the compile cache.
    pub compiled: Compiled,
    /// What each of its processes takes from the instance pool.
    pub share: Share,
}

impl Program {
    /// What a process of this program is known by: its entry and its privileges.
    pub fn identity(&self) -> (Arc<str>, Arc<Privileges>) {
        (self.id.clone(), self.privileges.clone())
    }
}

/// One interface a component imports.
#[derive(Debug, Clone)]
pub struct Import {
    /// The WIT interface, with its version: `wasmhost:abi/time@0.5.0`.
    pub name: String,
    /// The module that grants it, when the entry is not granted it: its calls fail.
    pub not_granted: Option<&'static str>,
}

/// How components are compiled: through a cache or not, and who hears of long compiles.
#[derive(Default, Clone, Copy)]
pub struct Compiler<'a> {
    pub cache: Option<&'a CompileCache>,
    pub progress: Option<&'a dyn CompileProgress>,
}

/// Compiles and checks every process entry; all problems are reported together. Each
/// component is read, hashed and compiled (or loaded from the cache) once, however many
/// entries share it, and the components are worked on by as many threads as the machine has
/// cores: a start that loads a Python and a JavaScript component from the cache is bound by
/// reading and checking tens of megabytes each.
pub fn compile_all(
    engine: &Engine,
    app: &App,
    interfaces: &[HostInterface],
    compiler: Compiler<'_>,
) -> Result<HashMap<String, Arc<Program>>, Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut by_source: IndexMap<&Path, Vec<&ProcessEntry>> = IndexMap::new();
    // An entry whose component is not built yet has no program: spawning it fails.
    for entry in app.processes.values() {
        if app.unbuilt.contains_key(&entry.id) {
            continue;
        }
        let unknown = unknown_modules(entry, interfaces);
        if unknown.is_empty() {
            by_source.entry(&entry.source).or_default().push(entry);
        } else {
            unknown.into_iter().for_each(|d| problems.push(d));
        }
    }
    let groups: Vec<Vec<&ProcessEntry>> = by_source.into_values().collect();
    // rayon's pool (the one wasmtime compiles on) keeps the groups' order.
    let done: Vec<_> = groups
        .par_iter()
        .map(|entries| compile_source(engine, entries, interfaces, compiler))
        .collect();
    let mut programs = HashMap::new();
    for result in done.into_iter().flatten() {
        match result {
            Ok(program) => {
                programs.insert(program.entry.id.clone(), Arc::new(program));
            }
            Err(diagnostic) => problems.push(diagnostic),
        }
    }
    if problems.is_empty() {
        Ok(programs)
    } else {
        Err(problems)
    }
}

/// The program of one entry, compiled (or loaded from the cache) on its own, and the
/// `sha256:…` of the component it was made from: an upgrade's (the file may change again).
pub fn compile_entry(
    engine: &Engine,
    entry: &ProcessEntry,
    interfaces: &[HostInterface],
    compiler: Compiler<'_>,
) -> Result<(Program, String), Diagnostics> {
    let unknown = unknown_modules(entry, interfaces);
    if !unknown.is_empty() {
        return Err(Diagnostics(unknown));
    }
    let bytes = std::fs::read(&entry.source).map_err(|err| {
        let message = format!("cannot read source {}: {err}", entry.source.display());
        Diagnostics(vec![problem(entry, message)])
    })?;
    match compile_bytes(engine, &[entry], &bytes, interfaces, compiler).pop() {
        Some(Ok(program)) => Ok((program, sha256_of(&bytes))),
        Some(Err(problem)) => Err(Diagnostics(vec![problem])),
        None => Err(Diagnostics(vec![problem(
            entry,
            "nothing was compiled".into(),
        )])),
    }
}

/// A diagnostic for every module the entry names that no interface is granted by.
fn unknown_modules(entry: &ProcessEntry, interfaces: &[HostInterface]) -> Vec<Diagnostic> {
    let known = module_names(interfaces);
    entry
        .modules
        .iter()
        .filter(|m| !known.contains(&m.name.as_str()))
        .map(|m| {
            Diagnostic::new(
                &entry.origin.file,
                format!("unknown module `{}` (known: {})", m.name, known.join(", ")),
            )
            .at(m.line)
            .entry(entry.id.clone())
        })
        .collect()
}

/// A problem with `entry`, at its place in the registry.
fn problem(entry: &ProcessEntry, message: String) -> Diagnostic {
    Diagnostic::new(&entry.origin.file, message)
        .at(entry.origin.line)
        .entry(entry.id.clone())
}

/// The programs of the `entries` that share one source: the component read and compiled
/// once, each entry checked and linked on its own.
fn compile_source(
    engine: &Engine,
    entries: &[&ProcessEntry],
    interfaces: &[HostInterface],
    compiler: Compiler<'_>,
) -> Vec<Result<Program, Diagnostic>> {
    let Some(first) = entries.first() else {
        return Vec::new();
    };
    match std::fs::read(&first.source) {
        Ok(bytes) => compile_bytes(engine, entries, &bytes, interfaces, compiler),
        Err(err) => {
            let message = format!("cannot read source {}: {err}", first.source.display());
            entries
                .iter()
                .map(|entry| Err(problem(entry, message.clone())))
                .collect()
        }
    }
}

/// [`compile_source`] of the component's `bytes`, read already.
fn compile_bytes(
    engine: &Engine,
    entries: &[&ProcessEntry],
    bytes: &[u8],
    interfaces: &[HostInterface],
    compiler: Compiler<'_>,
) -> Vec<Result<Program, Diagnostic>> {
    let Some(first) = entries.first() else {
        return Vec::new();
    };
    let source = first.source.display();
    let (component, origin) = match component_of(engine, bytes, &first.source, compiler) {
        Ok(done) => done,
        Err((message, hint)) => {
            return entries
                .iter()
                .map(|entry| {
                    let diagnostic = problem(entry, message.clone());
                    Err(match hint {
                        Some(hint) => diagnostic.hint(hint),
                        None => diagnostic,
                    })
                })
                .collect();
        }
    };
    let share = Share::of(&component, bytes);
    // Hashed once, and only if an entry pins it.
    let sha256 = OnceCell::new();
    entries
        .iter()
        .map(|entry| {
            if let Some(pinned) = &entry.hash {
                let sha256 = sha256.get_or_init(|| sha256_of(bytes));
                if !pinned.eq_ignore_ascii_case(sha256) {
                    return Err(problem(
                        entry,
                        format!("source {source} does not match its hash: it is {sha256}"),
                    )
                    .hint("the component changed since it was pinned; update `hash` if the change is intended"));
                }
            }
            program(engine, entry, &component, origin.clone(), share, interfaces)
        })
        .collect()
}

/// `sha256:<hex>` of `bytes`: what a registry's `hash` pins.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The compiled component in `bytes`, or a message and a hint saying why there is none.
fn component_of(
    engine: &Engine,
    bytes: &[u8],
    path: &Path,
    compiler: Compiler<'_>,
) -> Result<(Component, Compiled), (String, Option<&'static str>)> {
    let source = path.display();
    match wasm_kind(bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err((
                format!("source {source} is a core WebAssembly module, not a component"),
                Some("build for wasm32-wasip2, or wrap the module with `wasm-tools component new`"),
            ));
        }
        WasmKind::NotWasm => {
            return Err((
                format!("source {source} is not a WebAssembly component"),
                Some("`source` must name a .wasm component built for wasm32-wasip2"),
            ));
        }
    }
    match compiler.cache {
        Some(cache) => cache.component(engine, bytes, &digest(bytes), path, compiler.progress),
        None => compile_uncached(engine, bytes, path, compiler.progress)
            .map(|c| (c, Compiled::Compiled)),
    }
    .map_err(|err| (format!("source {source} does not compile: {err:#}"), None))
}

/// `entry`'s program: its imports checked against what it is granted, its method found, and
/// the component linked.
fn program(
    engine: &Engine,
    entry: &ProcessEntry,
    component: &Component,
    compiled: Compiled,
    share: Share,
    interfaces: &[HostInterface],
) -> Result<Program, Diagnostic> {
    let problem = |message: String| problem(entry, message);
    let ty = component.component_type();
    let mut imports = Vec::new();
    let mut not_granted = Vec::new();
    for (name, item) in ty.imports(engine) {
        let Some(row) = row_for(interfaces, name) else {
            return Err(problem(format!(
                "the component imports `{name}`, which wasmhost does not provide"
            ))
            .hint("a process may import the wasmhost:abi interfaces and WASI"));
        };
        match row.module {
            Some(module) if !entry.grants(module) => {
                not_granted.push((name.to_string(), item.ty, module));
                imports.push(Import {
                    name: name.to_string(),
                    not_granted: Some(module),
                });
            }
            _ => imports.push(Import {
                name: name.to_string(),
                not_granted: None,
            }),
        }
    }

    let method = entry.method.as_str();
    let exported = ty
        .exports(engine)
        .find(|(name, _)| *name == method)
        .map(|(_, item)| item.ty);
    let Some(ComponentItem::ComponentFunc(_)) = exported else {
        return Err(problem(format!(
            "the component exports no function `{method}` (the entry's `method`)"
        ))
        .hint("export `main: func(args: list<payload>) -> result<payload, string>` (the Rust SDK's `entry!` does)"));
    };
    let Some(method) = component.get_export_index(None, method) else {
        return Err(problem(format!(
            "the component exports no function `{method}`"
        )));
    };

    let linker = linker(engine, entry, interfaces, &not_granted)
        .map_err(|err| problem(format!("cannot set up the host interfaces: {err:#}")))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|err| problem(format!("cannot link the component: {err:#}")))?;

    Ok(Program {
        id: Arc::from(entry.id.as_str()),
        entry: entry.clone(),
        pre,
        method,
        imports,
        privileges: Arc::new(Privileges::of(entry)),
        compiled,
        share,
    })
}

/// A linker with every interface the entry is granted and those every process has; the
/// imports it is not granted are linked to traps (`not_granted.rs`).
fn linker(
    engine: &Engine,
    entry: &ProcessEntry,
    interfaces: &[HostInterface],
    not_granted: &[(String, ComponentItem, &str)],
) -> wasmtime::Result<Linker<ProcessState>> {
    let mut linker = Linker::new(engine);
    for row in interfaces {
        let granted = row.module.is_none_or(|module| entry.grants(module));
        if let (true, Some(link)) = (granted, row.link) {
            link(&mut linker)?;
        }
    }
    for (import, item, module) in not_granted {
        link_not_granted(&mut linker, engine, import, item, &entry.id, module)?;
    }
    Ok(linker)
}

enum WasmKind {
    Component,
    CoreModule,
    NotWasm,
}

/// Tells a component from a core module by the binary's preamble (magic and layer).
fn wasm_kind(bytes: &[u8]) -> WasmKind {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => WasmKind::Component,
        Some([0, b'a', b's', b'm', _, _, 0, 0]) => WasmKind::CoreModule,
        _ => WasmKind::NotWasm,
    }
}
