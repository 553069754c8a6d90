//! What `send`, `spawn` and `register` refuse, each with the one message it is shown with.

use crate::pid::Pid;

/// Where a message goes: a pid, or a name registered with `register`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    Pid(Pid),
    Name(String),
}

impl From<Pid> for Destination {
    fn from(pid: Pid) -> Self {
        Destination::Pid(pid)
    }
}

impl From<&Pid> for Destination {
    fn from(pid: &Pid) -> Self {
        Destination::Pid(pid.clone())
    }
}

impl From<&str> for Destination {
    fn from(name: &str) -> Self {
        Destination::Name(name.to_string())
    }
}

impl From<String> for Destination {
    fn from(name: String) -> Self {
        Destination::Name(name)
    }
}

/// Why `send` refused a message (`send-error` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Nobody is registered under this name.
    #[error("no process is registered as `{0}`")]
    UnknownName(String),
    /// The payload is over the receiver's `message_size` limit (bytes).
    #[error("payload over the receiver's limit of {0} bytes")]
    TooLarge(u64),
    /// The receiver's mailbox holds its `mailbox` limit of messages.
    #[error("the mailbox of {0} is full")]
    MailboxFull(Pid),
    /// A limit of the sender's stopped it, and says which: a topic or name over 255 bytes,
    /// the bytes the host already holds for the sender (`host_memory`), the node's memory
    /// budget.
    #[error("limit: {0}")]
    Limit(String),
}

/// Why `spawn` refused (`spawn-error` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// No `process.wasm` entry has this name.
    #[error("no process entry `{0}`")]
    UnknownEntry(String),
    /// No `process.host` or `terminal.host` entry has this name.
    #[error("no host `{0}`")]
    UnknownHost(String),
    /// A limit stopped the spawn (the node's pool, the caller's `children`, the size of the
    /// arguments).
    #[error("limit: {0}")]
    Limit(String),
    /// The caller may not spawn this entry, or not on this host; says why.
    #[error("denied: {0}")]
    Denied(String),
}

/// Why `register` refused (`register-error` in the WIT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another live process holds the name.
    #[error("the name is held by {0}")]
    Taken(Pid),
    /// The name is not one a process may hold.
    #[error("invalid name: {0}")]
    Invalid(String),
    /// The registry reserves the name for other entries; carries them.
    #[error("the name is reserved for {0}")]
    Reserved(String),
    /// The process holds as many names as its `names` limit allows.
    #[error("limit: {0}")]
    Limit(String),
}

/// Why an operation on another process (`terminate`, `cancel`, `link`, `unlink`) was refused:
/// the caller has no authority over it. Carries why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied: {0}")]
pub struct Denied(pub String);

/// Errors serialize as their message, so a guest can put one in a log field or a payload.
macro_rules! serialize_as_message {
    ($($error:ty),+) => {$(
        impl serde::Serialize for $error {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    )+};
}

serialize_as_message!(SendError, SpawnError, RegisterError, Denied);
