//! The host side of the process ABI (`wit/wasmhost.wit`): one file per WIT interface, each
//! implementing that interface on the runtime's [`ProcessCtxView`] and linking it with its own
//! `add_to_linker`, for any store that is a [`ProcessView`] — the wasmtime-wasi pattern.
//!
//! [`INTERFACES`] is the one table that maps registry modules to WIT interfaces and their
//! linkers: the node checks `modules` and imports against it and links from it, and
//! `wasmhost check` prints it. A new host interface is a new file here and a row there.

mod io;
mod logger;
mod process;
mod time;
mod types;

use wasmtime::component::HasData;

use crate::runtime::{HostInterface, ProcessCtxView, ProcessState, Provides};

pub use process::{EventsHandle, MailboxHandle};
pub use time::{Ticker, Timer};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wasmhost:abi/guest",
    imports: {
        "wasmhost:abi/time.sleep": async | trappable,
        "wasmhost:abi/io.readline": async | trappable,
        "wasmhost:abi/process.[method]mailbox.receive-many": async | trappable,
        // On a node of a cluster, a round trip to the cluster's names bucket, and to the
        // node a spawn names (`c@app:processes`).
        "wasmhost:abi/process.register": async | trappable,
        "wasmhost:abi/process.spawn": async | trappable,
        "wasmhost:abi/process.spawn-monitored": async | trappable,
        "wasmhost:abi/process.spawn-linked": async | trappable,
        default: trappable,
    },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasmhost:abi/process.mailbox": crate::abi::MailboxHandle,
        "wasmhost:abi/process.events": crate::abi::EventsHandle,
        "wasmhost:abi/time.timer": crate::abi::Timer,
        "wasmhost:abi/time.ticker": crate::abi::Ticker,
    },
    require_store_data_send: true,
});

/// The generated bindings of the `wasmhost:abi` interfaces.
pub use self::wasmhost::abi as bindings;

/// Says that this module's interfaces work on a [`ProcessCtxView`].
pub struct HasProcess;

impl HasData for HasProcess {
    type Data<'a> = ProcessCtxView<'a>;
}

/// The standard host interfaces, in the order `wasmhost check` shows them.
pub const INTERFACES: &[HostInterface] = &[
    HostInterface {
        module: None,
        provides: Provides::Package("wasi"),
        link: Some(crate::runtime::link_wasi),
        about: "WASI 0.2, sandboxed: no preopened files, no network, no environment",
    },
    HostInterface {
        module: None,
        provides: Provides::Interface("wasmhost:abi/types"),
        link: Some(types::add_to_linker::<ProcessState>),
        about: "the ABI's shared types",
    },
    HostInterface {
        module: Some("process"),
        provides: Provides::Interface("wasmhost:abi/process"),
        link: Some(process::add_to_linker::<ProcessState>),
        about: "messages, spawning, monitors, links, names",
    },
    HostInterface {
        module: Some("time"),
        provides: Provides::Interface("wasmhost:abi/time"),
        link: Some(time::add_to_linker::<ProcessState>),
        about: "timers, tickers, sleep",
    },
    HostInterface {
        module: Some("logger"),
        provides: Provides::Interface("wasmhost:abi/logger"),
        link: Some(logger::add_to_linker::<ProcessState>),
        about: "structured logging through the host",
    },
    HostInterface {
        module: Some("io"),
        provides: Provides::Interface("wasmhost:abi/io"),
        link: Some(io::add_to_linker::<ProcessState>),
        about: "the terminal, for the process bound to it",
    },
    HostInterface {
        module: Some("channel"),
        provides: Provides::InGuest,
        link: None,
        about: "in-process channels (they live in the guest and need no import)",
    },
];
