//! The data of a process's store, and the view host interfaces get of it.
//!
//! As in wasmtime-wasi, a host interface does not see the store's type: its `add_to_linker`
//! takes any `T: ProcessView`, and its functions work on a [`ProcessCtxView`] — the calling
//! process ([`ProcessCtx`]) and its resource table. Everything else here is the runtime's
//! own: WASI (which gives nothing by default), the limiter (all memories and tables of a
//! process against its `memory`, and all processes against the node's budget), the handle
//! bound, and CPU accounting (`cpu`, `cpu_rate`) in the epoch callback.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::extensions::ProcessExtensions;
use super::stderr::StderrTail;
use crate::app::Limits;
use crate::app::values::show_size;
use crate::runtime::node::{Node, ProcessCtx, Trial};
use crate::runtime::process::{Charge, Hibernation, Process, Throttle};

/// What host interfaces see of a process's store.
pub trait ProcessView: Send {
    fn process(&mut self) -> ProcessCtxView<'_>;
}

/// The calling process and its resource table (handles to its timers, mailbox, …).
pub struct ProcessCtxView<'a> {
    pub ctx: &'a mut ProcessCtx,
    pub table: &'a mut ResourceTable,
}

/// A process's store data.
pub struct ProcessState {
    ctx: ProcessCtx,
    wasi: WasiCtx,
    table: ResourceTable,
    /// The guest's stderr (outside the terminal), kept to explain a panic.
    stderr: Option<StderrTail>,
    /// The state an embedder's host interfaces keep for this process (`extensions.rs`).
    extensions: ProcessExtensions,
}

impl ProcessState {
    /// The node's state of type `T`, set with `NodeBuilder::state`: for an embedder's host
    /// interface, what its processes share (`tests/it/embedding.rs` shows one).
    pub fn node_state<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.ctx.node().state::<T>()
    }

    /// This process's state of type `T`, made with `T::default()` at its first use and
    /// dropped with the process: for an embedder's host interface, what it keeps per process.
    pub fn process_state<T: std::any::Any + Send + Default>(&mut self) -> &mut T {
        self.extensions.get_or_default()
    }

    /// The state `hibernate` ended this instance with, if it did.
    pub(in crate::runtime) fn take_hibernation(&mut self) -> Option<Hibernation> {
        self.ctx.take_hibernation()
    }

    /// Makes this store's instance the one that wakes its process from `hibernation`.
    pub(in crate::runtime) fn resume(&mut self, hibernation: Hibernation) {
        self.ctx.resume(hibernation);
    }

    /// Makes this store's instance the trial of an upgrade (`ProcessCtx::start_trial`).
    pub(in crate::runtime) fn start_trial(&mut self, trial: Trial) {
        self.ctx.start_trial(trial);
    }

    /// The trial this instance still is, with the state it woke with (`ProcessCtx::take_trial`).
    pub(in crate::runtime) fn take_trial(&mut self) -> Option<(Box<Trial>, Hibernation)> {
        self.ctx.take_trial()
    }

    /// The limit the process broke, if that is why its call failed.
    pub(in crate::runtime) fn take_limit_broken(&mut self) -> Option<String> {
        self.ctx.take_limit_broken()
    }

    pub(in crate::runtime) fn limits(&self) -> &Limits {
        self.ctx.process().limits()
    }

    /// Ends the process with `limit: {message}`: the error to return from the host call. An
    /// embedder's interface with a bound of its own reports it so, as the node's limits are
    /// (`message` names the limit first, e.g. `"lines: 3 lines, its limit"`).
    pub fn break_limit(&mut self, message: String) -> wasmtime::Error {
        self.ctx.break_limit(message)
    }

    /// Charges `bytes` an interface keeps for this process to its `host_memory` and the
    /// node's budget, until the receipt is dropped; past them, the process ends with `limit`
    /// (return the error).
    pub fn hold(&mut self, bytes: u64) -> wasmtime::Result<Charge> {
        self.ctx.hold(bytes)
    }

    /// Its resource table, which WASI's handles share with the host interfaces'.
    pub(super) fn table_mut(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Where and why a Rust guest panicked, from its stderr.
    pub(super) fn panic_message(&self) -> Option<String> {
        self.stderr.as_ref().and_then(StderrTail::panic_message)
    }
}

