//! The task that runs one process: a fresh store, an instance from the program's
//! `InstancePre`, the entry point called with the spawn arguments, and the exit reason
//! worked out from however that ended — a kill and a panic in the host included.
//!
//! A process outlives its instance when it hibernates: the store and the pool slot go, and
//! so does the task (`hibernated.rs` keeps the state); a message, an event, its wake-up
//! time or a kill starts another, which takes a place in the pool again and makes a new
//! instance, whose entry point is called with no arguments and finds the state in
//! `process.resumed`.
//!
//! An upgrade (`signals/upgrade.rs`) asks a process to hibernate; its state then goes to an
//! instance of the new program at once, the upgrade's *trial*: if that instance fails before
//! it first receives, the process goes back to the old program with the same state.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Poll, Waker};

use futures::FutureExt;
use wasmtime::component::ResourceTableError;
use wasmtime::{PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::I32Exit;

use super::hibernated;
use super::not_granted::NotGranted;
use super::pool::Reserved;
use super::programs::Program;
use super::store::{ProcessState, component_handles, hostcall_fuel, new_store};
use crate::runtime::node::{Fault, Node, Step, Trial};
use crate::runtime::process::{Charge, Hibernating, Hibernation, Process, bounded};
use wasmhost_types::ExitReason;

type EntryPoint = (Result<Vec<u8>, String>,);

/// How an instance starts.
enum Start {
    /// Spawned: its arguments, paid for by the parent until they are handed over.
    Spawned(Vec<Vec<u8>>, Charge),
    /// Woken from hibernation with its state.
    Woken(Hibernation),
}

/// How an instance ended.
enum Outcome {
    Exit(ExitReason),
    Hibernate(Hibernation),
    /// Killed from outside: never a failed trial.
    Killed(ExitReason),
}

/// What the runner does after an instance.
enum Then {
    /// The process ended (its exit is reported).
    Ended,
    /// It hibernated with this state.
    Hibernate(Hibernation),
    /// It was an upgrade's trial and failed before it received: it goes back to `old`.
    GoBack(Arc<Program>, Hibernation),
}

pub(in crate::runtime) async fn run(
    node: Arc<Node>,
    program: Arc<Program>,
    process: Arc<Process>,
    args: Vec<Vec<u8>>,
    args_receipt: Charge,
    slot: Reserved,
) {
    let start = Start::Spawned(args, args_receipt);
    run_from(node, program, process, start, slot, None).await;
}

/// The task of a hibernated process that woke (`hibernated.rs`): it takes a place in the
/// pool (a kill meanwhile ends it) and runs a new instance with the state.
pub(super) async fn woken(
    node: Arc<Node>,
    program: Arc<Program>,
    process: Arc<Process>,
    hibernation: Hibernation,
) {
    process.forget_wakers();
    // Woken into an upgrade's new program while it is under way: on trial, as a hand-over is.
    let trial = node.upgrades.trial_on_waking(&program);
    match place(&node, &program, &process).await {
        Ok(slot) => {
            run_from(
                node,
                program,
                process,
                Start::Woken(hibernation),
                slot,
                trial,
            )
            .await
        }
        Err(reason) => report(&node, &process, reason),
    }
}

/// The program a process of `program`'s entry wakes into: its entry's program now, which an
/// upgrade may have replaced.
fn current(node: &Node, program: &Arc<Program>) -> Arc<Program> {
    node.program(&program.id).unwrap_or_else(|| program.clone())
}

/// Runs instances of the process from `start` until it exits, or hibernates with nothing
/// waiting for it: then the task ends, and a wake-up starts another (`hibernated.rs`).
async fn run_from(
    node: Arc<Node>,
    program: Arc<Program>,
    process: Arc<Process>,
    mut start: Start,
    mut slot: Reserved,
    mut trial: Option<Trial>,
) {
    let mut program = program;
    loop {
        // Boxed: the task holds only this loop, not the space of a call into the guest
        // (`docs/engine.md`, idle memory).
        let instance = Box::pin(run_instance(&node, &program, &process, start, slot, trial));
        let hibernation;
        (hibernation, trial) = match instance.await {
            Then::Ended => return,
            Then::GoBack(old, hibernation) => {
                program = old;
                (hibernation, None)
            }
            Then::Hibernate(hibernation) => match node.upgrades.take(process.pid().id) {
                // Asked to hand over to a new program: its instance is made at once.
                Some(pending) => {
                    let _ = pending.steps.send(Step::HandedOver);
                    let old = std::mem::replace(&mut program, pending.program);
                    let steps = pending.steps;
                    (hibernation, Some(Trial { old, steps }))
                }
                None => {
                    let Some(hibernation) = hibernated::sleep(&node, &process, hibernation) else {
                        return;
                    };
                    // Something was waiting for it already: it wakes at once, in this task.
                    process.forget_wakers();
                    program = current(&node, &program);
                    (hibernation, node.upgrades.trial_on_waking(&program))
                }
            },
        };
        match place(&node, &program, &process).await {
            Ok(place) => (start, slot) = (Start::Woken(hibernation), place),
            Err(reason) => return report(&node, &process, reason),
        }
    }
}

/// A place in the pool for a process that wakes: at once if one is free, else once one is
/// given back. `Err` with the reason if it is killed first.
async fn place(node: &Node, program: &Program, process: &Process) -> Result<Reserved, ExitReason> {
    if let Poll::Ready(reason) = process.poll_killed(Waker::noop()) {
        return Err(reason);
    }
    // As at its spawn: a process another spawned leaves the places kept for the node's own.
    let kept = match process.has_parent() {
        true => node.config().reserved(),
        false => 0,
    };
    let slot = match node.table.reserve(program.share, kept) {
        Ok(slot) => slot,
        // Boxed: rare, and larger than the rest of the task.
        Err(_) => {
            Box::pin(async {
                tokio::select! {
                    biased;
                    reason = process.killed() => Err(reason),
                    slot = node.table.reserve_waiting(program.share, kept) => Ok(slot),
                }
            })
            .await?
        }
    };
    process.set_hibernated(None);
    Ok(slot)
}

/// Runs one instance of the process to its exit (reported here), to its hibernation (the
/// state), or, if it is an upgrade's `trial`, to a failure before it received (the program
/// to go back to, and the state). Its store and pool slot are gone when this returns.
async fn run_instance(
    node: &Arc<Node>,
    program: &Program,
    process: &Arc<Process>,
    start: Start,
    slot: Reserved,
    trial: Option<Trial>,
) -> Then {
    let mut store = new_store(node.engine(), node, process);
    if let Some(trial) = trial {
        store.data_mut().start_trial(trial);
    }
    // Built and awaited in one expression: a future bound to a name and then awaited (or
    // moved into the awaited one) keeps a slot of its own in this task, and every live
    // process would hold its body twice (≈ 3 KiB; `docs/engine.md`, idle memory).
    let outcome = guarded(process.cpu().metered(async {
        tokio::select! {
            // A kill wins over a guest that is still running: dropping the call future
            // unwinds the guest wherever it is (running wasm yields at every epoch).
            biased;
            reason = process.killed() => Outcome::Killed(reason),
            outcome = execute(&mut store, program, start) => outcome,
        }
    }))
    .await;
    let trial = store.data_mut().take_trial();
    match (outcome, trial) {
        (Outcome::Exit(reason), Some((trial, resumed))) if !reason.is_normal() => {
            tracing::warn!(pid = %process.pid(), entry = %process.entry(), %reason,
                "the upgraded instance failed before it received; back to the old component");
            let _ = trial
                .steps
                .send(Step::Failed(process.pid().clone(), reason));
            drop(store);
            drop(slot);
            Then::GoBack(trial.old, resumed)
        }
        (Outcome::Exit(reason) | Outcome::Killed(reason), trial) => {
            // A trial that ends otherwise has not failed.
            if let Some((trial, _)) = trial {
                let _ = trial.steps.send(Step::Receiving);
            }
            report(node, process, reason);
            // The instance is torn down (its memory reset for the next spawn) only after
            // the exit is reported: monitors and links need not wait for it. Its pool slot
            // goes with it.
            drop(store);
            drop(slot);
            Then::Ended
        }
        (Outcome::Hibernate(hibernation), trial) => {
            if let Some((trial, _)) = trial {
                let _ = trial.steps.send(Step::Receiving);
            }
            drop(store);
            drop(slot);
            Then::Hibernate(hibernation)
        }
    }
}

/// `body`, with a panic in the host while it runs (a bug in a host interface, say) made the
/// process's exit, `trap: host panic: …`: a process never leaves its names, monitors, links
/// or the terminal behind.
fn guarded<'a>(body: impl Future<Output = Outcome> + 'a) -> impl Future<Output = Outcome> + 'a {
    // Combinators, not an `async fn`: that would hold `body` twice, as its argument and
    // inside `catch_unwind`.
    AssertUnwindSafe(body)
        .catch_unwind()
        .map(|outcome| match outcome {
            Ok(outcome) => outcome,
            Err(panic) => Outcome::Exit(ExitReason::Trap(format!(
                "host panic: {}",
                panic_text(&*panic)
            ))),
        })
}

