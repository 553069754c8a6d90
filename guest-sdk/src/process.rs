//! Processes: this one's pid, messages, lifecycle events, spawning, monitors, links and
//! registered names (the seed's `process` module).

use std::cell::OnceCell;
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bindings::wasi::io::poll::Pollable;
use crate::bindings::wasmhost::abi::process as abi;
use crate::bindings::wasmhost::abi::types as wit;
use crate::entry::IntoArgs;
use crate::payload::{self, DecodeError};
use crate::rt::wait_for;

/// A process identifier, shown as `{app:processes|0x00004}`. In payloads it travels as
/// that string, so any language can read it and send it back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pid {
    pub host: String,
    pub id: u64,
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}|0x{:05x}}}", self.host, self.id)
    }
}

impl FromStr for Pid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a pid like {{app:processes|0x00004}}");
        let inner = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .ok_or_else(bad)?;
        let (host, id) = inner.rsplit_once('|').ok_or_else(bad)?;
        let id = id.strip_prefix("0x").ok_or_else(bad)?;
        let id = u64::from_str_radix(id, 16).map_err(|_| bad())?;
        Ok(Pid {
            host: host.to_string(),
            id,
        })
    }
}

impl Serialize for Pid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<wit::Pid> for Pid {
    fn from(pid: wit::Pid) -> Self {
        Pid {
            host: pid.host,
            id: pid.id,
        }
    }
}

impl From<&Pid> for wit::Pid {
    fn from(pid: &Pid) -> Self {
        wit::Pid {
            host: pid.host.clone(),
            id: pid.id,
        }
    }
}

/// This process's pid.
pub fn pid() -> Pid {
    abi::self_pid().into()
}

/// Where `send` delivers: a pid or a registered name.
pub enum Dest {
    Pid(Pid),
    Name(String),
}

impl From<&Pid> for Dest {
    fn from(pid: &Pid) -> Self {
        Dest::Pid(pid.clone())
    }
}

impl From<Pid> for Dest {
    fn from(pid: Pid) -> Self {
        Dest::Pid(pid)
    }
}

impl From<&str> for Dest {
    fn from(name: &str) -> Self {
        Dest::Name(name.to_string())
    }
}

impl From<String> for Dest {
    fn from(name: String) -> Self {
        Dest::Name(name)
    }
}

/// Why `send` refused a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Nobody is registered under this name.
    UnknownName(String),
    /// The payload is over the receiver's size limit (bytes).
    TooLarge(u64),
    /// The receiver's mailbox is full.
    MailboxFull(Pid),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::UnknownName(name) => write!(f, "no process is registered as `{name}`"),
            SendError::TooLarge(limit) => {
                write!(f, "payload over the receiver's limit of {limit} bytes")
            }
            SendError::MailboxFull(pid) => write!(f, "the mailbox of {pid} is full"),
        }
    }
}

impl std::error::Error for SendError {}

/// Sends `payload` under `topic` to a pid or a registered name. Never blocks. Messages from
/// this process to one receiver arrive in order.
pub fn send<T: Serialize + ?Sized>(
    to: impl Into<Dest>,
    topic: &str,
    payload: &T,
) -> Result<(), SendError> {
    let to = match to.into() {
        Dest::Pid(pid) => abi::Destination::Pid((&pid).into()),
        Dest::Name(name) => abi::Destination::Name(name),
    };
    abi::send(&to, topic, &payload::encode(payload)).map_err(|err| match err {
        abi::SendError::UnknownName(name) => SendError::UnknownName(name),
        abi::SendError::TooLarge(limit) => SendError::TooLarge(limit),
        abi::SendError::MailboxFull(pid) => SendError::MailboxFull(pid.into()),
    })
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    topic: String,
    from: Option<Pid>,
    payload: Vec<u8>,
}

impl Message {
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The sender; `None` for messages from the host.
    pub fn from(&self) -> Option<&Pid> {
        self.from.as_ref()
    }

    /// Decodes the payload (the seed's `msg:payload():data()`).
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        payload::decode(&self.payload)
    }

    /// The payload's CBOR bytes.
    pub fn raw_payload(&self) -> &[u8] {
        &self.payload
    }
}

/// A host handle and its pollable, both made on first use: a process that never reads its
/// mailbox or events pays no host calls for them (spawning stays cheap).
struct OnFirstUse<H> {
    // Declared first so it is dropped first: a pollable must go before its parent.
    ready: OnceCell<Rc<Pollable>>,
    handle: OnceCell<H>,
    make: fn() -> H,
    subscribe: fn(&H) -> Pollable,
}

