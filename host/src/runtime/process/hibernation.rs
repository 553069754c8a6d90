//! Hibernation: a process hands the host a state and its instance ends; the process (pid,
//! mailbox, names, links, monitors) lives on, and the next message, event or timer makes a
//! new instance that resumes from the state. This file holds what the host keeps meanwhile
//! and what it charges for it; `engine/run.rs` drops and remakes the instance.

use std::time::Duration;

use super::ledger::Charge;

/// What the host keeps for a hibernated process beyond its state: its `Process`, its row in
/// the table, the waker that starts it again (≈ 0.9 KiB, `docs/engine.md`). A running process
/// is bounded by the pool; a hibernated one only by what it is charged, so it is charged this.
pub const HIBERNATION_OVERHEAD: u64 = 1024;

/// A process's state while it hibernates, and the receipt that charges it to the process.
#[derive(Debug)]
pub struct Hibernation {
    pub state: Box<[u8]>,
    /// Wake it after this long, whatever arrives.
    pub wake_after: Option<Duration>,
    /// Held for as long as the host keeps the state.
    _receipt: Charge,
}

impl Hibernation {
    pub(in crate::runtime) fn new(
        state: Vec<u8>,
        wake_after: Option<Duration>,
        receipt: Charge,
    ) -> Self {
        Hibernation {
            state: state.into_boxed_slice(),
            wake_after,
            _receipt: receipt,
        }
    }
}

/// The error a `hibernate` call ends its instance with: it unwinds the guest, as
/// `wasi:cli/exit` does, and the runner finds the state in the store.
#[derive(Debug, thiserror::Error)]
#[error("hibernating")]
pub struct Hibernating;
