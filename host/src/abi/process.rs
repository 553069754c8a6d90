//! `wasmhost:abi/process`: messaging, spawning, monitors, links and names. Each function
//! converts between WIT and runtime types and hands over to the calling process's
//! [`ProcessCtx`](crate::runtime::ProcessCtx), which owns the semantics.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::HasProcess;
use super::bindings::process::{
    self as wit, Destination, Host, HostEvents, HostMailbox, RegisterError,
};
use super::bindings::types::{Event, Pid as WitPid};
use super::types::{event_to_wit, pid_to_wit};
use crate::runtime::{
    self, Message, Process, ProcessCtxView, ProcessView, SendError, SpawnError, Watch,
};

pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

/// A guest's handle to its own mailbox (the WIT resource `mailbox`).
pub struct MailboxHandle(Arc<Process>);

/// A guest's handle to its own events (the WIT resource `events`).
pub struct EventsHandle(Arc<Process>);

#[wasmtime_wasi::async_trait]
impl Pollable for MailboxHandle {
    async fn ready(&mut self) {
        self.0.mailbox().ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for EventsHandle {
    async fn ready(&mut self) {
        self.0.events().ready().await
    }
}

type Result<T> = wasmtime::Result<T>;

fn send_error(err: SendError) -> wit::SendError {
    match err {
        SendError::UnknownName(n) => wit::SendError::UnknownName(n),
        SendError::TooLarge(n) => wit::SendError::TooLarge(n),
        SendError::MailboxFull(pid) => wit::SendError::MailboxFull(pid_to_wit(&pid)),
        SendError::Limit(m) => wit::SendError::Limit(m),
    }
}

fn spawn_error(err: SpawnError) -> wit::SpawnError {
    match err {
        SpawnError::UnknownEntry(e) => wit::SpawnError::UnknownEntry(e),
        SpawnError::UnknownHost(h) => wit::SpawnError::UnknownHost(h),
        SpawnError::Limit(m) => wit::SpawnError::Limit(m),
        SpawnError::Denied(m) => wit::SpawnError::Denied(m),
    }
}

impl ProcessCtxView<'_> {
    /// The pid the guest named (see `ProcessCtx::pid_of`).
    fn pid(&self, pid: WitPid) -> Result<runtime::Pid> {
        let node = pid.node.map(|node| runtime::NodeId {
            name: node.name.into(),
            incarnation: node.incarnation,
        });
        self.ctx.pid_of(node, pid.host, pid.id)
    }

    async fn spawn_with(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
        watch: Watch,
    ) -> std::result::Result<WitPid, wit::SpawnError> {
        self.ctx
            .spawn(entry, host, args, watch)
            .await
            .map(|pid| pid_to_wit(&pid))
            .map_err(spawn_error)
    }
}

impl Host for ProcessCtxView<'_> {
    fn self_pid(&mut self) -> Result<WitPid> {
        Ok(pid_to_wit(self.ctx.pid()))
    }

    fn send(
        &mut self,
        to: Destination,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<std::result::Result<(), wit::SendError>> {
        let to = match to {
            Destination::Pid(pid) => runtime::Destination::Pid(self.pid(pid)?),
            Destination::Name(name) => runtime::Destination::Name(name),
        };
        Ok(self.ctx.send(&to, topic, payload).map_err(send_error))
    }

    async fn spawn(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::None).await)
    }

    async fn spawn_monitored(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::Monitor).await)
    }

    async fn spawn_linked(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::Link).await)
    }

    fn monitor(&mut self, target: WitPid) -> Result<()> {
        self.ctx.monitor(&self.pid(target)?);
        Ok(())
    }

    fn unmonitor(&mut self, target: WitPid) -> Result<()> {
        self.ctx.unmonitor(&self.pid(target)?);
        Ok(())
    }

    fn link(&mut self, target: WitPid) -> Result<std::result::Result<(), String>> {
        Ok(self.ctx.link(&self.pid(target)?).map_err(|d| d.0))
    }

    fn unlink(&mut self, target: WitPid) -> Result<std::result::Result<(), String>> {
        Ok(self.ctx.unlink(&self.pid(target)?).map_err(|d| d.0))
    }

    fn trap_links(&mut self, enabled: bool) -> Result<()> {
        self.ctx.trap_links(enabled);
        Ok(())
    }

    fn terminate(&mut self, target: WitPid) -> Result<std::result::Result<bool, String>> {
        Ok(self.ctx.terminate(&self.pid(target)?).map_err(|d| d.0))
    }

    fn cancel(
        &mut self,
        target: WitPid,
        reason: String,
        grace: u64,
    ) -> Result<std::result::Result<bool, String>> {
        let grace = Duration::from_nanos(grace);
        Ok(self
            .ctx
            .cancel(&self.pid(target)?, reason, grace)
            .map_err(|d| d.0))
    }

    async fn register(&mut self, name: String) -> Result<std::result::Result<(), RegisterError>> {
        Ok(self.ctx.register(name).await.map_err(|err| match err {
            runtime::RegisterError::Taken(holder) => RegisterError::Taken(pid_to_wit(&holder)),
            runtime::RegisterError::Invalid(message) => RegisterError::Invalid(message),
            runtime::RegisterError::Reserved(entries) => RegisterError::Reserved(entries),
            runtime::RegisterError::Limit(message) => RegisterError::Limit(message),
        }))
    }

    fn lookup(&mut self, name: String) -> Result<Option<WitPid>> {
        Ok(self.ctx.lookup(&name).map(|pid| pid_to_wit(&pid)))
    }

    fn unregister(&mut self, name: String) -> Result<bool> {
        Ok(self.ctx.unregister(&name))
    }

    fn hibernate(&mut self, state: Vec<u8>, wake_after: Option<u64>) -> Result<String> {
        self.ctx
            .hibernate(state, wake_after.map(Duration::from_nanos))
    }

    fn resumed(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.ctx.resumed().map(<[u8]>::to_vec))
    }
}