impl<H> OnFirstUse<H> {
    fn new(make: fn() -> H, subscribe: fn(&H) -> Pollable) -> Self {
        OnFirstUse {
            ready: OnceCell::new(),
            handle: OnceCell::new(),
            make,
            subscribe,
        }
    }

    fn handle(&self) -> &H {
        self.handle.get_or_init(self.make)
    }

    fn ready(&self) -> &Rc<Pollable> {
        self.ready
            .get_or_init(|| Rc::new((self.subscribe)(self.handle())))
    }
}

/// This process's mailbox.
pub struct Inbox(OnFirstUse<abi::Mailbox>);

/// Returns this process's mailbox.
pub fn inbox() -> Inbox {
    Inbox(OnFirstUse::new(abi::inbox, abi::Mailbox::subscribe))
}

impl Inbox {
    /// The oldest message, if there is one.
    pub fn try_recv(&self) -> Option<Message> {
        self.0.handle().try_receive().map(|m| Message {
            topic: m.topic,
            from: m.sender.map(Pid::from),
            payload: m.payload,
        })
    }

    /// Waits for the next message.
    pub async fn recv(&self) -> Message {
        loop {
            if let Some(message) = self.try_recv() {
                return message;
            }
            wait_for(self.0.ready()).await;
        }
    }
}

/// Why a process ended (the `result` of an EXIT event).
#[derive(Debug, Clone, PartialEq)]
pub enum ExitReason {
    /// Returned normally, with its (CBOR) value.
    Normal(Vec<u8>),
    Error(String),
    Trap(String),
    Limit(String),
    Killed(String),
    Cancelled(String),
    LinkDown(Pid),
    NoProcess,
}

impl ExitReason {
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal(_))
    }

    /// The returned value of a normal exit, decoded.
    pub fn value<T: DeserializeOwned>(&self) -> Option<T> {
        match self {
            ExitReason::Normal(bytes) => payload::decode(bytes).ok(),
            _ => None,
        }
    }
}

impl From<wit::ExitReason> for ExitReason {
    fn from(reason: wit::ExitReason) -> Self {
        match reason {
            wit::ExitReason::Normal(v) => ExitReason::Normal(v),
            wit::ExitReason::Error(m) => ExitReason::Error(m),
            wit::ExitReason::Trap(m) => ExitReason::Trap(m),
            wit::ExitReason::Limit(m) => ExitReason::Limit(m),
            wit::ExitReason::Killed(m) => ExitReason::Killed(m),
            wit::ExitReason::Cancelled(m) => ExitReason::Cancelled(m),
            wit::ExitReason::LinkDown(pid) => ExitReason::LinkDown(pid.into()),
            wit::ExitReason::NoProcess => ExitReason::NoProcess,
        }
    }
}

/// In payloads and log fields: a normal exit is its returned value; anything else is a
/// one-entry map naming the reason, e.g. `{trap: "..."}`.
impl Serialize for ExitReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (key, text) = match self {
            ExitReason::Normal(bytes) => {
                let value: ciborium::Value =
                    payload::decode(bytes).unwrap_or(ciborium::Value::Null);
                return value.serialize(serializer);
            }
            ExitReason::Error(m) => ("error", m.clone()),
            ExitReason::Trap(m) => ("trap", m.clone()),
            ExitReason::Limit(m) => ("limit", m.clone()),
            ExitReason::Killed(m) => ("killed", m.clone()),
            ExitReason::Cancelled(m) => ("cancelled", m.clone()),
            ExitReason::LinkDown(pid) => ("link_down", pid.to_string()),
            ExitReason::NoProcess => ("no_process", String::new()),
        };
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(key, &text)?;
        map.end()
    }
}

/// A lifecycle event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A monitored process ended (the seed's `EXIT`).
    Exit { from: Pid, result: ExitReason },
    /// A linked process ended abnormally and this process traps links (`LINK_DOWN`).
    LinkDown { from: Pid, result: ExitReason },
    /// This process is asked to stop (`CANCEL`).
    Cancel { reason: String },
}

impl From<wit::Event> for Event {
    fn from(event: wit::Event) -> Self {
        match event {
            wit::Event::Exit(e) => Event::Exit {
                from: e.from.into(),
                result: e.reason.into(),
            },
            wit::Event::LinkDown(e) => Event::LinkDown {
                from: e.from.into(),
                result: e.reason.into(),
            },
            wit::Event::Cancel(reason) => Event::Cancel { reason },
        }
    }
}

/// This process's lifecycle events.
pub struct Events(OnFirstUse<abi::EventStream>);