/// Calls into the host interfaces (each gets its view here), counted only in the fuzz
/// targets' builds (`--cfg fuzzing`), where the host-call fuzzer reports how many it made.
#[cfg(fuzzing)]
pub static HOST_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ProcessView for ProcessState {
    fn process(&mut self) -> ProcessCtxView<'_> {
        #[cfg(fuzzing)]
        HOST_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ProcessCtxView {
            ctx: &mut self.ctx,
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

impl ProcessState {
    /// Charges `bytes` more of memory or tables, within the process's `memory` limit and the
    /// node's budget; records why if it cannot.
    fn grow(&mut self, bytes: u64, what: impl FnOnce(u64) -> String) -> wasmtime::Result<bool> {
        let limit = self.ctx.process().limits().memory;
        let total = self.ctx.process().memory().saturating_add(bytes);
        let message = if total > limit {
            what(limit)
        } else if !self.ctx.node().charge_memory(bytes) {
            let budget = self.ctx.node().config().memory_budget();
            format!(
                "memory: the node's memory budget of {} is used up",
                show_size(budget)
            )
        } else {
            self.ctx.process().set_memory(total);
            return Ok(true);
        };
        Err(self.ctx.break_limit(message))
    }
}

/// Each process's memories and tables together are held to its `memory` limit.
///
/// A growth this allows stays charged until the process ends, even if the engine then fails
/// it (beyond a memory's declared maximum, say): wasmtime also reports failures no growth
/// was asked for (a size that overflows, a memory type's bound), and a refund keyed to "the
/// last growth allowed" would hand back a growth that succeeded — a guest could then grow
/// past its limit one refunded step at a time. Never refunding cannot be fooled; it costs
/// only a guest that asks for what it cannot have, and only up to its own limit.
impl ResourceLimiter for ProcessState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let bytes = desired.saturating_sub(current) as u64;
        self.grow(bytes, |limit| {
            format!(
                "memory: growing linear memory from {current} to {desired} bytes exceeds the limit of {limit} bytes"
            )
        })
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A table element is a pointer's worth of host memory.
        let bytes = (desired.saturating_sub(current) * size_of::<usize>()) as u64;
        self.grow(bytes, |limit| {
            format!(
                "memory: growing a table from {current} to {desired} elements exceeds the limit of {limit} bytes"
            )
        })
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl Drop for ProcessState {
    fn drop(&mut self) {
        // A hibernating process's next instance starts from nothing.
        let process = self.ctx.process();
        self.ctx.node().release_memory(process.memory());
        process.set_memory(0);
    }
}

/// The hostcall fuel of a process with `limits`: its `message_size` and 1 MiB more.
pub fn hostcall_fuel(limits: &Limits) -> usize {
    usize::try_from(limits.message_size.saturating_add(HOSTCALL_SLACK)).unwrap_or(usize::MAX)
}

/// What one host call may copy beyond a process's `message_size`: a topic, names, the
/// bookkeeping of the lists it passes.
pub const HOSTCALL_SLACK: u64 = 1 << 20;

/// The component-model handles a process may have at once (those it holds, and borrows
/// lent to a call: a `poll` over many pollables lends each): twice its `handles` and 1024.
pub fn component_handles(limits: &Limits) -> usize {
    usize::try_from(limits.handles.saturating_mul(2).saturating_add(1024)).unwrap_or(usize::MAX)
}

/// A fresh store for one process: its WASI context (stderr kept for panic messages unless
/// it owns the terminal), its limits, and the epoch callback that preempts it. `engine` is
/// the node's, except in the benchmark that compares it with wasmtime's defaults.
pub fn new_store(engine: &Engine, node: &Arc<Node>, process: &Arc<Process>) -> Store<ProcessState> {
    let ctx = ProcessCtx::new(node.clone(), process.clone());
    let mut wasi = WasiCtx::builder();
    // Deny by default, and say so: no preopened files, no environment, no sockets.
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    let stderr = if ctx.terminal().is_some() {
        wasi.inherit_stdout().inherit_stderr();
        None
    } else {
        let tail = StderrTail::default();
        wasi.stderr(tail.clone());
        Some(tail)
    };
    let mut table = ResourceTable::new();
    table.set_max_capacity(process.limits().handles as usize);
    let state = ProcessState {
        ctx,
        wasi: wasi.build(),
        table,
        stderr,
        extensions: ProcessExtensions::default(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state);
    // The most one host call may copy out of the guest (strings and lists, counted by the
    // host's size of each), so no call makes the host allocate more than this for it:
    // a message or an exit value of its `message_size`, with room for a topic and the rest.
    store.set_hostcall_fuel(hostcall_fuel(process.limits()));
    store.set_max_component_handles(component_handles(process.limits()));
    let meter = process.cpu().clone();
    let budget = process.limits().cpu;
    let mut throttle = process.limits().cpu_rate.map(Throttle::new);
    store.set_epoch_deadline(1);
    // At every epoch tick a running guest comes here: it is ended if it has used its
    // `cpu`, paused if it is ahead of its `cpu_rate`, and otherwise yields to the others —
    // once it has had a tick of its own: a woken process meets the deadline that passed
    // while it waited at once, and sending it back behind every spinning process before it
    // has run at all would make a saturated node's answers wait a round of them per hop.
    store.epoch_deadline_callback(move |mut store| {
        let woken = meter.before_first_tick();
        let used = meter.tick();
        if let Some(budget) = budget
            && used > budget
        {
            let message = format!("cpu: ran for more than {} ms", budget.as_millis());
            return Err(store.data_mut().ctx.break_limit(message));
        }
        if let Some(pause) = throttle
            .as_mut()
            .and_then(|t| t.pause(used, Instant::now()))
        {
            return Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::time::sleep(pause)),
            ));
        }
        if woken {
            return Ok(UpdateDeadline::Continue(1));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::runtime::node::test_process;

    /// Every order of wasmtime's callbacks: a failure after an allowed growth, a failure
    /// without one (an overflowing table), and growths that succeed.
    #[tokio::test]
    async fn no_order_of_the_limiters_callbacks_gives_back_a_growth() {
        let node = Node::builder(App::default()).build().expect("a node");
        let process = test_process(&node, None);
        let mut store = new_store(node.engine(), &node, &process);
        let state = store.data_mut();
        let page: u64 = 64 << 10;
        assert!(state.memory_growing(0, 64 << 10, None).expect("allowed"));
        // Failed without being asked first (wasmtime does so for a table size that
        // overflows): nothing is given back.
        state
            .table_grow_failed(wasmtime::Error::msg("overflow"))
            .expect("ok");
        state
            .memory_grow_failed(wasmtime::Error::msg("overflow"))
            .expect("ok");
        assert_eq!(process.memory(), page);
        // Allowed, then failed by the engine: it stays charged until the process ends.
        assert!(state.table_growing(0, 10, None).expect("allowed"));
        state
            .table_grow_failed(wasmtime::Error::msg("maximum"))
            .expect("ok");
        assert_eq!(process.memory(), page + 10 * size_of::<usize>() as u64);
        assert_eq!(node.memory_used(), process.memory());
        drop(store);
        assert_eq!(node.memory_used(), 0, "given back when the store goes");
    }
}
