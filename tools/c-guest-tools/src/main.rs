//! The C guests' toolchain, Rust half (`scripts/build-c-guests.sh` runs it): the bindings
//! `wit-bindgen c` would write, and the component `wasm-tools component new --adapt` would
//! make of a core module, with the WASI preview1 reactor adapter of the wasmtime version the
//! host uses. Its crates are pinned by Cargo.lock, so a fresh machine needs nothing beyond
//! cargo and Debian's clang.
//!
//!     c-guest-tools bindgen WIT_DIR WORLD OUT_DIR
//!     c-guest-tools component CORE.wasm OUT.wasm

use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_bindgen_core::Files;
use wit_bindgen_core::wit_parser::Resolve;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bindgen", wit, world, out] => bindgen(Path::new(wit), world, Path::new(out)),
        ["component", core, out] => component(Path::new(core), Path::new(out)),
        _ => bail!(
            "usage: c-guest-tools bindgen WIT_DIR WORLD OUT_DIR | c-guest-tools component CORE.wasm OUT.wasm"
        ),
    }
}

/// Writes the C bindings of `world` (from the WIT in `wit`) into `out`.
fn bindgen(wit: &Path, world: &str, out: &Path) -> Result<()> {
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
fn component(core: &Path, out: &Path) -> Result<()> {
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