/// At most this many messages per `try-receive-many` or `receive-many`, whatever the guest
/// asks.
const MAX_RECEIVE_MANY: usize = 1024;
/// Either stops once the messages taken carry this much payload (WIT).
const RECEIVE_MANY_PAYLOAD: usize = 64 << 10;

fn message_to_wit(m: Message) -> wit::Message {
    wit::Message {
        topic: m.topic,
        from: m.from.as_ref().map(pid_to_wit),
        payload: m.payload,
    }
}

/// Up to `max` (and at most `MAX_RECEIVE_MANY`) of `process`'s oldest messages.
fn take_many(process: &Process, max: u32) -> Vec<wit::Message> {
    let max = (max as usize).min(MAX_RECEIVE_MANY);
    process
        .mailbox()
        .pop_many(max, RECEIVE_MANY_PAYLOAD)
        .into_iter()
        .map(message_to_wit)
        .collect()
}

impl HostMailbox for ProcessCtxView<'_> {
    fn new(&mut self) -> Result<Resource<MailboxHandle>> {
        Ok(self.table.push(MailboxHandle(self.ctx.process().clone()))?)
    }

    fn try_receive(&mut self, mailbox: Resource<MailboxHandle>) -> Result<Option<wit::Message>> {
        self.ctx.receiving();
        let process = &self.table.get(&mailbox)?.0;
        Ok(process.mailbox().pop().map(message_to_wit))
    }

    fn try_receive_many(
        &mut self,
        mailbox: Resource<MailboxHandle>,
        max: u32,
    ) -> Result<Vec<wit::Message>> {
        self.ctx.receiving();
        Ok(take_many(&self.table.get(&mailbox)?.0, max))
    }

    async fn receive_many(
        &mut self,
        mailbox: Resource<MailboxHandle>,
        max: u32,
    ) -> Result<Vec<wit::Message>> {
        self.ctx.receiving();
        let process = self.table.get(&mailbox)?.0.clone();
        if max > 0 {
            process.mailbox().ready().await;
        }
        Ok(take_many(&process, max))
    }

    fn subscribe(&mut self, mailbox: Resource<MailboxHandle>) -> Result<Resource<DynPollable>> {
        subscribe(self.table, mailbox)
    }

    fn drop(&mut self, mailbox: Resource<MailboxHandle>) -> Result<()> {
        self.table.delete(mailbox)?;
        Ok(())
    }
}

impl HostEvents for ProcessCtxView<'_> {
    fn new(&mut self) -> Result<Resource<EventsHandle>> {
        Ok(self.table.push(EventsHandle(self.ctx.process().clone()))?)
    }

    fn try_receive(&mut self, events: Resource<EventsHandle>) -> Result<Option<Event>> {
        self.ctx.receiving();
        let process = &self.table.get(&events)?.0;
        Ok(process.events().pop().map(|e| event_to_wit(e.into_inner())))
    }

    fn subscribe(&mut self, events: Resource<EventsHandle>) -> Result<Resource<DynPollable>> {
        subscribe(self.table, events)
    }

    fn drop(&mut self, events: Resource<EventsHandle>) -> Result<()> {
        self.table.delete(events)?;
        Ok(())
    }
}
