//! wasmhost: Erlang's process model for WebAssembly components, as a library and the
//! `wasmhost` binary.
//!
//! Data flows one way: [`app`] loads and validates the registry; [`runtime`] builds a
//! [`Node`](runtime::Node) from it (a configuration, the compiled components, a table of
//! host interfaces) and runs processes; [`abi`] is the standard table of host interfaces
//! (one module per WIT interface); [`services`] supervises the registry's services and
//! supervisors; [`terminal`] binds a process to the terminal; [`control`] answers
//! `wasmhost ps` on a local socket. The binary only wires them up:
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use wasmhost::app::{self, AppRoot};
//! use wasmhost::runtime::{Node, NodeConfig};
//! use wasmhost::services::Services;
//!
//! let root = AppRoot::locate(None)?;
//! let app = app::load(&root)?;
//! let node = Node::builder(app)
//!     .config(NodeConfig::default().with_settings(&root.node))
//!     .interfaces(wasmhost::abi::INTERFACES)
//!     .build()?;
//! let services = Services::start(&node);
//! // ... spawn processes with `node.spawn(SpawnOptions::new(entry, host))` ...
//! services.stop().await;
//! # Ok(())
//! # }
//! ```

// One audited exception: loading machine code from the compile cache (compile_cache.rs).
#![deny(unsafe_code)]

pub mod abi;
pub mod app;
pub mod control;
pub mod logs;
mod private_dir;
pub mod runtime;
pub mod services;
pub mod terminal;

pub use wasmhost_types as types;
pub use wasmhost_types::payload;
/// The wasmtime wasmhost is built with, for embedders who add host interfaces of their own.
pub use wasmtime;
