//! `wasmhost:abi/process`: messaging, spawning, monitors, links and names. Each function
//! hands over to the node (`crate::runtime`), which owns the semantics.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::bindings::process::{
    self as wit, Destination, Host, HostEventStream, HostMailbox, RegisterError,
};
use super::bindings::types::{Event, Pid as WitPid};
use super::convert::{event_to_wit, pid_from_wit, pid_to_wit};
use crate::runtime::{self, ExitReason, Process, ProcessState, SendError, SpawnError, Watch};

/// A guest's handle to its own mailbox.
pub struct InboxHandle(Arc<Process>);

/// A guest's handle to its own events.
pub struct EventsHandle(Arc<Process>);

#[wasmtime_wasi::async_trait]
impl Pollable for InboxHandle {
    async fn ready(&mut self) {
        self.0.mailbox.ready().await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for EventsHandle {
    async fn ready(&mut self) {
        self.0.events.ready().await
    }
}

type Result<T> = wasmtime::Result<T>;

impl ProcessState {
    fn spawn_with(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
        watch: Watch,
    ) -> std::result::Result<WitPid, wit::SpawnError> {
        match self
            .node
            .spawn(&entry, &host, args, Some(&self.me), watch, None)
        {
            Ok(pid) => Ok(pid_to_wit(&pid)),
            Err(SpawnError::UnknownEntry(e)) => Err(wit::SpawnError::UnknownEntry(e)),
            Err(SpawnError::UnknownHost(h)) => Err(wit::SpawnError::UnknownHost(h)),
            Err(SpawnError::Limit(m)) => Err(wit::SpawnError::Limit(m)),
        }
    }
}

impl Host for ProcessState {
    fn self_pid(&mut self) -> Result<WitPid> {
        Ok(pid_to_wit(&self.me.pid))
    }

    fn send(
        &mut self,
        to: Destination,
        topic: String,
        payload: Vec<u8>,
    ) -> Result<std::result::Result<(), wit::SendError>> {
        let to = match to {
            Destination::Pid(pid) => runtime::Destination::Pid(pid_from_wit(pid)),
            Destination::Name(name) => runtime::Destination::Name(name),
        };
        Ok(self
            .node
            .send(Some(&self.me.pid), to, topic, payload)
            .map_err(|err| match err {
                SendError::UnknownName(n) => wit::SendError::UnknownName(n),
                SendError::TooLarge(n) => wit::SendError::TooLarge(n),
                SendError::MailboxFull(pid) => wit::SendError::MailboxFull(pid_to_wit(&pid)),
            }))
    }

    fn inbox(&mut self) -> Result<Resource<InboxHandle>> {
        Ok(self.table.push(InboxHandle(self.me.clone()))?)
    }

    fn events(&mut self) -> Result<Resource<EventsHandle>> {
        Ok(self.table.push(EventsHandle(self.me.clone()))?)
    }

    fn spawn(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::None))
    }

    fn spawn_monitored(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::Monitor))
    }

    fn spawn_linked(
        &mut self,
        entry: String,
        host: String,
        args: Vec<Vec<u8>>,
    ) -> Result<std::result::Result<WitPid, wit::SpawnError>> {
        Ok(self.spawn_with(entry, host, args, Watch::Link))
    }

    fn monitor(&mut self, target: WitPid) -> Result<()> {
        self.node.monitor(&self.me, &pid_from_wit(target));
        Ok(())
    }

    fn unmonitor(&mut self, target: WitPid) -> Result<()> {
        self.node.unmonitor(&self.me, &pid_from_wit(target));
        Ok(())
    }

    fn link(&mut self, target: WitPid) -> Result<()> {
        self.node.link(&self.me, &pid_from_wit(target));
        Ok(())
    }

    fn unlink(&mut self, target: WitPid) -> Result<()> {
        self.node.unlink(&self.me, &pid_from_wit(target));
        Ok(())
    }

    fn trap_links(&mut self, enabled: bool) -> Result<()> {
        self.me.control().trap_links = enabled;
        Ok(())
    }

    fn terminate(&mut self, target: WitPid) -> Result<bool> {
        let by = self.me.pid.to_string();
        Ok(self
            .node
            .terminate(&pid_from_wit(target), ExitReason::Killed(by)))
    }

    fn cancel(&mut self, target: WitPid, reason: String, grace: u64) -> Result<bool> {
        Ok(self
            .node
            .cancel(&pid_from_wit(target), reason, Duration::from_nanos(grace)))
    }

    fn register(&mut self, name: String) -> Result<std::result::Result<(), RegisterError>> {
        if name.is_empty() || name.len() > 255 {
            return Ok(Err(RegisterError::Invalid(format!(
                "a name must be 1 to 255 bytes, not {}",
                name.len()
            ))));
        }
        Ok(self
            .node
            .register(&self.me, &name)
            .map_err(|holder| RegisterError::Taken(pid_to_wit(&holder))))
    }

    fn lookup(&mut self, name: String) -> Result<Option<WitPid>> {
        Ok(self.node.lookup(&name).map(|pid| pid_to_wit(&pid)))
    }

    fn unregister(&mut self, name: String) -> Result<bool> {
        Ok(self.node.unregister(&self.me, &name))
    }
}

impl HostMailbox for ProcessState {
    fn try_receive(&mut self, inbox: Resource<InboxHandle>) -> Result<Option<wit::Message>> {
        let process = &self.table.get(&inbox)?.0;
        Ok(process.mailbox.pop().map(|m| wit::Message {
            topic: m.topic,
            sender: m.from.as_ref().map(pid_to_wit),
            payload: m.payload,
        }))
    }

    fn subscribe(&mut self, inbox: Resource<InboxHandle>) -> Result<Resource<DynPollable>> {
        subscribe(&mut self.table, inbox)
    }

    fn drop(&mut self, inbox: Resource<InboxHandle>) -> Result<()> {
        self.table.delete(inbox)?;
        Ok(())
    }
}

impl HostEventStream for ProcessState {
    fn try_receive(&mut self, events: Resource<EventsHandle>) -> Result<Option<Event>> {
        let process = &self.table.get(&events)?.0;
        Ok(process.events.pop().map(event_to_wit))
    }

    fn subscribe(&mut self, events: Resource<EventsHandle>) -> Result<Resource<DynPollable>> {
        subscribe(&mut self.table, events)
    }

    fn drop(&mut self, events: Resource<EventsHandle>) -> Result<()> {
        self.table.delete(events)?;
        Ok(())
    }
}
