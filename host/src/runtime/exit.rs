//! Why a process ended, and what the others hear about it.

use std::fmt;

use super::pid::Pid;
use crate::payload;

/// Why a process ended. Mirrors `exit-reason` in `wit/wasmhost.wit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// Returned `ok`, with the CBOR-encoded value.
    Normal(Vec<u8>),
    /// Returned `err`.
    Error(String),
    /// Trapped (panic, unreachable, ...).
    Trap(String),
    /// Broke a limit.
    Limit(String),
    /// Ended by `terminate`.
    Killed(String),
    /// Did not stop within a `cancel`'s grace period.
    Cancelled(String),
    /// A linked process ended abnormally.
    LinkDown(Pid),
    /// The target of a `monitor` was already gone.
    NoProcess,
}

impl ExitReason {
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal(_))
    }

    /// The exit code of `wasmhost run`: a returned number, 0 for any other returned value,
    /// 1 for an abnormal exit.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExitReason::Normal(value) => payload::as_integer(value)
                .map(|n| n.clamp(0, 255) as i32)
                .unwrap_or(0),
            _ => 1,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal(value) => write!(f, "{}", payload::display(value)),
            ExitReason::Error(message) => write!(f, "error: {message}"),
            ExitReason::Trap(message) => write!(f, "trap: {message}"),
            ExitReason::Limit(message) => write!(f, "limit: {message}"),
            ExitReason::Killed(by) => write!(f, "killed by {by}"),
            ExitReason::Cancelled(reason) => write!(f, "cancelled: {reason}"),
            ExitReason::LinkDown(pid) => write!(f, "linked process {pid} exited"),
            ExitReason::NoProcess => write!(f, "no such process"),
        }
    }
}

/// A lifecycle event on a process's events channel. Mirrors `event` in the WIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Exit { from: Pid, reason: ExitReason },
    LinkDown { from: Pid, reason: ExitReason },
    Cancel(String),
}
