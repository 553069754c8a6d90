//! WASI 0.2 as processes get it: wasmtime-wasi's implementation, sandboxed by the store
//! (nothing granted: no files, network or environment; `store.rs`), with one change:
//! `wasi:io/poll#poll` refuses a list longer than the process's `handles` limit. A list
//! that long can only repeat pollables, and the host's work for a poll, before it can wait,
//! grows with the list: a guest could otherwise keep a thread busy for a second with one
//! call that never yields.

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll::Host as _;

use super::store::ProcessState;

/// The interface the bounded `poll` takes the place of.
const POLL: &str = "wasi:io/poll@0.2.12";

/// Links WASI for a process, with the bounded `poll`.
pub fn add_to_linker(linker: &mut Linker<ProcessState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    linker.allow_shadowing(true);
    linker.instance(POLL)?.func_wrap_async(
        "poll",
        |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let most = state.limits().handles;
                if pollables.len() as u64 > most {
                    let message = format!(
                        "handles: a poll over {} pollables, more than its handles limit of {most}",
                        pollables.len()
                    );
                    return Err(state.break_limit(message));
                }
                Ok((state.table_mut().poll(pollables).await?,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
