//! The wasmtime engine, configured for many short-lived processes (docs/engine.md has the
//! measurements behind each setting): a pooling allocator that keeps a small window of each
//! memory resident (no syscalls per spawn), component-model concurrency off (it triples the
//! cost of a call), and epoch interruption so a spinning guest yields to the others.

use anyhow::Result;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::config::NodeConfig;

/// A process's share of the pool on average: core instances, linear memories and tables.
/// The pool holds `max_processes` times these.
pub const CORE_INSTANCES: u32 = 4;
pub const MEMORIES: u32 = 2;
pub const TABLES: u32 = 4;
/// The most one component may take: a Rust component holds its module and a few shims, a
/// Python one (componentize-py: CPython, its libraries and adapters linked together) 14 core
/// instances. A component that needs more is refused when it is compiled; one that takes
/// more than the average leaves fewer slots for the others, so a pool of Python processes
/// holds fewer than `max_processes` (a spawn past it is refused with `limit`).
pub const MAX_CORE_INSTANCES: u32 = 32;
pub const MAX_MEMORIES: u32 = 4;
pub const MAX_TABLES: u32 = 32;

pub fn engine(config: &NodeConfig) -> Result<Engine> {
    let n = config.max_processes;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .max_core_instances_per_component(MAX_CORE_INSTANCES)
        .max_memories_per_component(MAX_MEMORIES)
        .max_tables_per_component(MAX_TABLES)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES))
        .total_memories(n.saturating_mul(MEMORIES))
        .total_tables(n.saturating_mul(TABLES))
        .total_stacks(n)
        .max_memory_size(config.max_memory as usize)
        // Spawning reuses a slot; pages inside this window are reset in place instead of
        // being unmapped and faulted in again.
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto)
        // With `zero_stacks`, a fiber stack is zeroed when its process gives it back
        // (below): the top of it with a memset, the rest given back to the system. A memset
        // makes what it clears resident, so more kept means more memory held by every free
        // stack.
        .async_stack_keep_resident(16 << 10);

    let mut wasm = Config::new();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_reservation(config.max_memory)
        .concurrency_support(false)
        .epoch_interruption(true)
        // 64-bit memories and tables are a proposal no guest toolchain here needs, and a
        // 64-bit table's growth can overflow in ways 32-bit ones cannot (`store.rs`, the
        // limiter): off, so a component that uses them is refused when it is compiled.
        .wasm_memory64(false)
        .max_wasm_stack(512 << 10)
        .async_stack_size(1 << 20)
        // The next process on a pooled stack finds zeros, not its predecessor's frames, if
        // the node asks: defense in depth against a compiler bug (wasm cannot address this
        // stack). Measured: about 9 % of an echo's CPU (docs/engine.md), so off by default.
        .async_stack_zeroing(config.zero_stacks);
    // `WASMHOST_PERFMAP=1` names guest functions for `perf` (docs/engine.md, profiling).
    if std::env::var_os("WASMHOST_PERFMAP").is_some_and(|v| v == "1") {
        wasm.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&wasm)?;
    start_epoch_ticker(&engine, config.epoch_tick);
    Ok(engine)
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
fn start_epoch_ticker(engine: &Engine, tick: std::time::Duration) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmhost-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(tick);
            }
        })
        .ok();
}
