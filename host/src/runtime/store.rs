//! The data of a process's store, and the view host interfaces get of it.
//!
//! As in wasmtime-wasi, a host interface does not see the store's type: its `add_to_linker`
//! takes any `T: ProcessView`, and its functions work on a [`ProcessCtxView`] — the calling
//! process ([`ProcessCtx`]) and its resource table. Everything else here (WASI, the limiter,
//! CPU accounting) is the runtime's own.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::ctx::ProcessCtx;
use super::node::Node;
use super::process::Process;
use super::stderr::StderrTail;

/// What host interfaces see of a process's store.
pub trait ProcessView: Send {
    fn process(&mut self) -> ProcessCtxView<'_>;
}

/// The calling process and its resource table (handles to its timers, mailbox, …).
pub struct ProcessCtxView<'a> {
    pub ctx: &'a ProcessCtx,
    pub table: &'a mut ResourceTable,
}

/// A process's store data.
pub struct ProcessState {
    ctx: ProcessCtx,
    wasi: WasiCtx,
    table: ResourceTable,
    /// The guest's stderr (outside the terminal), kept to explain a panic.
    stderr: Option<StderrTail>,
    /// Set when the process broke a limit; the trap that follows is reported as this.
    limit_broken: Option<String>,
    /// Epoch ticks the process has run for, against its cpu limit.
    cpu_ticks: u64,
}

impl ProcessState {
    /// The limit the process broke, if that is why its call failed.
    pub(super) fn take_limit_broken(&mut self) -> Option<String> {
        self.limit_broken.take()
    }

    /// Where and why a Rust guest panicked, from its stderr.
    pub(super) fn panic_message(&self) -> Option<String> {
        self.stderr.as_ref().and_then(StderrTail::panic_message)
    }
}

impl ProcessView for ProcessState {
    fn process(&mut self) -> ProcessCtxView<'_> {
        ProcessCtxView {
            ctx: &self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiView for ProcessState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the process's memory limit and records why growth was refused.
impl ResourceLimiter for ProcessState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.ctx.process().limits().memory;
        if desired as u64 > limit {
            let message = format!(
                "memory: growing linear memory from {current} to {desired} bytes exceeds the limit of {limit} bytes"
            );
            self.limit_broken = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// A fresh store for one process: its WASI context (stderr kept for panic messages unless
/// it owns the terminal), its limits, and the epoch callback that preempts it. `engine` is
/// the node's, except in the benchmark that compares it with wasmtime's defaults.
pub fn new_store(engine: &Engine, node: &Arc<Node>, process: &Arc<Process>) -> Store<ProcessState> {
    let ctx = ProcessCtx::new(node.clone(), process.clone());
    let mut wasi = WasiCtx::builder();
    let stderr = if ctx.terminal().is_some() {
        wasi.inherit_stdout().inherit_stderr();
        None
    } else {
        let tail = StderrTail::default();
        wasi.stderr(tail.clone());
        Some(tail)
    };
    let state = ProcessState {
        ctx,
        wasi: wasi.build(),
        table: ResourceTable::new(),
        stderr,
        limit_broken: None,
        cpu_ticks: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state);
    let tick = node.config().epoch_tick;
    let cpu_ticks = process.limits().cpu.map(|cpu| ticks(cpu, tick));
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut store| {
        let state = store.data_mut();
        state.cpu_ticks += 1;
        if let Some(limit) = cpu_ticks
            && state.cpu_ticks > limit
        {
            let ran = tick.saturating_mul(limit as u32);
            let message = format!("cpu: ran for more than {} ms", ran.as_millis());
            state.limit_broken = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// How many epoch ticks make `budget` (at least one).
fn ticks(budget: Duration, tick: Duration) -> u64 {
    ((budget.as_nanos() / tick.as_nanos().max(1)) as u64).max(1)
}
