//! The engine's instance pool, counted before a spawn: a process takes one component
//! instance and, inside it, as many core instances, memories and tables as its component
//! has (a Rust component 1 to 4 core instances, a Python one 14). The pool holds
//! `max_processes` component instances and `max_processes` times the average share of the
//! others (`engine.rs`), so a spawn that would not fit is refused with `limit` instead of
//! failing the new process at instantiation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::engine::{CORE_INSTANCES, MEMORIES, TABLES};

/// What one process of a component takes from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Share {
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

impl Share {
    /// The share of `component`, whose binary is `bytes`.
    pub fn of(component: &wasmtime::component::Component, bytes: &[u8]) -> Share {
        let required = component.resources_required();
        Share {
            core_instances: core_instances(bytes),
            memories: required.as_ref().map_or(MEMORIES, |r| r.num_memories),
            tables: required.as_ref().map_or(TABLES, |r| r.num_tables),
        }
    }
}

/// Core module instantiations in a component, nested components included.
fn core_instances(bytes: &[u8]) -> u32 {
    let mut count = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::InstanceSection(reader)) = payload else {
            continue;
        };
        for instance in reader.into_iter().flatten() {
            if matches!(instance, wasmparser::Instance::Instantiate { .. }) {
                count = count.saturating_add(1);
            }
        }
    }
    count
}

/// Why a process does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::runtime) enum Full {
    /// Every process the pool holds is running (beyond those kept).
    Processes { capacity: u32 },
    /// Its core instances, memories or tables would not fit beside the others'.
    Share {
        what: &'static str,
        in_use: u32,
        limit: u32,
        wanted: u32,
    },
}

/// What is in use, against what the pool holds.
#[derive(Debug, Default, Clone, Copy)]
struct Used {
    processes: u32,
    share: Share,
}

pub(in crate::runtime) struct Pool {
    used: Mutex<Used>,
    capacity: u32,
    /// Processes waking from hibernation that wait for a place, and how they hear of one.
    waiting: AtomicUsize,
    freed: Notify,
}

/// A process's place in the pool, given back when dropped: after its instance is torn down,
/// which is after its exit is reported.
pub(in crate::runtime) struct Reserved {
    pool: Arc<Pool>,
    share: Share,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut used = self.pool.used();
        used.processes -= 1;
        used.share.core_instances -= self.share.core_instances;
        used.share.memories -= self.share.memories;
        used.share.tables -= self.share.tables;
        drop(used);
        if self.pool.waiting.load(Ordering::SeqCst) > 0 {
            self.pool.freed.notify_waiters();
        }
    }
}

impl Pool {
    pub fn new(capacity: u32) -> Arc<Pool> {
        Arc::new(Pool {
            used: Mutex::new(Used::default()),
            capacity,
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    fn used(&self) -> MutexGuard<'_, Used> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// How many processes wait for a place (woken from hibernation into a full pool).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A place for a process of `share` waking from hibernation: it had one, so it takes
    /// one of those kept too, and waits while none is free.
    pub async fn reserve_waiting(self: &Arc<Self>, share: Share, kept: u32) -> Reserved {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            // Listening before looking: a place freed between the two is not missed.
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if let Ok(reserved) = self.reserve(share, kept) {
                return reserved;
            }
            freed.await;
        }
    }

    /// A place for a process of `share`, if it fits beyond the last `kept` processes' worth;
    /// else what is full.
    pub fn reserve(self: &Arc<Self>, share: Share, kept: u32) -> Result<Reserved, Full> {
        let room = self.capacity.saturating_sub(kept);
        let mut used = self.used();
        let checks = [
            ("processes", used.processes, 1, room),
            (
                "core instances",
                used.share.core_instances,
                share.core_instances,
                room.saturating_mul(CORE_INSTANCES),
            ),
            (
                "memories",
                used.share.memories,
                share.memories,
                room.saturating_mul(MEMORIES),
            ),
            (
                "tables",
                used.share.tables,
                share.tables,
                room.saturating_mul(TABLES),
            ),
        ];
        for (what, in_use, wanted, limit) in checks {
            if in_use.saturating_add(wanted) > limit {
                return Err(match what {
                    "processes" => Full::Processes {
                        capacity: self.capacity,
                    },
                    _ => Full::Share {
                        what,
                        in_use,
                        limit,
                        wanted,
                    },
                });
            }
        }
        used.processes += 1;
        used.share.core_instances += share.core_instances;
        used.share.memories += share.memories;
        used.share.tables += share.tables;
        Ok(Reserved {
            pool: self.clone(),
            share,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_components_fill_the_pool_sooner_and_give_their_place_back() {
        let pool = Pool::new(10);
        let python = Share {
            core_instances: 14,
            memories: 1,
            tables: 10,
        };
        let held: Vec<_> = (0..2)
            .map(|_| pool.reserve(python, 0).expect("fits"))
            .collect();
        assert_eq!(
            pool.reserve(python, 0).err(),
            Some(Full::Share {
                what: "core instances",
                in_use: 28,
                limit: 40,
                wanted: 14
            })
        );
        let rust = Share {
            core_instances: 3,
            memories: 1,
            tables: 1,
        };
        let small = pool.reserve(rust, 0).expect("a small one still fits");
        drop(held);
        drop(small);
        let all: Vec<_> = (0..10)
            .map(|_| pool.reserve(rust, 0).expect("fits"))
            .collect();
        assert_eq!(
            pool.reserve(rust, 0).err(),
            Some(Full::Processes { capacity: 10 })
        );
        drop(all);
        let _one = pool.reserve(rust, 9).expect("one beyond the 9 kept");
        assert!(pool.reserve(rust, 9).is_err(), "the last 9 are kept");
    }

    #[test]
    fn core_instances_are_counted_in_nested_components_too() {
        let wat = r#"(component
            (core module $m)
            (core instance (instantiate $m))
            (component $inner
                (core module $n)
                (core instance (instantiate $n))
                (core instance (instantiate $n)))
            (instance (instantiate $inner)))"#;
        let bytes = wat::parse_str(wat).expect("valid text");
        assert_eq!(core_instances(&bytes), 3);
    }
}
