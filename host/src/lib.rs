//! wasmhost: Erlang's process model for WebAssembly components, as a library and the
//! `wasmhost` binary.
//!
//! Data flows one way: [`app`] loads and validates the registry; [`runtime`] builds a
//! [`Node`](runtime::Node) from it (a configuration, the compiled components, a table of
//! host interfaces) and runs processes; [`abi`] is the standard table of host interfaces
//! (one module per WIT interface); [`services`] supervises the registry's services and
//! supervisors; [`terminal`] binds a process to the terminal; [`control`] answers
//! `wasmhost ps` on a local socket; [`lifecycle`] lives a node's life as `wasmhost run` does
//! (services, control socket, an entry on the terminal, the stop); [`check_report`] is what
//! `wasmhost check` shows. The binary only reads its arguments and calls these:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::time::Instant;
//! use wasmhost::app::{self, AppRoot};
//! use wasmhost::lifecycle::{EntryOnTerminal, Running, Signals};
//! use wasmhost::runtime::{Node, NodeConfig};
//!
//! let root = AppRoot::locate(None)?;
//! let app = app::load(&root)?;
//! let entry = EntryOnTerminal::resolve(&app, "app:cli")?;
//! let node = Node::builder(app)
//!     .config(NodeConfig::default().with_settings(&root.node))
//!     .interfaces(wasmhost::abi::INTERFACES)
//!     .build()?;
//! let mut signals = Signals::listen()?;
//! let running = Running::start(node, Instant::now()).await;
//! let ended = running.run_entry(&entry, Vec::new(), &mut signals).await?;
//! running.stop(&mut signals, false).await;
//! println!("{ended:?}");
//! # Ok(())
//! # }
//! ```

// One audited exception: loading machine code from the compile cache (compile_cache.rs).
#![deny(unsafe_code)]

pub mod abi;
pub mod app;
pub mod check_report;
pub mod control;
pub mod lifecycle;
pub mod logs;
pub mod private_dir;
pub mod runtime;
pub mod services;
pub mod terminal;

pub use wasmhost_types as types;
pub use wasmhost_types::payload;
/// The wasmtime wasmhost is built with, for embedders who add host interfaces of their own.
pub use wasmtime;
