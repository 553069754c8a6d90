//! Programs: each `process.wasm` entry compiled once, checked against its entry (is it a
//! component, does it match its hash, does it import only what its modules grant, does it
//! export its method), and pre-instantiated so a spawn only allocates and runs.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, types::ComponentItem};

use super::state::ProcessState;
use crate::abi;
use crate::app::{App, Diagnostic, Diagnostics, Grant, Module, ProcessEntry};

/// A compiled, linked process entry.
pub struct Program {
    pub entry: ProcessEntry,
    pub pre: InstancePre<ProcessState>,
    /// The export named by `method`, looked up once.
    pub method: ComponentExportIndex,
    pub sha256: String,
}

/// Compiles and checks every process entry; all problems are reported together.
pub fn compile_all(
    engine: &Engine,
    app: &App,
) -> Result<HashMap<String, Arc<Program>>, Diagnostics> {
    let mut problems = Diagnostics::default();
    let mut programs = HashMap::new();
    // Entries often share a component (with other limits or modules): compile it once.
    let mut compiled = HashMap::new();
    for entry in app.processes.values() {
        match compile(engine, entry, &mut compiled) {
            Ok(program) => {
                programs.insert(entry.id.clone(), Arc::new(program));
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

fn compile(
    engine: &Engine,
    entry: &ProcessEntry,
    compiled: &mut HashMap<String, Component>,
) -> Result<Program, Diagnostic> {
    let problem = |message: String| {
        Diagnostic::new(&entry.origin.file, message)
            .at(entry.origin.line)
            .entry(entry.id.clone())
    };
    let source = entry.source.display();
    let bytes = std::fs::read(&entry.source)
        .map_err(|err| problem(format!("cannot read source {source}: {err}")))?;

    let sha256 = format!("sha256:{:x}", Sha256::digest(&bytes));
    if let Some(pinned) = &entry.hash
        && !pinned.eq_ignore_ascii_case(&sha256)
    {
        return Err(problem(format!(
            "source {source} does not match its hash: it is {sha256}"
        ))
        .hint(
            "the component changed since it was pinned; update `hash` if the change is intended",
        ));
    }

    match wasm_kind(&bytes) {
        WasmKind::Component => {}
        WasmKind::CoreModule => {
            return Err(problem(format!(
                "source {source} is a core WebAssembly module, not a component"
            ))
            .hint("build for wasm32-wasip2, or wrap the module with `wasm-tools component new`"));
        }
        WasmKind::NotWasm => {
            return Err(
                problem(format!("source {source} is not a WebAssembly component"))
                    .hint("`source` must name a .wasm component built for wasm32-wasip2"),
            );
        }
    }

    let component = match compiled.get(&sha256) {
        Some(component) => component.clone(),
        None => {
            let component = Component::new(engine, &bytes)
                .map_err(|err| problem(format!("source {source} does not compile: {err:#}")))?;
            compiled.insert(sha256.clone(), component.clone());
            component
        }
    };

    let ty = component.component_type();
    for (name, _) in ty.imports(engine) {
        match Module::for_import(name) {
            Grant::Always => {}
            Grant::Module(module) if entry.modules.contains(&module) => {}
            Grant::Module(module) => {
                return Err(problem(format!(
                    "the component imports `{name}`, but the entry's modules do not grant `{module}`"
                ))
                .hint(format!("add `{module}` to `modules` if this process should have it")));
            }
            Grant::Unknown => {
                return Err(problem(format!(
                    "the component imports `{name}`, which wasmhost does not provide"
                ))
                .hint("a process may import the wasmhost:abi interfaces and WASI"));
            }
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

    let linker = abi::linker(engine, &entry.modules)
        .map_err(|err| problem(format!("cannot set up the host interfaces: {err:#}")))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|err| problem(format!("cannot link the component: {err:#}")))?;

    Ok(Program {
        entry: entry.clone(),
        pre,
        method,
        sha256,
    })
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
