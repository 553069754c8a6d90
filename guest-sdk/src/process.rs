//! Processes: this one's pid, messages, lifecycle events, spawning, monitors, links and
//! registered names (the seed's `process` module).

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasi::io::poll::Pollable;
use crate::bindings::wasmhost::abi::process as abi;
use crate::bindings::wasmhost::abi::types as wit;
use crate::entry::IntoArgs;
use crate::payload::{self, DecodeError};
use crate::rt::{wait_for, wait_for_mailbox};

pub use crate::hibernation::{HibernateError, hand_over, hibernate, hibernate_for, resumed};
pub use wasmhost_types::{
    Denied, Destination, Event, ExitReason, NodeId, Pid, SendError, SpawnError,
};

fn pid_from_wit(pid: wit::Pid) -> Pid {
    let node = pid.node.map(|node| NodeId {
        name: node.name.into(),
        incarnation: node.incarnation,
    });
    Pid::new(pid.host, pid.id).on(node)
}

fn pid_to_wit(pid: &Pid) -> wit::Pid {
    wit::Pid {
        node: pid.node.as_ref().map(|node| wit::NodeId {
            name: node.name.to_string(),
            incarnation: node.incarnation,
        }),
        host: pid.host.to_string(),
        id: pid.id,
    }
}

/// This process's pid.
pub fn pid() -> Pid {
    pid_from_wit(abi::self_pid())
}

