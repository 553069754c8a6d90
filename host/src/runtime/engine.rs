//! The wasmtime engine, configured from the measurements in FACTS.md: a pooling allocator
//! that keeps a small window of each memory resident (no syscalls per spawn), component
//! model concurrency off (it triples the cost of a call), and epoch interruption so a
//! spinning guest yields to the others.

use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the longest a guest runs before it yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sizes of the engine's process pool.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Processes that can be alive at once.
    pub max_processes: u32,
    /// The largest linear memory any process may have; entries may set less.
    pub max_memory: u64,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_processes: 10_000,
            max_memory: 64 << 20,
        }
    }
}

pub fn engine(limits: &EngineLimits) -> Result<Engine> {
    let n = limits.max_processes;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // A Rust component holds its module plus a few small shim modules.
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(limits.max_memory as usize)
        // Spawning reuses a slot; pages inside this window are reset in place instead of
        // being unmapped and faulted in again.
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_reservation(limits.max_memory)
        .concurrency_support(false)
        .epoch_interruption(true)
        .max_wasm_stack(512 << 10)
        .async_stack_size(1 << 20);
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances the engine's epoch every `EPOCH_TICK` until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmhost-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .ok();
}
