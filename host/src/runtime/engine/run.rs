//! The task that runs one process: a fresh store, an instance from the program's
//! `InstancePre`, the entry point called with the spawn arguments, and the exit reason
//! worked out from however that ended — a kill and a panic in the host included.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use wasmtime::component::ResourceTableError;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::I32Exit;

use super::not_granted::NotGranted;
use super::pool::Reserved;
use super::programs::Program;
use super::store::{ProcessState, component_handles, hostcall_fuel, new_store};
use crate::runtime::node::{Fault, Node};
use crate::runtime::process::{Charge, Process, bounded};
use wasmhost_types::ExitReason;

type EntryPoint = (Result<Vec<u8>, String>,);

pub(in crate::runtime) async fn run(
    node: Arc<Node>,
    program: Arc<Program>,
    process: Arc<Process>,
    args: Vec<Vec<u8>>,
    args_receipt: Charge,
    slot: Reserved,
) {
    let mut store = new_store(node.engine(), &node, &process);
    // Built and awaited in one expression: a future bound to a name and then awaited (or
    // moved into the awaited one) keeps a slot of its own in this task, and every live
    // process would hold its body twice (≈ 3 KiB; `docs/engine.md`, idle memory).
    report_exit(
        &node,
        &process,
        process.cpu().metered(async {
            tokio::select! {
                // A kill wins over a guest that is still running: dropping the call future
                // unwinds the guest wherever it is (running wasm yields at every epoch).
                biased;
                reason = process.killed() => reason,
                reason = execute(&mut store, &program, args, args_receipt) => reason,
            }
        }),
    )
    .await;
    // The instance is torn down (its memory reset for the next spawn) only after the exit
    // is reported: monitors and links need not wait for it. Its pool slot goes with it.
    drop(store);
    drop(slot);
}

/// Runs `body` to the process's exit reason and reports the exit. If the host panics while
/// running the process (a bug in a host interface, say), the exit is still reported, as
/// `trap: host panic: …`: a process never leaves its names, monitors, links or the terminal
/// behind.
pub(super) fn report_exit<'a>(
    node: &'a Node,
    process: &'a Process,
    body: impl Future<Output = ExitReason> + 'a,
) -> impl Future<Output = ()> + 'a {
    // Combinators, not an `async fn`: that would hold `body` twice, as its argument and
    // inside `catch_unwind`.
    AssertUnwindSafe(body).catch_unwind().map(move |outcome| {
        let reason = match outcome {
            Ok(reason) => reason,
            Err(panic) => ExitReason::Trap(format!("host panic: {}", panic_text(&*panic))),
        };
        tracing::debug!(pid = %process.pid(), entry = %process.entry(), %reason, "process exited");
        node.exited(process, reason);
    })
}

