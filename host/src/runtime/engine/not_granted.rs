//! Interfaces a component imports but its entry is not granted. Toolchains such as
//! componentize-py import every interface of the world whether the code uses it or not, so
//! refusing such a component at load would refuse every Python process. Instead each function
//! of the interface is linked to one that traps with an error naming the module: the call
//! fails (the process ends with that trap), never succeeds. An import no module provides is
//! still refused at load (`programs.rs`).

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Linker, ResourceType};
use wasmtime_wasi::p2::DynPollable;

use super::store::ProcessState;

/// The type behind an interface not granted's resources; none is ever made, as every function
/// that could make one traps.
struct Ungranted;

/// The error a call not granted traps with.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotGranted(String);

/// Links every function of `import` (an instance the component imports) to a trap that says
/// `entry` is not granted `module`.
pub fn link_not_granted(
    linker: &mut Linker<ProcessState>,
    engine: &Engine,
    import: &str,
    item: &ComponentItem,
    entry: &str,
    module: &str,
) -> wasmtime::Result<()> {
    let ComponentItem::ComponentInstance(instance) = item else {
        return Ok(());
    };
    let mut linked = linker.instance(import)?;
    for (name, export) in instance.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(_) => {
                let message = format!(
                    "{import}#{name}: `{module}` is not granted to {entry} (add it to the entry's `modules`)"
                );
                linked.func_new(name, move |_, _, _, _| {
                    Err(NotGranted(message.clone()).into())
                })?;
            }
            // A resource the interface `use`s from WASI is WASI's own type, which the
            // linker already has; only the interface's own resources are made here.
            ComponentItem::Resource(_) if name == "pollable" => {
                linked.resource(name, ResourceType::host::<DynPollable>(), |_, _| Ok(()))?;
            }
            ComponentItem::Resource(_) => {
                linked.resource(name, ResourceType::host::<Ungranted>(), |_, _| Ok(()))?;
            }
            _ => {}
        }
    }
    Ok(())
}
