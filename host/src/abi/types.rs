//! `wasmhost:abi/types`: the shared types, and their conversions to and from the runtime's.

use wasmtime::component::Linker;

use super::HasProcess;
use super::bindings::types::{self as wit, Exit};
use crate::runtime::{Event, ExitReason, Pid, ProcessCtxView, ProcessView};

/// The interface has no functions; linking it makes its types available to the others.
pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

impl wit::Host for ProcessCtxView<'_> {}

pub fn pid_to_wit(pid: &Pid) -> wit::Pid {
    wit::Pid {
        node: pid.node.as_ref().map(|node| wit::NodeId {
            name: node.name.to_string(),
            incarnation: node.incarnation,
        }),
        host: pid.host.to_string(),
        id: pid.id,
    }
}

pub fn reason_to_wit(reason: ExitReason) -> wit::ExitReason {
    match reason {
        ExitReason::Normal(value) => wit::ExitReason::Normal(value),
        ExitReason::Error(m) => wit::ExitReason::Error(m),
        ExitReason::Trap(m) => wit::ExitReason::Trap(m),
        ExitReason::Limit(m) => wit::ExitReason::Limit(m),
        ExitReason::Killed(m) => wit::ExitReason::Killed(m),
        ExitReason::Cancelled(m) => wit::ExitReason::Cancelled(m),
        ExitReason::LinkDown(pid) => wit::ExitReason::LinkDown(pid_to_wit(&pid)),
        ExitReason::NoProcess => wit::ExitReason::NoProcess,
        ExitReason::NoConnection(node) => wit::ExitReason::NoConnection(node),
    }
}

pub fn event_to_wit(event: Event) -> wit::Event {
    match event {
        Event::Exit { from, reason } => wit::Event::Exit(Exit {
            from: pid_to_wit(&from),
            reason: reason_to_wit(reason),
        }),
        Event::LinkDown { from, reason } => wit::Event::LinkDown(Exit {
            from: pid_to_wit(&from),
            reason: reason_to_wit(reason),
        }),
        Event::Cancel { reason } => wit::Event::Cancel(reason),
        Event::Upgrade => wit::Event::Upgrade,
    }
}
