//! The end-to-end tests, one binary: wasmtime is linked once, the guests are built once, and
//! the fixtures every test needs live in `common`. Each module is one area; its first lines
//! say what it checks.

mod common;
// The benchmarks' own code, which `bench_suite` runs once with tiny counts.
#[path = "../../host/benches/languages/measure.rs"]
mod measure;
#[path = "../../host/benches/suite/scenarios.rs"]
mod scenarios;

mod architecture;
mod bench_suite;
mod cluster;
mod echo;
mod embedding;
mod hibernation;
mod hostile;
mod init;
mod languages;
mod logs;
mod node;
mod properties;
mod ps;
mod registry;
mod runtime;
mod services;
mod supervisors;
mod upgrade;
