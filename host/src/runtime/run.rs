//! The task that runs one process: a fresh store, an instance from the program's
//! `InstancePre`, the entry point called with the spawn arguments, and the exit reason
//! worked out from however that ended.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtx;

use super::Node;
use super::engine::EPOCH_TICK;
use super::exit::ExitReason;
use super::process::Process;
use super::programs::Program;
use super::state::ProcessState;
use super::stderr::StderrTail;

type EntryPoint = (Result<Vec<u8>, String>,);

pub(super) async fn run(
    node: Arc<Node>,
    program: Arc<Program>,
    process: Arc<Process>,
    args: Vec<Vec<u8>>,
) {
    let mut store = new_store(&node.engine, &node, &process);
    let reason = tokio::select! {
        // A kill wins over a guest that is still running: dropping the call future
        // unwinds the guest wherever it is (running wasm yields at every epoch).
        biased;
        reason = process.killed() => reason,
        reason = execute(&mut store, &program, args) => reason,
    };
    tracing::debug!(pid = %process.pid, entry = %process.entry, %reason, "process exited");
    node.exited(&process, reason);
    // The instance is torn down (its memory reset for the next spawn) only after the exit
    // is reported: monitors and links need not wait for it.
    drop(store);
}

/// A fresh store for one process: its WASI context (stderr kept for panic messages unless
/// it owns the terminal), its limits, and the epoch callback that preempts it. `engine` is
/// the node's, except in the benchmark that compares it with wasmtime's defaults.
pub fn new_store(engine: &Engine, node: &Arc<Node>, process: &Arc<Process>) -> Store<ProcessState> {
    let on_terminal = node.terminal.is_bound_to(process.pid.id);
    let mut wasi = WasiCtx::builder();
    let stderr = if on_terminal {
        wasi.inherit_stdout().inherit_stderr();
        None
    } else {
        let tail = StderrTail::default();
        wasi.stderr(tail.clone());
        Some(tail)
    };
    let state = ProcessState {
        node: node.clone(),
        me: process.clone(),
        wasi: wasi.build(),
        table: ResourceTable::new(),
        stderr,
        limit_broken: None,
        cpu_ticks: 0,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state);
    let cpu_ticks = process
        .limits
        .cpu
        .map(|cpu| (cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut store| {
        let state = store.data_mut();
        state.cpu_ticks += 1;
        if let Some(limit) = cpu_ticks
            && state.cpu_ticks > limit
        {
            let message = format!(
                "cpu: ran for more than {} ms",
                limit * EPOCH_TICK.as_millis() as u64
            );
            state.limit_broken = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Instantiates the program in `store` and calls its entry point with the spawn arguments.
async fn execute(
    store: &mut Store<ProcessState>,
    program: &Program,
    args: Vec<Vec<u8>>,
) -> ExitReason {
    let outcome = async {
        let instance = program.pre.instantiate_async(&mut *store).await?;
        let main =
            instance.get_typed_func::<(Vec<Vec<u8>>,), EntryPoint>(&mut *store, &program.method)?;
        let (result,) = main.call_async(&mut *store, (args,)).await?;
        Ok::<_, wasmtime::Error>(result)
    }
    .await;

    match outcome {
        Ok(Ok(value)) => ExitReason::Normal(value),
        Ok(Err(message)) => ExitReason::Error(message),
        Err(err) => failure(err, store.data_mut()),
    }
}

/// Names a failed call: a broken limit, a trap (with the panic message if there was
/// one), or an error from instantiation or the host.
fn failure(err: wasmtime::Error, state: &mut ProcessState) -> ExitReason {
    if let Some(message) = state.limit_broken.take() {
        return ExitReason::Limit(message);
    }
    if let Some(full) = err.downcast_ref::<PoolConcurrencyLimitError>() {
        return ExitReason::Limit(format!("processes: the node's pool is full ({full})"));
    }
    let panic = state.stderr.as_ref().and_then(StderrTail::panic_message);
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return ExitReason::Trap(match panic {
            Some(panic) => format!("panicked at {panic} ({trap})"),
            None => trap.to_string(),
        });
    }
    ExitReason::Trap(format!("{err:#}"))
}