fn panic_text(panic: &(dyn Any + Send)) -> &str {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

/// Instantiates the program in `store` and calls its entry point with the spawn arguments,
/// which the parent pays for (`args_receipt`) until they are handed over.
async fn execute(
    store: &mut Store<ProcessState>,
    program: &Program,
    args: Vec<Vec<u8>>,
    args_receipt: Charge,
) -> ExitReason {
    let outcome = async {
        let instance = program.pre.instantiate_async(&mut *store).await?;
        let main =
            instance.get_typed_func::<(Vec<Vec<u8>>,), EntryPoint>(&mut *store, &program.method)?;
        // Copied into the guest's memory as the call starts, and dropped by it.
        drop(args_receipt);
        let (result,) = main.call_async(&mut *store, (args,)).await?;
        Ok::<_, wasmtime::Error>(result)
    }
    .await;

    let limits = store.data().limits();
    match outcome {
        Ok(Ok(value)) if value.len() as u64 > limits.message_size => ExitReason::Limit(format!(
            "exit value: {} bytes, over its message_size of {}",
            value.len(),
            limits.message_size
        )),
        Ok(Ok(value)) => ExitReason::Normal(value),
        Ok(Err(message)) => ExitReason::Error(bounded(message)),
        Err(err) => failure(err, store.data_mut()),
    }
}

/// Names a failed call: a broken limit, a trap (with the panic message if there was one),
/// or an error from instantiation or the host.
fn failure(err: wasmtime::Error, state: &mut ProcessState) -> ExitReason {
    if let Some(message) = state.take_limit_broken() {
        return ExitReason::Limit(message);
    }
    // `wasi:cli/exit`: success is a normal exit, with 0 as its value.
    if let Some(I32Exit(code)) = err.downcast_ref::<I32Exit>() {
        return match code {
            0 => ExitReason::Normal(wasmhost_types::payload::encode(&0)),
            code => ExitReason::Error(format!("exited with code {code}")),
        };
    }
    if let Some(ResourceTableError::Full) = err.downcast_ref::<ResourceTableError>() {
        return ExitReason::Limit(format!(
            "handles: holds {} handles, its limit",
            state.limits().handles
        ));
    }
    // Spawns reserve their pool slot, so only a component with more memories or tables than
    // a slot holds gets here.
    if let Some(full) = err.downcast_ref::<PoolConcurrencyLimitError>() {
        return ExitReason::Limit(format!("processes: the node's pool is full ({full})"));
    }
    if let Some(denied) = err.downcast_ref::<NotGranted>() {
        return ExitReason::Trap(bounded(denied.to_string()));
    }
    if let Some(fault) = err.downcast_ref::<Fault>() {
        return ExitReason::Trap(bounded(fault.to_string()));
    }
    // wasmtime's types for these are private; their messages are what they have.
    let text = format!("{err:#}");
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return ExitReason::Limit(format!(
            "message_size: it handed the host more than {} bytes at once (its message_size \
             and 1 MiB), in one call or its exit value",
            hostcall_fuel(state.limits())
        ));
    }
    if text.contains("store handle limit exceeded") {
        return ExitReason::Limit(format!(
            "handles: more than {} handles at once, held or lent to a call (twice its \
             handles limit, and 1024)",
            component_handles(state.limits())
        ));
    }
    let panic = state.panic_message();
    if let Some(trap) = err.downcast_ref::<Trap>() {
        return ExitReason::Trap(bounded(match panic {
            Some(panic) => format!("panicked at {panic} ({trap})"),
            None => trap.to_string(),
        }));
    }
    ExitReason::Trap(bounded(format!("{err:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::App;
    use crate::runtime::Event;
    use crate::runtime::node::test_process;

    #[tokio::test]
    async fn a_host_panic_while_running_a_process_still_reports_its_exit() {
        let node = Node::builder(App::default()).build().expect("a node");
        // The parent monitors its child, so it hears the whole reason.
        let watcher = test_process(&node, None);
        let process = test_process(&node, Some(&watcher));
        node.register(&process, "holder").await.expect("registered");
        node.monitor(&watcher, process.pid());
        let (tx, exit) = tokio::sync::oneshot::channel();
        process.on_exit(tx);

        let task = {
            let (node, process) = (node.clone(), process.clone());
            tokio::spawn(async move {
                report_exit(&node, &process, async {
                    panic!("a bug in a host interface")
                })
                .await
            })
        };
        task.await.expect("the task itself does not fail");

        let reason = ExitReason::Trap("host panic: a bug in a host interface".into());
        assert_eq!(exit.await.expect("reported"), reason);
        assert_eq!(
            reason.to_string(),
            "trap: host panic: a bug in a host interface"
        );
        assert!(!node.is_alive(process.pid()), "it left the process table");
        assert_eq!(node.lookup("holder"), None, "its name is free");
        assert_eq!(
            watcher.events().pop().map(|e| e.into_inner()),
            Some(Event::Exit {
                from: process.pid().clone(),
                reason
            }),
            "its monitor heard"
        );
    }
}
