//! The C guests' toolchain, Rust half: the bindings `wit-bindgen c` would write, and the
//! component `wasm-tools component new --adapt` would make of a core module, with the WASI
//! preview1 reactor adapter of the wasmtime version the host uses. `wasmhost build` calls it
//! for an app's C guests. Its crates are
//! pinned by Cargo.lock, so a fresh machine needs nothing beyond cargo and Debian's clang.

use std::path::Path;

use anyhow::{Context, Result};
use wit_bindgen_core::Files;
use wit_bindgen_core::wit_parser::Resolve;

/// Writes the C bindings of `world` (from the WIT in `wit`) into `out`.
pub fn bindgen(wit: &Path, world: &str, out: &Path) -> Result<()> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit)
        .with_context(|| format!("reading the WIT in {}", wit.display()))?;
    let world = resolve.select_world(&[package], Some(world))?;
    let mut files = Files::default();
    let mut generator = wit_bindgen_c::Opts::default().build();
    generator.generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out)?;
    for (name, bytes) in files.iter() {
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Wraps the core module `core` (built by clang as a WASI preview1 reactor, with the
/// bindings' component type linked in) into a component at `out`.
pub fn component(core: &Path, out: &Path) -> Result<()> {
    let module = std::fs::read(core).with_context(|| format!("reading {}", core.display()))?;
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)?
        .adapter("wasi_snapshot_preview1", adapter)?
        .validate(true)
        .encode()?;
    std::fs::write(out, component).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}
