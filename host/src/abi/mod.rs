//! The host side of the process ABI (`wit/wasmhost.wit`): one file per WIT interface, each
//! implementing that interface's generated `Host` trait on the process's store data.
//! `linker` links exactly the interfaces an entry's modules grant.

mod convert;
mod io;
mod logger;
mod process;
mod time;

use anyhow::Result;
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::app::Module;
use crate::runtime::ProcessState;

pub use process::{EventsHandle, InboxHandle};
pub use time::{Ticker, Timer};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmhost:abi/guest",
    imports: {
        "wasmhost:abi/time.sleep": async | trappable,
        "wasmhost:abi/io.readline": async | trappable,
        default: trappable,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasmhost:abi/process.mailbox": crate::abi::InboxHandle,
        "wasmhost:abi/process.event-stream": crate::abi::EventsHandle,
        "wasmhost:abi/time.timer": crate::abi::Timer,
        "wasmhost:abi/time.ticker": crate::abi::Ticker,
    },
    require_store_data_send: true,
});

pub use self::wasmhost::abi as bindings;

/// A linker with WASI (sandboxed: no files, network or environment unless granted) and
/// the ABI interfaces that `modules` grant.
pub fn linker(engine: &Engine, modules: &[Module]) -> Result<Linker<ProcessState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::types::add_to_linker::<_, HasSelf<ProcessState>>(&mut linker, |s| s)?;
    for module in modules {
        match module {
            Module::Process => {
                bindings::process::add_to_linker::<_, HasSelf<ProcessState>>(&mut linker, |s| s)?
            }
            Module::Time => {
                bindings::time::add_to_linker::<_, HasSelf<ProcessState>>(&mut linker, |s| s)?
            }
            Module::Logger => {
                bindings::logger::add_to_linker::<_, HasSelf<ProcessState>>(&mut linker, |s| s)?
            }
            Module::Io => {
                bindings::io::add_to_linker::<_, HasSelf<ProcessState>>(&mut linker, |s| s)?
            }
            Module::Channel => {}
        }
    }
    Ok(linker)
}

impl bindings::types::Host for ProcessState {}
