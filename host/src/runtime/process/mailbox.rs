//! A process's mailbox: messages in the order they came, bounded in count and bytes, and
//! shared fairly: once it is three quarters full, a sender holding more than an equal share
//! (among the senders with messages waiting) is refused, so one flooding sender cannot lock
//! the others out. Each waiting message carries its sender's receipt (`ledger.rs`): the
//! bytes go back to the sender when the message is taken, or when the mailbox is emptied
//! because its process ended.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::ledger::{Charge, OVERHEAD};
use super::queue::Readiness;
use crate::app::Limits;
use wasmhost_types::Pid;

/// A message in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    /// The sender; `None` for messages from the host.
    pub from: Option<Pid>,
    pub payload: Vec<u8>,
}

/// What a message costs a mailbox's `mailbox_bytes` and its sender's `host_memory`: its
/// payload, its topic, and a little for the bookkeeping, so that empty messages are not
/// free.
pub fn cost(message: &Message) -> u64 {
    (message.payload.len() + message.topic.len()) as u64 + OVERHEAD
}

/// Messages and bytes one sender has waiting.
#[derive(Default, Clone, Copy)]
struct Held {
    count: u64,
    bytes: u64,
}

#[derive(Default)]
struct Inner {
    messages: VecDeque<(Message, Charge)>,
    bytes: u64,
    /// By sender id (0 for the host).
    senders: HashMap<u64, Held>,
}

#[derive(Default)]
pub struct Mailbox {
    inner: Mutex<Inner>,
    pushed: Readiness,
}

fn sender_key(message: &Message) -> u64 {
    message.from.as_ref().map_or(0, |pid| pid.id)
}

