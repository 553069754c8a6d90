//! In-process channels between a process's tasks (the seed's `channel.new(n)`): bounded
//! or unbounded, closable, usable in [`select!`](crate::select). They live in the guest's
//! memory; the host is not involved.

pub use async_channel::{
    Receiver, RecvError, SendError, Sender, TryRecvError, TrySendError, bounded, unbounded,
};

/// A channel holding at most `capacity` values (`channel.new(n)`); 0 means unbounded.
pub fn new<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    if capacity == 0 {
        unbounded()
    } else {
        bounded(capacity)
    }
}