/// Sends `payload` under `topic` to a pid or a registered name. Never blocks. Messages from
/// this process to one receiver arrive in order.
///
/// ```no_run
/// use wasmhost_guest::process;
///
/// // To a registered name; nobody holding it is an error the sender sees.
/// if let Err(err) = process::send("relay", "echo", &"hello") {
///     eprintln!("{err}"); // no process is registered as `relay`
/// }
/// ```
pub fn send<T: Serialize + ?Sized>(
    to: impl Into<Destination>,
    topic: &str,
    payload: &T,
) -> Result<(), SendError> {
    let to = match to.into() {
        Destination::Pid(pid) => abi::Destination::Pid(pid_to_wit(&pid)),
        Destination::Name(name) => abi::Destination::Name(name),
    };
    abi::send(&to, topic, &payload::encode(payload)).map_err(|err| match err {
        abi::SendError::UnknownName(name) => SendError::UnknownName(name),
        abi::SendError::TooLarge(limit) => SendError::TooLarge(limit),
        abi::SendError::MailboxFull(pid) => SendError::MailboxFull(pid_from_wit(pid)),
        abi::SendError::Limit(message) => SendError::Limit(message),
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

    /// Who sent it; `None` for messages from the node.
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
    handle: OnceCell<Rc<H>>,
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

    fn handle(&self) -> &Rc<H> {
        self.handle.get_or_init(|| Rc::new((self.make)()))
    }

    fn ready(&self) -> &Rc<Pollable> {
        self.ready
            .get_or_init(|| Rc::new((self.subscribe)(self.handle())))
    }
}

/// This process's mailbox (the seed's `process.inbox()`).
pub struct Mailbox(OnFirstUse<abi::Mailbox>);

/// Returns this process's mailbox.
pub fn mailbox() -> Mailbox {
    Mailbox(OnFirstUse::new(abi::Mailbox::new, abi::Mailbox::subscribe))
}

/// How many waiting messages one host call takes at most.
pub(crate) const TAKE_AT_ONCE: u32 = 32;

thread_local! {
    /// Messages taken from the host together and not read yet, oldest first. Shared by every
    /// `Mailbox` handle, as the host's mailbox is, so no handle reads past another's.
    static TAKEN: RefCell<VecDeque<abi::Message>> = const { RefCell::new(VecDeque::new()) };
}

/// Keeps messages the executor took while it waited for them (`receive-many`).
pub(crate) fn keep_taken(run: Vec<abi::Message>) {
    TAKEN.with(|taken| taken.borrow_mut().extend(run));
}

/// A message taken from the host and not read yet, as hibernation keeps it: topic, sender,
/// payload.
pub(crate) type KeptMessage = (String, Option<Pid>, payload::ByteBuf);

/// The messages taken from the host and not read yet, oldest first, for `hibernate` to keep.
pub(crate) fn unread() -> Vec<KeptMessage> {
    TAKEN.with_borrow(|taken| {
        taken
            .iter()
            .map(|m| {
                let from = m.from.clone().map(pid_from_wit);
                (
                    m.topic.clone(),
                    from,
                    payload::ByteBuf::from(m.payload.clone()),
                )
            })
            .collect()
    })
}

/// Puts back the messages a hibernated instance had taken and not read: they come first.
pub(crate) fn keep_unread(kept: Vec<KeptMessage>) {
    keep_taken(
        kept.into_iter()
            .map(|(topic, from, payload)| abi::Message {
                topic,
                from: from.as_ref().map(pid_to_wit),
                payload: payload.into_vec(),
            })
            .collect(),
    );
}

fn taken() -> Option<Message> {
    TAKEN
        .with(|taken| taken.borrow_mut().pop_front())
        .map(message_from_wit)
}

fn message_from_wit(m: abi::Message) -> Message {
    Message {
        topic: m.topic,
        from: m.from.map(pid_from_wit),
        payload: m.payload,
    }
}

impl Mailbox {
    /// The oldest message, if there is one. A run of waiting messages costs one host call,
    /// not one each (`try-receive-many`).
    pub fn try_recv(&self) -> Option<Message> {
        if let Some(message) = taken() {
            return Some(message);
        }
        keep_taken(self.0.handle().try_receive_many(TAKE_AT_ONCE));
        taken()
    }

    /// Waits for the next message. Nothing taken yet means a wait without asking the host
    /// first: if this is all the process waits for, the executor waits in `receive-many`,
    /// which hands the message over (one host call); else it polls, and the message is taken
    /// once the mailbox is ready.
    pub async fn recv(&self) -> Message {
        loop {
            if let Some(message) = taken() {
                return message;
            }
            wait_for_mailbox(self.0.ready(), self.0.handle()).await;
            if let Some(message) = self.try_recv() {
                return message;
            }
        }
    }
}

fn reason_from_wit(reason: wit::ExitReason) -> ExitReason {
    match reason {
        wit::ExitReason::Normal(v) => ExitReason::Normal(v),
        wit::ExitReason::Error(m) => ExitReason::Error(m),
        wit::ExitReason::Trap(m) => ExitReason::Trap(m),
        wit::ExitReason::Limit(m) => ExitReason::Limit(m),
        wit::ExitReason::Killed(m) => ExitReason::Killed(m),
        wit::ExitReason::Cancelled(m) => ExitReason::Cancelled(m),
        wit::ExitReason::LinkDown(pid) => ExitReason::LinkDown(pid_from_wit(pid)),
        wit::ExitReason::NoProcess => ExitReason::NoProcess,
        wit::ExitReason::NoConnection(node) => ExitReason::NoConnection(node),
    }
}

fn event_from_wit(event: wit::Event) -> Event {
    match event {
        wit::Event::Exit(e) => Event::Exit {
            from: pid_from_wit(e.from),
            reason: reason_from_wit(e.reason),
        },
        wit::Event::LinkDown(e) => Event::LinkDown {
            from: pid_from_wit(e.from),
            reason: reason_from_wit(e.reason),
        },
        wit::Event::Cancel(reason) => Event::Cancel { reason },
        wit::Event::Upgrade => Event::Upgrade,
    }
}

/// This process's lifecycle events (the seed's `process.events()`): `EXIT`, `LINK_DOWN`,
/// `CANCEL`.
pub struct Events(OnFirstUse<abi::Events>);

/// Returns this process's events.
pub fn events() -> Events {
    Events(OnFirstUse::new(abi::Events::new, abi::Events::subscribe))
}

impl Events {
    /// The oldest event, if there is one.
    pub fn try_recv(&self) -> Option<Event> {
        self.0.handle().try_receive().map(event_from_wit)
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

fn spawn_result(result: Result<wit::Pid, abi::SpawnError>) -> Result<Pid, SpawnError> {
    result.map(pid_from_wit).map_err(|err| match err {
        abi::SpawnError::UnknownEntry(e) => SpawnError::UnknownEntry(e),
        abi::SpawnError::UnknownHost(h) => SpawnError::UnknownHost(h),
        abi::SpawnError::Limit(m) => SpawnError::Limit(m),
        abi::SpawnError::Denied(m) => SpawnError::Denied(m),
    })
}

/// Starts `entry` (e.g. `"app:worker"`) on `host` (e.g. `"app:processes"`) with `args`
/// (a tuple of serde values, or `()`).
///
/// ```no_run
/// use wasmhost_guest::process;
///
/// let worker = process::spawn_monitored("app:worker", "app:processes", ("hello", 3))?;
/// # Ok::<(), process::SpawnError>(())
/// ```
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

/// Receive [`Event::Exit`] when `target` ends (at once if it already has). A process that
/// is not a descendant of this one reports only the kind of its exit.
pub fn monitor(target: &Pid) {
    abi::monitor(&pid_to_wit(target));
}

pub fn unmonitor(target: &Pid) {
    abi::unmonitor(&pid_to_wit(target));
}

/// Link with `target` (a descendant of this process): an abnormal exit of either ends the
/// other, unless it traps links.
pub fn link(target: &Pid) -> Result<(), Denied> {
    abi::link(&pid_to_wit(target)).map_err(Denied)
}

pub fn unlink(target: &Pid) -> Result<(), Denied> {
    abi::unlink(&pid_to_wit(target)).map_err(Denied)
}

/// Receive linked processes' abnormal exits as [`Event::LinkDown`] instead of ending.
pub fn trap_links(enabled: bool) {
    abi::trap_links(enabled);
}

/// Ends `target` (this process or a descendant) at once. False if it had already ended.
pub fn terminate(target: &Pid) -> Result<bool, Denied> {
    abi::terminate(&pid_to_wit(target)).map_err(Denied)
}

/// Asks `target` (this process or a descendant) to stop: it receives [`Event::Cancel`], and
/// is ended after `grace`.
///
/// ```no_run
/// use std::time::Duration;
/// use wasmhost_guest::process;
///
/// let child = process::spawn_monitored("app:worker", "app:processes", ())?;
/// process::cancel(&child, "shutting down", Duration::from_secs(5))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cancel(target: &Pid, reason: &str, grace: Duration) -> Result<bool, Denied> {
    abi::cancel(&pid_to_wit(target), reason, nanos(grace)).map_err(Denied)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Node-wide names (the seed's `process.registry`).
pub mod registry {
    use super::{abi, pid_from_wit};

    pub use wasmhost_types::RegisterError;

    /// Registers this process as `name` until it exits or unregisters.
    pub fn register(name: &str) -> Result<(), RegisterError> {
        abi::register(name).map_err(|err| match err {
            abi::RegisterError::Taken(pid) => RegisterError::Taken(pid_from_wit(pid)),
            abi::RegisterError::Invalid(m) => RegisterError::Invalid(m),
            abi::RegisterError::Reserved(entries) => RegisterError::Reserved(entries),
            abi::RegisterError::Limit(m) => RegisterError::Limit(m),
        })
    }

    /// The process registered as `name`, if any.
    pub fn lookup(name: &str) -> Option<super::Pid> {
        abi::lookup(name).map(pid_from_wit)
    }

    /// Releases `name` if this process holds it.
    pub fn unregister(name: &str) -> bool {
        abi::unregister(name)
    }
}