impl Inner {
    /// Takes the oldest message and gives its sender's share back.
    fn pop(&mut self) -> Option<Message> {
        let (message, _receipt) = self.messages.pop_front()?;
        let cost = cost(&message);
        self.bytes -= cost;
        let key = sender_key(&message);
        if let Some(held) = self.senders.get_mut(&key) {
            held.count -= 1;
            held.bytes -= cost;
            if held.count == 0 {
                self.senders.remove(&key);
            }
        }
        Some(message)
    }
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `message`, paid for by `receipt`, within `limits` (`mailbox`,
    /// `mailbox_bytes` and the sender's share); gives it back if it does not fit.
    pub fn push(&self, message: Message, receipt: Charge, limits: &Limits) -> Result<(), Message> {
        {
            let mut inner = self.lock();
            let cost = cost(&message);
            let key = sender_key(&message);
            let held = inner.senders.get(&key).copied().unwrap_or_default();
            let count = inner.messages.len() as u64 + 1;
            let bytes = inner.bytes + cost;
            let (max_count, max_bytes) = (limits.mailbox, limits.mailbox_bytes);
            if count > max_count || bytes > max_bytes {
                return Err(message);
            }
            let crowded = count > max_count - max_count / 4 || bytes > max_bytes - max_bytes / 4;
            if crowded {
                let senders = inner.senders.len() as u64 + u64::from(held.count == 0);
                let (share_count, share_bytes) =
                    (max_count / (senders + 1), max_bytes / (senders + 1));
                if held.count + 1 > share_count.max(1) || held.bytes + cost > share_bytes {
                    return Err(message);
                }
            }
            inner.bytes = bytes;
            let entry = inner.senders.entry(key).or_default();
            entry.count += 1;
            entry.bytes += cost;
            inner.messages.push_back((message, receipt));
        }
        self.pushed.notify();
        Ok(())
    }

    /// Takes the oldest message.
    pub fn pop(&self) -> Option<Message> {
        self.lock().pop()
    }

    /// Takes up to `max` of the oldest messages, under one lock: fewer than `max` once those
    /// taken carry `max_payload` bytes (the first is taken whatever its size).
    pub fn pop_many(&self, max: usize, max_payload: usize) -> Vec<Message> {
        let mut inner = self.lock();
        let mut taken = Vec::with_capacity(max.min(inner.messages.len()));
        let mut payload = 0;
        while taken.len() < max {
            // Topics count too: a batch of messages with long topics is a large copy.
            let next = match inner.messages.front() {
                Some((next, _)) => next.payload.len() + next.topic.len(),
                None => break,
            };
            if !taken.is_empty() && payload + next > max_payload {
                break;
            }
            payload += next;
            taken.extend(inner.pop());
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Drops every waiting message, giving each sender its bytes back: its process ended.
    pub fn clear(&self) {
        let dropped = std::mem::take(&mut *self.lock());
        drop(dropped);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the waker its readiness holds, if any.
    pub fn forget_waker(&self) {
        self.pushed.forget();
    }

    /// Ready if the mailbox holds a message; else `waker` is woken at the next push.
    pub fn poll_ready(&self, waker: &std::task::Waker) -> std::task::Poll<()> {
        self.pushed.poll_ready(waker, || !self.is_empty())
    }

    /// Resolves once the mailbox holds a message.
    pub async fn ready(&self) {
        self.pushed.wait(|| !self.is_empty()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::engine::NodeConfig;

    fn limits(mailbox: u64, mailbox_bytes: u64) -> Limits {
        Limits {
            mailbox,
            mailbox_bytes,
            ..NodeConfig::default().default_limits()
        }
    }

    /// A receipt from an account without limits.
    fn receipt() -> Charge {
        use crate::runtime::process::ledger::{Account, NodeLedger};
        Account::new(u64::MAX, &NodeLedger::new(u64::MAX))
            .charge(1)
            .expect("no limits")
    }

    fn message(from: u64, payload: usize) -> Message {
        Message {
            topic: "t".into(),
            from: Some(Pid::new("h", from)),
            payload: vec![0; payload],
        }
    }

    #[test]
    fn one_sender_may_fill_a_small_mailbox() {
        let mailbox = Mailbox::default();
        let limits = limits(3, 1 << 20);
        for _ in 0..3 {
            assert!(mailbox.push(message(1, 1), receipt(), &limits).is_ok());
        }
        assert!(
            mailbox.push(message(1, 1), receipt(), &limits).is_err(),
            "full"
        );
        assert_eq!(mailbox.len(), 3);
    }

    #[test]
    fn a_flooding_sender_leaves_room_for_the_others() {
        let mailbox = Mailbox::default();
        let large = limits(100_000, 64 << 20);
        let mut flood = 0;
        while mailbox.push(message(1, 8 << 20), receipt(), &large).is_ok() {
            flood += 1;
        }
        assert_eq!(flood, 5, "five 8 MiB messages, then its share is used up");
        for _ in 0..100 {
            assert!(
                mailbox.push(message(2, 20), receipt(), &large).is_ok(),
                "a small sender gets in"
            );
        }
        // Counted messages: a flood of small ones stops at its share too.
        let mailbox = Mailbox::default();
        let counted = limits(1_000, 64 << 20);
        let mut flood = 0;
        while mailbox.push(message(1, 0), receipt(), &counted).is_ok() {
            flood += 1;
        }
        assert_eq!(flood, 750);
        assert!(mailbox.push(message(2, 0), receipt(), &counted).is_ok());
    }

    #[test]
    fn many_are_taken_in_order_up_to_a_count_or_a_payload_size() {
        let mailbox = Mailbox::default();
        let limits = limits(100, 1 << 20);
        for (from, size) in [(1, 10), (2, 20), (1, 30), (3, 40), (1, 5000)] {
            assert!(
                mailbox
                    .push(message(from, size), receipt(), &limits)
                    .is_ok()
            );
        }
        let sizes = |taken: Vec<Message>| taken.iter().map(|m| m.payload.len()).collect::<Vec<_>>();
        assert_eq!(
            sizes(mailbox.pop_many(2, 1 << 20)),
            [10, 20],
            "at most `max`"
        );
        assert_eq!(
            sizes(mailbox.pop_many(10, 100)),
            [30, 40],
            "stops before 100 bytes"
        );
        assert_eq!(
            sizes(mailbox.pop_many(10, 100)),
            [5000],
            "the first is taken whatever its size"
        );
        assert!(mailbox.pop_many(10, 100).is_empty());
        // Every sender's share was given back: one sender may fill the mailbox again.
        for _ in 0..75 {
            assert!(mailbox.push(message(1, 1), receipt(), &limits).is_ok());
        }
    }

    #[test]
    fn the_last_quarter_is_kept_for_others_and_freed_as_messages_are_taken() {
        let mailbox = Mailbox::default();
        let limits = limits(4, 1 << 20);
        for _ in 0..3 {
            assert!(mailbox.push(message(1, 1), receipt(), &limits).is_ok());
        }
        assert!(
            mailbox.push(message(1, 1), receipt(), &limits).is_err(),
            "the last slot is kept"
        );
        assert!(
            mailbox.push(message(2, 1), receipt(), &limits).is_ok(),
            "for another sender"
        );
        assert!(mailbox.push(message(1, 1), receipt(), &limits).is_err());
        let first = mailbox.pop().expect("a message");
        assert_eq!(first.from, Some(Pid::new("h", 1)));
        assert!(mailbox.pop().is_some() && mailbox.pop().is_some());
        assert!(
            mailbox.push(message(1, 1), receipt(), &limits).is_ok(),
            "room again"
        );
    }
}
