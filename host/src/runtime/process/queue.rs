//! The queue behind a process's events — FIFO, many writers, one reader — and the readiness
//! signal it shares with the mailbox (`mailbox.rs`), which a `wasi:io/poll` pollable waits
//! on.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::Poll;

use futures::task::AtomicWaker;

/// Wakes the one reader of a queue (the process that owns it) when something is added.
/// Lock-free: a push while nobody waits costs one atomic operation. (It was a `Notify`, whose
/// every `notify_waiters` takes a mutex, shared with the reader's wait: a second lock on
/// every send.)
#[derive(Default)]
pub struct Readiness(AtomicWaker);

impl Readiness {
    /// Something was added.
    pub fn notify(&self) {
        self.0.wake();
    }

    /// Drops the registered waker, if any.
    pub fn forget(&self) {
        drop(self.0.take());
    }

    /// Ready once `has_items` says so; else `waker` is woken at the next `notify` (for a
    /// future that waits on several things at once, in one poll).
    pub fn poll_ready(&self, waker: &std::task::Waker, has_items: impl Fn() -> bool) -> Poll<()> {
        // Register before checking, so a push in between is not missed.
        self.0.register(waker);
        match has_items() {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    }

    /// Resolves once `has_items` says so, checking after each wake-up. One reader at a time:
    /// a second waiter would take the first one's place.
    pub async fn wait(&self, has_items: impl Fn() -> bool) {
        // However the wait ends (ready, or dropped when another pollable of the same `poll`
        // was ready first), later pushes need not wake a reader that no longer waits.
        let _waiting = Waiting(&self.0);
        std::future::poll_fn(|cx| self.poll_ready(cx.waker(), &has_items)).await
    }
}

/// A reader's registration, withdrawn when its wait ends.
struct Waiting<'a>(&'a AtomicWaker);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    pushed: Readiness,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            items: Mutex::new(VecDeque::new()),
            pushed: Readiness::default(),
        }
    }
}

impl<T> Queue<T> {
    /// Appends `item` unless the queue holds `limit` items already (then gives it back).
    pub fn push_within(&self, item: T, limit: u64) -> Result<(), T> {
        {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            if items.len() as u64 >= limit {
                return Err(item);
            }
            items.push_back(item);
        }
        self.pushed.notify();
        Ok(())
    }

    /// Appends without a bound: for tests only, so every real push names its limit.
    #[cfg(test)]
    pub fn push(&self, item: T) {
        let _ = self.push_within(item, u64::MAX);
    }

    pub fn pop(&self) -> Option<T> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Drops every item (its process ended).
    pub fn clear(&self) {
        let items = std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()));
        drop(items);
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the waker its readiness holds, if any.
    pub fn forget_waker(&self) {
        self.pushed.forget();
    }

    /// Ready if the queue holds an item; else `waker` is woken at the next push.
    pub fn poll_ready(&self, waker: &std::task::Waker) -> Poll<()> {
        self.pushed.poll_ready(waker, || !self.is_empty())
    }

    /// Resolves once the queue holds an item.
    pub async fn ready(&self) {
        self.pushed.wait(|| !self.is_empty()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_the_order_they_went_in() {
        let queue = Queue::default();
        for i in 0..5 {
            queue.push(i);
        }
        let out: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_full_queue_gives_the_item_back() {
        let queue = Queue::default();
        assert!(queue.push_within(1, 1).is_ok());
        assert_eq!(queue.push_within(2, 1), Err(2));
    }

    #[tokio::test]
    async fn ready_wakes_on_a_push_from_another_task() {
        let queue = std::sync::Arc::new(Queue::default());
        let writer = queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            writer.push("hello");
        });
        queue.ready().await;
        assert_eq!(queue.pop(), Some("hello"));
    }
}