/// Returns this process's events channel.
pub fn events() -> Events {
    Events(OnFirstUse::new(abi::events, abi::EventStream::subscribe))
}

impl Events {
    pub fn try_recv(&self) -> Option<Event> {
        self.0.handle().try_receive().map(Event::from)
    }

    /// Waits for the next event.
    pub async fn recv(&self) -> Event {
        loop {
            if let Some(event) = self.try_recv() {
                return event;
            }
            wait_for(self.0.ready()).await;
        }
    }
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnError {
    UnknownEntry(String),
    UnknownHost(String),
    Limit(String),
    Failed(String),
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::UnknownEntry(e) => write!(f, "no process entry `{e}`"),
            SpawnError::UnknownHost(h) => write!(f, "no host `{h}`"),
            SpawnError::Limit(m) => write!(f, "limit: {m}"),
            SpawnError::Failed(m) => write!(f, "spawn failed: {m}"),
        }
    }
}

impl std::error::Error for SpawnError {}

impl Serialize for SpawnError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn spawn_result(result: Result<wit::Pid, abi::SpawnError>) -> Result<Pid, SpawnError> {
    result.map(Pid::from).map_err(|err| match err {
        abi::SpawnError::UnknownEntry(e) => SpawnError::UnknownEntry(e),
        abi::SpawnError::UnknownHost(h) => SpawnError::UnknownHost(h),
        abi::SpawnError::Limit(m) => SpawnError::Limit(m),
        abi::SpawnError::Failed(m) => SpawnError::Failed(m),
    })
}

/// Starts `entry` (e.g. `"app:worker"`) on `host` (e.g. `"app:processes"`) with `args`
/// (a tuple of serde values, or `()`).
pub fn spawn(entry: &str, host: &str, args: impl IntoArgs) -> Result<Pid, SpawnError> {
    spawn_result(abi::spawn(entry, host, &args.into_args()))
}

/// Like [`spawn`], and this process receives [`Event::Exit`] when the child ends.
pub fn spawn_monitored(entry: &str, host: &str, args: impl IntoArgs) -> Result<Pid, SpawnError> {
    spawn_result(abi::spawn_monitored(entry, host, &args.into_args()))
}

/// Like [`spawn`], and the child is linked to this process.
pub fn spawn_linked(entry: &str, host: &str, args: impl IntoArgs) -> Result<Pid, SpawnError> {
    spawn_result(abi::spawn_linked(entry, host, &args.into_args()))
}

/// Receive [`Event::Exit`] when `target` ends (at once if it already has).
pub fn monitor(target: &Pid) {
    abi::monitor(&target.into());
}

pub fn unmonitor(target: &Pid) {
    abi::unmonitor(&target.into());
}

/// Link with `target`: an abnormal exit of either ends the other, unless it traps links.
pub fn link(target: &Pid) {
    abi::link(&target.into());
}

pub fn unlink(target: &Pid) {
    abi::unlink(&target.into());
}

/// Receive linked processes' abnormal exits as [`Event::LinkDown`] instead of ending.
pub fn trap_links(enabled: bool) {
    abi::trap_links(enabled);
}

/// Ends `target` at once. False if it had already ended.
pub fn terminate(target: &Pid) -> bool {
    abi::terminate(&target.into())
}

/// Asks `target` to stop (it receives [`Event::Cancel`]); it is ended after `grace`.
pub fn cancel(target: &Pid, reason: &str, grace: Duration) -> bool {
    abi::cancel(&target.into(), reason, grace.as_nanos() as u64)
}

/// Node-wide names (the seed's `process.registry`).
pub mod registry {
    use super::{Pid, abi};

    /// Why `register` failed.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum RegisterError {
        Taken(Pid),
        Invalid(String),
    }

    impl std::fmt::Display for RegisterError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                RegisterError::Taken(pid) => write!(f, "the name is held by {pid}"),
                RegisterError::Invalid(m) => write!(f, "invalid name: {m}"),
            }
        }
    }

    impl std::error::Error for RegisterError {}

    /// Registers this process as `name` until it exits or unregisters.
    pub fn register(name: &str) -> Result<(), RegisterError> {
        abi::register(name).map_err(|err| match err {
            abi::RegisterError::Taken(pid) => RegisterError::Taken(pid.into()),
            abi::RegisterError::Invalid(m) => RegisterError::Invalid(m),
        })
    }

    pub fn lookup(name: &str) -> Option<Pid> {
        abi::lookup(name).map(Pid::from)
    }

    pub fn unregister(name: &str) -> bool {
        abi::unregister(name)
    }
}