fn report(node: &Node, process: &Process, reason: ExitReason) {
    tracing::debug!(pid = %process.pid(), entry = %process.entry(), %reason, "process exited");
    node.exited(process, reason);
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

/// Instantiates the program in `store` and calls its entry point: with the spawn arguments,
/// which the parent pays for until they are handed over, or with none when it wakes from
/// hibernation (its state is in the store).
async fn execute(store: &mut Store<ProcessState>, program: &Program, start: Start) -> Outcome {
    let (args, args_receipt) = match start {
        Start::Spawned(args, receipt) => (args, Some(receipt)),
        Start::Woken(hibernation) => {
            store.data_mut().resume(hibernation);
            (Vec::new(), None)
        }
    };
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
    Outcome::Exit(match outcome {
        Ok(Ok(value)) if value.len() as u64 > limits.message_size => ExitReason::Limit(format!(
            "exit value: {} bytes, over its message_size of {}",
            value.len(),
            limits.message_size
        )),
        Ok(Ok(value)) => ExitReason::Normal(value),
        Ok(Err(message)) => ExitReason::Error(bounded(message)),
        Err(err) if err.is::<Hibernating>() => match store.data_mut().take_hibernation() {
            Some(hibernation) => return Outcome::Hibernate(hibernation),
            None => ExitReason::Trap("hibernating without a state".into()),
        },
        Err(err) => failure(err, store.data_mut()),
    })
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
                let outcome = guarded(async { panic!("a bug in a host interface") }).await;
                let Outcome::Exit(reason) = outcome else {
                    panic!("not an exit")
                };
                report(&node, &process, reason);
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
