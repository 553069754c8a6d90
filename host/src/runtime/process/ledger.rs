//! The ledger: every byte the host holds on a process's behalf is charged to the process
//! that made the host hold it, and — with every process's linear memory — to the node's
//! `memory_budget`.
//!
//! A [`Charge`] is the receipt: it is stored beside what it pays for (a message in a mailbox,
//! an event, a name, a monitor, a pending cancel, the arguments of a child not yet started,
//! a queued log line, a timer) and gives the bytes back when it is dropped, so whatever path
//! frees the thing frees its charge: nothing can be released twice or forgotten, and what a
//! process holds is exactly the sum of its live receipts.
//!
//! Two kinds of charge. What a process asks for and can be told "no" (a send, a spawn's
//! arguments, a name, a log line) is *refused* past its own `host_memory` or the node's
//! budget. What it has already been promised (the exit report of a process it monitors, a
//! link going down, a cancel it sent) is *owed*: it is charged to its `host_memory`, and a
//! process past it ends with `limit`; the node's total counts it but never refuses it, so a
//! node whose budget a hostile lineage has used up still tells every watcher why its
//! children ended.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::app::values::show_size;

/// The node's total: linear memories, and what the host holds for every process, against
/// one budget. Two counters, so `ps` can show each; each is checked against the budget with
/// the other's value at that moment (two charges racing may pass it by the smaller one).
#[derive(Debug)]
pub(in crate::runtime) struct NodeLedger {
    linear: AtomicU64,
    held: AtomicU64,
    budget: u64,
}

/// Adds `bytes` to `counter` if, with `other`, the total stays within `budget`.
fn take_within(counter: &AtomicU64, other: &AtomicU64, bytes: u64, budget: u64) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |mine| {
            let total = mine.checked_add(bytes)?;
            (total.saturating_add(other.load(Ordering::Acquire)) <= budget).then_some(total)
        })
        .is_ok()
}

impl NodeLedger {
    pub fn new(budget: u64) -> Arc<NodeLedger> {
        Arc::new(NodeLedger {
            linear: AtomicU64::new(0),
            held: AtomicU64::new(0),
            budget,
        })
    }

    /// Takes `bytes` for the host to hold if the budget has them.
    pub fn take(&self, bytes: u64) -> bool {
        take_within(&self.held, &self.linear, bytes, self.budget)
    }

    /// Takes `bytes` for the host to hold whatever the budget says (what is owed).
    pub fn take_anyway(&self, bytes: u64) {
        self.held.fetch_add(bytes, Ordering::AcqRel);
    }

    pub fn give_back(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Takes `bytes` of linear memory (or tables) if the budget has them.
    pub fn take_linear(&self, bytes: u64) -> bool {
        take_within(&self.linear, &self.held, bytes, self.budget)
    }

    pub fn give_back_linear(&self, bytes: u64) {
        self.linear.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Linear memory of all processes.
    pub fn linear(&self) -> u64 {
        self.linear.load(Ordering::Acquire)
    }

    /// What the host holds for all processes.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }
}

/// What the host holds for one process (or for the node itself), against its limit.
pub struct Account {
    held: AtomicU64,
    limit: u64,
    node: Arc<NodeLedger>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Account({} of {})", self.held(), self.limit)
    }
}

/// Why a charge was refused, in the words a guest sees after `limit: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The process would hold more than its `host_memory`.
    Own { held: u64, limit: u64, wanted: u64 },
    /// The node's `memory_budget` is used up.
    Node { budget: u64 },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Own {
                held,
                limit,
                wanted,
            } => write!(
                f,
                "host_memory: the host holds {} for it and {} more would pass its limit of {}",
                show_size(*held),
                show_size(*wanted),
                show_size(*limit)
            ),
            Refused::Node { budget } => write!(
                f,
                "memory: the node's memory budget of {} is used up",
                show_size(*budget)
            ),
        }
    }
}

impl Account {
    pub(in crate::runtime) fn new(limit: u64, node: &Arc<NodeLedger>) -> Arc<Account> {
        Arc::new(Account {
            held: AtomicU64::new(0),
            limit,
            node: node.clone(),
        })
    }

    /// Bytes the host holds for it now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    fn take_own(&self, bytes: u64) -> Result<(), Refused> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(drop)
            .map_err(|held| Refused::Own {
                held,
                limit: self.limit,
                wanted: bytes,
            })
    }

    /// Charges `bytes` for something the process asked for: refused past its own limit or
    /// the node's budget.
    pub fn charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, Refused> {
        self.take_own(bytes)?;
        if !self.node.take(bytes) {
            self.held.fetch_sub(bytes, Ordering::AcqRel);
            return Err(Refused::Node {
                budget: self.node.budget,
            });
        }
        Ok(Charge {
            account: self.clone(),
            bytes,
        })
    }

    /// Charges `bytes` the process is owed: the node's total counts them whatever its
    /// budget; refused only past the process's own limit (the caller then ends it).
    pub fn owe(self: &Arc<Self>, bytes: u64) -> Result<Charge, Refused> {
        self.take_own(bytes)?;
        self.node.take_anyway(bytes);
        Ok(Charge {
            account: self.clone(),
            bytes,
        })
    }
}

/// A receipt for bytes the host holds: they are given back when it is dropped.
#[derive(Debug)]
pub struct Charge {
    account: Arc<Account>,
    bytes: u64,
}

impl Charge {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.account.held.fetch_sub(self.bytes, Ordering::AcqRel);
        self.account.node.give_back(self.bytes);
    }
}

/// Something the host holds, with the receipt that pays for it.
#[derive(Debug)]
pub struct Charged<T> {
    pub item: T,
    _charge: Charge,
}

impl<T> Charged<T> {
    pub fn new(item: T, charge: Charge) -> Self {
        Charged {
            item,
            _charge: charge,
        }
    }

    /// The item; its charge is given back.
    pub fn into_inner(self) -> T {
        self.item
    }
}

/// What the host's own bookkeeping for one thing costs beyond its data (a queue slot, a map
/// entry, a receipt): so that empty messages, names and monitors are not free.
pub const OVERHEAD: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_is_given_back_when_dropped_and_refused_past_either_limit() {
        let node = NodeLedger::new(1000);
        let a = Account::new(600, &node);
        let b = Account::new(600, &node);
        let first = a.charge(500).expect("within both");
        assert_eq!((a.held(), node.held()), (500, 500));
        assert_eq!(
            a.charge(200).map(drop),
            Err(Refused::Own {
                held: 500,
                limit: 600,
                wanted: 200
            })
        );
        let second = b.charge(450).expect("within both");
        assert_eq!(
            b.charge(100).map(drop),
            Err(Refused::Node { budget: 1000 }),
            "the node has 50 left"
        );
        assert_eq!(b.held(), 450, "a refusal by the node takes nothing");
        drop((first, second));
        assert_eq!((a.held(), b.held(), node.held()), (0, 0, 0));
    }

    #[test]
    fn what_is_owed_is_counted_past_the_budget_but_not_past_the_account() {
        let node = NodeLedger::new(100);
        let a = Account::new(1000, &node);
        let owed = a
            .owe(300)
            .expect("owed: the node's budget does not refuse it");
        assert_eq!(node.held(), 300);
        assert!(a.charge(1).is_err(), "and the node refuses what is asked");
        assert!(a.owe(800).is_err(), "past its own limit");
        drop(owed);
        assert_eq!(node.held(), 0);
    }
}
