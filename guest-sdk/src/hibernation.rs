//! Hibernation: a process hands the host its state and its instance ends, freeing its
//! memory; the process (pid, mailbox, names, links, monitors) lives on, and the next
//! message, event or wake-up time makes a new instance that resumes from the state.
//!
//! The host calls a woken instance's entry point with no arguments; this library keeps the
//! spawn arguments beside the state, so `main` is called again with the arguments it was
//! spawned with, and [`resumed`] tells it that it woke and with what. It keeps the messages
//! it took from the host and the process has not read too (it takes runs of them in one
//! call): they wake the next instance at once, and come first there.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::wasmhost::abi::process as abi;
use crate::payload::{self, ByteBuf, Bytes, DecodeError};
use crate::process::KeptMessage;
use crate::time::IntoDuration;

/// Why the host did not hibernate the process (its state is over its `message_size`, or
/// its `host_memory` or the node's budget cannot hold it). The process runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HibernateError(pub String);

impl fmt::Display for HibernateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HibernateError {}

/// Hibernates this process with `state`: its instance ends here (nothing after this call
/// runs, no destructor either), and the next message or event starts a new one: `main` is
/// called again with the arguments it was spawned with, and [`resumed`] returns `state`.
/// Timers, tasks and handles end with the instance; the mailbox, events, names, links and
/// monitors stay. Returns only if the host refused.
///
/// ```no_run
/// use wasmhost_guest::process;
///
/// #[derive(serde::Serialize, serde::Deserialize, Default)]
/// struct Session {
///     seen: u64,
/// }
///
/// async fn session() -> Result<(), Box<dyn std::error::Error>> {
///     let mut session: Session = process::resumed().transpose()?.unwrap_or_default();
///     let _message = process::mailbox().recv().await;
///     session.seen += 1;
///     // Waits for the next message without an instance.
///     Err(process::hibernate(&session).into())
/// }
/// ```
pub fn hibernate<S: Serialize + ?Sized>(state: &S) -> HibernateError {
    hibernate_with(state, None)
}

/// [`hibernate`], and wake after `at_most` if nothing else woke it first.
pub fn hibernate_for<S: Serialize + ?Sized>(
    state: &S,
    at_most: impl IntoDuration,
) -> HibernateError {
    hibernate_with(state, Some(at_most.into_duration()))
}

/// Hands over to the new component when the node upgrades this process's entry (on
/// [`Event::Upgrade`](crate::process::Event::Upgrade)): hibernates with `state`, and an
/// instance of the new component starts at once — `main` called again with the spawn
/// arguments, [`resumed`] returning `state` — keeping the pid, names, links, monitors and
/// mailbox. Returns only if the host refused (as [`hibernate`]).
///
/// ```no_run
/// use wasmhost_guest::prelude::*;
///
/// async fn serve() -> Result<(), String> {
///     let mut served: u64 = process::resumed().transpose().map_err(|e| e.to_string())?.unwrap_or(0);
///     let (mailbox, events) = (process::mailbox(), process::events());
///     loop {
///         select! {
///             event = events.recv() => {
///                 if let Event::Upgrade = event {
///                     return Err(process::hand_over(&served).to_string());
///                 }
///             }
///             _message = mailbox.recv() => { served += 1; }
///         }
///     }
/// }
/// ```
pub fn hand_over<S: Serialize + ?Sized>(state: &S) -> HibernateError {
    hibernate_with(state, Some(Duration::ZERO))
}

fn hibernate_with<S: Serialize + ?Sized>(
    state: &S,
    wake_after: Option<Duration>,
) -> HibernateError {
    let state = payload::encode(state);
    let unread = crate::process::unread();
    let kept = crate::rt::with_kept(|args, _| {
        let args: Vec<&Bytes> = args.iter().map(|a| Bytes::new(a)).collect();
        payload::encode(&(args, Bytes::new(&state), &unread))
    });
    // Unread messages wake it at once, as messages waiting in the mailbox would.
    let wake_after = match unread.is_empty() {
        true => wake_after,
        false => Some(Duration::ZERO),
    };
    let wake_after = wake_after.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    HibernateError(abi::hibernate(&kept, wake_after))
}

/// The state this instance woke with (see [`hibernate`]); `None` in the instance its spawn
/// made.
pub fn resumed<S: DeserializeOwned>() -> Option<Result<S, DecodeError>> {
    crate::rt::with_kept(|_, state| state.map(payload::decode))
}

/// The arguments to call the entry point with, and the state it woke with, if it did.
pub(crate) type Start = (Vec<Vec<u8>>, Option<Vec<u8>>);

/// The arguments to call the entry point with, and the state it woke with: the spawn's
/// arguments, or, in an instance that wakes from hibernation, those kept with its state.
pub(crate) fn entry_args(args: Vec<Vec<u8>>) -> Result<Start, DecodeError> {
    // The host calls a woken instance with no arguments: a spawn with some asks nothing.
    if !args.is_empty() {
        return Ok((args, None));
    }
    let Some(kept) = abi::resumed() else {
        return Ok((args, None));
    };
    let (args, state, unread): (Vec<ByteBuf>, ByteBuf, Vec<KeptMessage>) = payload::decode(&kept)?;
    crate::process::keep_unread(unread);
    let args = args.into_iter().map(ByteBuf::into_vec).collect();
    Ok((args, Some(state.into_vec())))
}
