//! The process's executor: runs the entry point and the tasks it spawns on the process's
//! single thread, and when every task waits, blocks in one `wasi:io/poll` call on all the
//! pollables they wait for (mailbox, events, timers), then wakes the tasks whose pollables
//! are ready.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::bindings::wasi::io::poll::{Pollable, poll};
use crate::bindings::wasmhost::abi::process::Mailbox;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The entry point's slot among the tasks.
const MAIN: usize = usize::MAX;

/// A pollable some task waits on, and the task's waker.
struct Wait {
    key: u64,
    pollable: Rc<Pollable>,
    waker: Waker,
    /// The mailbox, when `pollable` is its readiness: a lone wait on it takes the message.
    mailbox: Option<Rc<Mailbox>>,
}

#[derive(Default)]
struct Reactor {
    waits: Vec<Wait>,
    next_key: u64,
    /// Tasks spawned since the executor last looked.
    spawned: Vec<Task>,
    /// The entry point's arguments and the state it woke with, kept for hibernation
    /// (`hibernation.rs`). Here, not in statics of their own: a static written at every start
    /// dirties a page of linear memory of its own, 3.2 KiB more for every live process
    /// (`bench/run live`), where this one is written by every process that waits.
    args: Vec<Vec<u8>>,
    resumed: Option<Vec<u8>>,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::new(Reactor::default());
}

/// Keeps the entry point's arguments and the state it woke with, for `hibernate`.
pub(crate) fn keep(args: Vec<Vec<u8>>, resumed: Option<Vec<u8>>) {
    REACTOR.with(|r| {
        let mut r = r.borrow_mut();
        r.args = args;
        r.resumed = resumed;
    });
}

/// `f` of the kept arguments and state.
pub(crate) fn with_kept<T>(f: impl FnOnce(&[Vec<u8>], Option<&[u8]>) -> T) -> T {
    REACTOR.with(|r| {
        let r = r.borrow();
        f(&r.args, r.resumed.as_deref())
    })
}

/// Runs `task` concurrently with the rest of the process: it shares the process's memory
/// and runs whenever the others wait. Tasks end when the entry point returns (the seed's
/// `coroutine.spawn`).
pub fn spawn_task(task: impl Future<Output = ()> + 'static) {
    REACTOR.with(|r| r.borrow_mut().spawned.push(Box::pin(task)));
}

/// Wakes a task by putting its slot on the run queue.
struct TaskWaker {
    slot: usize,
    queue: Arc<Mutex<Vec<usize>>>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if !queue.contains(&self.slot) {
            queue.push(self.slot);
        }
    }
}

/// Runs `main` and the tasks it spawns until `main` completes.
pub fn block_on<F: Future>(main: F) -> F::Output {
    let queue = Arc::new(Mutex::new(vec![MAIN]));
    let waker_for = |slot| {
        Waker::from(Arc::new(TaskWaker {
            slot,
            queue: queue.clone(),
        }))
    };
    let main_waker = waker_for(MAIN);
    let mut main = std::pin::pin!(main);
    let mut tasks: Vec<Option<Task>> = Vec::new();

    loop {
        let runnable = std::mem::take(&mut *queue.lock().unwrap_or_else(|e| e.into_inner()));
        for slot in runnable {
            if slot == MAIN {
                if let Poll::Ready(out) = main.as_mut().poll(&mut Context::from_waker(&main_waker))
                {
                    // Tasks end with the entry point; their waits go with them.
                    drop(tasks);
                    REACTOR.with(|r| std::mem::take(&mut *r.borrow_mut()));
                    return out;
                }
            } else if let Some(task) = tasks.get_mut(slot).and_then(Option::as_mut) {
                let waker = waker_for(slot);
                if task
                    .as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_ready()
                {
                    tasks[slot] = None;
                }
            }
        }

        let spawned = REACTOR.with(|r| std::mem::take(&mut r.borrow_mut().spawned));
        for task in spawned {
            let slot = match tasks.iter().position(Option::is_none) {
                Some(free) => {
                    tasks[free] = Some(task);
                    free
                }
                None => {
                    tasks.push(Some(task));
                    tasks.len() - 1
                }
            };
            queue.lock().unwrap_or_else(|e| e.into_inner()).push(slot);
        }

        if queue.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            wait_for_pollables();
        }
    }
}

