//! wasmhost: Erlang's process model for WebAssembly components.
//!
//! Data flows one way: [`app`] loads and validates the registry, [`runtime`] compiles the
//! components and runs processes, [`abi`] is what processes can call (one module per WIT
//! interface), [`services`] supervises the registry's services, [`terminal`] binds a
//! process to the terminal. The `wasmhost` binary wires them up.

pub mod abi;
pub mod app;
pub mod payload;
pub mod runtime;
pub mod services;
pub mod terminal;