/// Blocks until at least one waited-for pollable is ready, then wakes its tasks. When all
/// the process waits for is its mailbox, it waits in `receive-many` instead, which hands over
/// the messages it waited for.
fn wait_for_pollables() {
    let lone_mailbox = REACTOR.with(|r| match r.borrow().waits.as_slice() {
        [wait] => wait.mailbox.clone(),
        _ => None,
    });
    if let Some(mailbox) = lone_mailbox {
        crate::process::keep_taken(mailbox.receive_many(crate::process::TAKE_AT_ONCE));
        let woken = REACTOR.with(|r| std::mem::take(&mut r.borrow_mut().waits));
        for wait in woken {
            wait.waker.wake();
        }
        return;
    }
    let pollables: Vec<Rc<Pollable>> = REACTOR.with(|r| {
        r.borrow()
            .waits
            .iter()
            .map(|w| w.pollable.clone())
            .collect()
    });
    if pollables.is_empty() {
        // Every task waits on something only another task could provide: nothing ever
        // will. Ending with a clear message beats hanging forever.
        panic!("deadlock: every task of this process is waiting, and on nothing the host can wake");
    }
    let list: Vec<&Pollable> = pollables.iter().map(|p| &**p).collect();
    let ready = poll(&list);
    let wakers: Vec<Waker> = REACTOR.with(|r| {
        let mut reactor = r.borrow_mut();
        let ready: Vec<&Rc<Pollable>> = ready.iter().map(|&i| &pollables[i as usize]).collect();
        let (woken, waiting): (Vec<Wait>, Vec<Wait>) = std::mem::take(&mut reactor.waits)
            .into_iter()
            .partition(|w| ready.iter().any(|p| Rc::ptr_eq(p, &w.pollable)));
        reactor.waits = waiting;
        woken.into_iter().map(|w| w.waker).collect()
    });
    for waker in wakers {
        waker.wake();
    }
}

/// A future that resolves once `pollable` is ready.
pub(crate) struct WaitFor {
    pollable: Rc<Pollable>,
    key: Option<u64>,
    mailbox: Option<Rc<Mailbox>>,
}

pub(crate) fn wait_for(pollable: &Rc<Pollable>) -> WaitFor {
    WaitFor {
        pollable: pollable.clone(),
        key: None,
        mailbox: None,
    }
}

/// A future that resolves once the mailbox whose readiness is `pollable` holds a message, or
/// once the executor has taken messages from it for this wait.
pub(crate) fn wait_for_mailbox(pollable: &Rc<Pollable>, mailbox: &Rc<Mailbox>) -> WaitFor {
    WaitFor {
        pollable: pollable.clone(),
        key: None,
        mailbox: Some(mailbox.clone()),
    }
}

impl WaitFor {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            REACTOR.with(|r| r.borrow_mut().waits.retain(|w| w.key != key));
        }
    }
}

impl Future for WaitFor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // No `ready()` call here: each is a host call. A new wait is registered and answered
        // by the executor's one `poll` of all waits (at once if the pollable is already
        // ready); a wait the executor has removed was woken because its pollable was ready.
        if let Some(key) = self.key {
            let waiting = REACTOR.with(|r| {
                let mut reactor = r.borrow_mut();
                let wait = reactor.waits.iter_mut().find(|w| w.key == key);
                wait.map(|w| w.waker.clone_from(cx.waker())).is_some()
            });
            if waiting {
                return Poll::Pending;
            }
            self.key = None;
            return Poll::Ready(());
        }
        let pollable = self.pollable.clone();
        let mailbox = self.mailbox.clone();
        let key = REACTOR.with(|r| {
            let mut reactor = r.borrow_mut();
            reactor.next_key += 1;
            let key = reactor.next_key;
            reactor.waits.push(Wait {
                key,
                pollable,
                waker: cx.waker().clone(),
                mailbox,
            });
            key
        });
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        self.unregister();
    }
}
