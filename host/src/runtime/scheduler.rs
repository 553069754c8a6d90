//! Where processes run: wasmhost's own work-stealing scheduler, a few threads that poll the
//! processes' tasks.
//!
//! Why not tokio's: there a chain of wake-ups (a message and its answer, a spawn and its
//! EXIT) stays on its thread for three hand-overs at most; then the task goes to the run
//! queue, a parked worker is woken to steal it, and the chain hops between threads from then
//! on. Measured, every one-at-a-time scenario ran 1.5–2× faster on one thread than on two
//! (README, Benchmarks). Here, as in Go's scheduler:
//!
//! - a task woken (or spawned) by a task on a worker goes to that worker's `next` slot and
//!   runs as soon as the waker yields: a chain of processes runs on one thread, without a
//!   hand-over through another, however long it is. The slot cannot be stolen.
//! - what the slot held before goes to the worker's `woken` queue; once two tasks wait there
//!   is more work than the thread can do at once, and a sleeping worker is woken to steal
//!   half. Wake-ups from elsewhere (timers, I/O, the CLI) go to a shared queue.
//! - a task that wakes itself while it runs (a spinning guest yields at every epoch tick)
//!   goes to the worker's `yielded` queue. Woken tasks go first, so a process that answers
//!   messages is not sent behind every spinning guest on a saturated node; every
//!   `YIELDED_TURN`-th task comes from `yielded` first, so spinning ones are never starved.
//! - a worker takes from `next` at most `MAX_NEXT_RUNS` times in a row while others wait.
//! - a watchdog thread looks every `WATCH_INTERVAL` while any worker is awake: a task left
//!   waiting in a queue (the one task not worth a wake-up, behind a poll that then ran long)
//!   gets a sleeping worker to steal it. When every worker sleeps, so does the watchdog.
//!
//! Time and I/O are tokio's: every worker enters the runtime the node was built in, and the
//! node's tasks are cancelled when that runtime shuts down, as tokio's own tasks are.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::thread::Thread;

use async_task::{Runnable, ScheduleInfo, Task, WithInfo};
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use dashmap::DashMap;
use futures::FutureExt;
use tokio::runtime::Handle;

/// How many tasks in a row a worker takes from its `next` slot while others wait.
const MAX_NEXT_RUNS: u32 = 32;

/// How often (in tasks run) a worker looks at the shared queue before its own.
const SHARED_QUEUE_INTERVAL: u32 = 61;

/// How often (in tasks taken from the queues) the `yielded` queue goes before `woken`.
const YIELDED_TURN: u32 = 4;

/// How long a task may wait in a busy worker's queue while another worker sleeps.
const WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

static NEXT_SCHEDULER: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The worker this thread is, if it is one.
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// A worker thread's own state.
struct Local {
    scheduler: usize,
    queues: Queues,
    next: Option<Runnable>,
    /// Tasks run in a row from `next`.
    next_runs: u32,
    /// Tasks taken from the queues.
    taken: u32,
}

/// A worker's two queues (see the module's comment).
struct Queues {
    woken: Worker<Runnable>,
    yielded: Worker<Runnable>,
}

impl Queues {
    fn new() -> Queues {
        Queues {
            woken: Worker::new_fifo(),
            yielded: Worker::new_fifo(),
        }
    }

    fn len(&self) -> usize {
        self.woken.len() + self.yielded.len()
    }

    fn pop(&self, yielded_first: bool) -> Option<Runnable> {
        if yielded_first {
            self.yielded.pop().or_else(|| self.woken.pop())
        } else {
            self.woken.pop().or_else(|| self.yielded.pop())
        }
    }
}

/// A set of worker threads and the tasks they run. Dropping it (or shutting down the runtime
/// it takes time from) cancels the tasks and ends the threads.
pub(super) struct Scheduler {
    shared: Arc<Shared>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

struct Shared {
    id: usize,
    injector: Injector<Runnable>,
    /// Each worker's `woken` and `yielded` queues, for thieves.
    stealers: Vec<[Stealer<Runnable>; 2]>,
    workers: Vec<Sleeper>,
    /// How many workers are asleep (or falling asleep).
    sleeping: AtomicUsize,
    /// Every task not yet ended, so shutting down can cancel them.
    tasks: DashMap<u64, Task<()>>,
    next_task: AtomicU64,
    stopping: AtomicBool,
    clock: Handle,
    watchdog: Sleeper,
}

struct Sleeper {
    thread: std::sync::OnceLock<Thread>,
    asleep: AtomicBool,
}

impl Scheduler {
    /// Starts `threads` workers named `name-N`, which take time and I/O from `clock`.
    pub fn start(threads: usize, name: &str, clock: Handle) -> std::io::Result<Scheduler> {
        let threads = threads.max(1);
        let queues: Vec<Queues> = (0..threads).map(|_| Queues::new()).collect();
        let shared = Arc::new(Shared {
            id: NEXT_SCHEDULER.fetch_add(1, Ordering::Relaxed),
            injector: Injector::new(),
            stealers: queues
                .iter()
                .map(|q| [q.woken.stealer(), q.yielded.stealer()])
                .collect(),
            workers: (0..threads)
                .map(|_| Sleeper {
                    thread: std::sync::OnceLock::new(),
                    asleep: AtomicBool::new(false),
                })
                .collect(),
            sleeping: AtomicUsize::new(0),
            tasks: DashMap::new(),
            next_task: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            clock: clock.clone(),
            watchdog: Sleeper {
                thread: std::sync::OnceLock::new(),
                asleep: AtomicBool::new(false),
            },
        });
        let started = queues
            .into_iter()
            .enumerate()
            .try_for_each(|(index, queues)| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{index}"))
                    .spawn(move || shared.work(index, queues))
                    .map(drop)
            });
        let started = started.and_then(|()| {
            let watched = shared.clone();
            std::thread::Builder::new()
                .name(format!("{name}-watch"))
                .spawn(move || watched.watch())
                .map(drop)
        });
        if let Err(err) = started {
            // The threads that did start end at once.
            shared.stop();
            return Err(err);
        }
        // Tasks end with the runtime that gives them time, as tokio's own do: this task is
        // dropped when that runtime shuts down, and cancels the rest.
        let guard = StopOnDrop(shared.clone());
        clock.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        Ok(Scheduler { shared })
    }

    /// Runs `future` on one of the workers. Once the scheduler has stopped (its runtime shut
    /// down), `future` is dropped unpolled.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        let shared = &self.shared;
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let id = shared.next_task.fetch_add(1, Ordering::Relaxed);
        // Both hold the scheduler until the task ends (or the scheduler stops and cancels it).
        // (`map`, not an `async` block awaiting `future`: that would hold it twice, 6 KiB more
        // for a process.)
        let ended = shared.clone();
        let body = future.map(move |()| {
            if let Some((_, task)) = ended.tasks.remove(&id) {
                task.detach();
            }
        });
        let schedule = {
            let shared = shared.clone();
            WithInfo(move |runnable: Runnable, info: ScheduleInfo| {
                shared.schedule(runnable, info.woken_while_running)
            })
        };
        let (runnable, task) = async_task::spawn(body, schedule);
        shared.tasks.insert(id, task);
        runnable.schedule();
    }

    /// How many worker threads there are.
    pub fn threads(&self) -> usize {
        self.shared.workers.len()
    }

    /// How many tasks have not ended.
    pub fn tasks(&self) -> usize {
        self.shared.tasks.len()
    }

    /// The runtime that gives the tasks time and I/O.
    pub fn clock(&self) -> &Handle {
        &self.shared.clock
    }
}

impl Shared {
    /// A worker thread: runs tasks until the scheduler stops and nothing is left to run.
    fn work(self: Arc<Self>, index: usize, queues: Queues) {
        let _ = self.workers[index].thread.set(std::thread::current());
        let _clock = self.clock.enter();
        LOCAL.with(|local| {
            *local.borrow_mut() = Some(Local {
                scheduler: self.id,
                queues,
                next: None,
                next_runs: 0,
                taken: 0,
            })
        });
        let mut runs = 0u32;
        loop {
            runs = runs.wrapping_add(1);
            let task = if runs.is_multiple_of(SHARED_QUEUE_INTERVAL) {
                self.take_shared().or_else(|| self.find(index))
            } else {
                self.find(index)
            };
            match task {
                // A panic escaping a task (the process's own task catches the host's) must
                // not take the worker with it.
                Some(task) => {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| task.run()));
                }
                None if self.stopping.load(Ordering::Acquire) => break,
                None => self.sleep(index),
            }
        }
        LOCAL.with(|local| local.borrow_mut().take());
    }

    /// The next task for worker `index`: its `next` slot, its queues, the shared queue, or
    /// half of another worker's queue.
    fn find(&self, index: usize) -> Option<Runnable> {
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = local.as_mut()?;
            if let Some(task) = local.next.take() {
                if local.next_runs < MAX_NEXT_RUNS || local.queues.len() == 0 {
                    local.next_runs += 1;
                    return Some(task);
                }
                // The chain has had its turn: behind the others.
                local.queues.woken.push(task);
            }
            local.next_runs = 0;
            local.taken = local.taken.wrapping_add(1);
            if let Some(task) = local.queues.pop(local.taken.is_multiple_of(YIELDED_TURN)) {
                return Some(task);
            }
            let stolen = self.steal(index, &local.queues.woken);
            // What came with it can be stolen in turn.
            if stolen.is_some() && !local.queues.woken.is_empty() {
                self.wake_one();
            }
            stolen
        })
    }

    /// A batch from the shared queue, or else half of another worker's queue (woken tasks
    /// first), into `into`; one of them to run now.
    fn steal(&self, index: usize, into: &Worker<Runnable>) -> Option<Runnable> {
        let workers = self.stealers.len();
        std::iter::repeat_with(|| {
            self.injector.steal_batch_and_pop(into).or_else(|| {
                // From the next worker on, so that thieves spread out.
                (0..2)
                    .flat_map(|queue| (1..workers).map(move |i| ((index + i) % workers, queue)))
                    .map(|(victim, queue)| self.stealers[victim][queue].steal_batch_and_pop(into))
                    .collect()
            })
        })
        .find(|s| !s.is_retry())
        .and_then(Steal::success)
    }

    fn take_shared(&self) -> Option<Runnable> {
        std::iter::repeat_with(|| self.injector.steal())
            .find(|s| !s.is_retry())
            .and_then(Steal::success)
    }

    /// Queues a woken task: on this worker if the waker runs on one, else on the shared queue.
    fn schedule(&self, task: Runnable, woken_while_running: bool) {
        let queued = LOCAL.with(|local| {
            let Ok(mut local) = local.try_borrow_mut() else {
                return Err(task);
            };
            match local.as_mut() {
                Some(local) if local.scheduler == self.id => {
                    if woken_while_running {
                        // It yielded: the others go first.
                        local.queues.yielded.push(task);
                    } else if let Some(previous) = local.next.replace(task) {
                        local.queues.woken.push(previous);
                    } else {
                        // The slot was empty: nothing new for another worker to steal.
                        return Ok(false);
                    }
                    // One task waiting is soon run here (an EXIT and an answer woken by one
                    // process); waking a thread to steal it would cost more than it saves.
                    Ok(local.queues.len() > 1)
                }
                _ => Err(task),
            }
        });
        match queued {
            Ok(false) => {}
            Ok(true) => self.wake_one(),
            Err(task) => {
                self.injector.push(task);
                self.wake_one();
            }
        }
    }

    /// Wakes a sleeping worker, if there is one.
    fn wake_one(&self) {
        // Pairs with the fence in `sleep`: either the sleeper sees the work just queued, or
        // this sees the sleeper.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) == 0 {
            return;
        }
        for worker in &self.workers {
            if worker
                .asleep
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                if let Some(thread) = worker.thread.get() {
                    thread.unpark();
                }
                return;
            }
        }
    }

    /// Whether a task waits in any worker's queue.
    fn queued(&self) -> bool {
        self.stealers.iter().flatten().any(|s| !s.is_empty())
    }

    /// Puts worker `index` to sleep until work is queued for it to find.
    fn sleep(&self, index: usize) {
        let me = &self.workers[index];
        me.asleep.store(true, Ordering::SeqCst);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let work =
            !self.injector.is_empty() || self.queued() || self.stopping.load(Ordering::SeqCst);
        if work {
            if me.asleep.swap(false, Ordering::SeqCst) {
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
            }
        } else {
            // `park` may return without an unpark: sleep on until a waker takes us off.
            while me.asleep.load(Ordering::SeqCst) {
                std::thread::park();
            }
        }
        // Awake again (the watchdog may have seen every worker asleep): it looks again too.
        if self.watchdog.asleep.swap(false, Ordering::SeqCst)
            && let Some(watchdog) = self.watchdog.thread.get()
        {
            watchdog.unpark();
        }
    }

    /// The watchdog thread: while any worker is awake, wakes a sleeping one every
    /// `WATCH_INTERVAL` if a task waits in a queue; sleeps while every worker does.
    fn watch(self: Arc<Self>) {
        let _ = self.watchdog.thread.set(std::thread::current());
        let all_asleep = || self.sleeping.load(Ordering::SeqCst) >= self.workers.len();
        while !self.stopping.load(Ordering::SeqCst) {
            if all_asleep() {
                self.watchdog.asleep.store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                // A worker waking after this sees the flag and unparks us.
                while all_asleep()
                    && self.watchdog.asleep.load(Ordering::SeqCst)
                    && !self.stopping.load(Ordering::SeqCst)
                {
                    std::thread::park();
                }
                self.watchdog.asleep.store(false, Ordering::SeqCst);
                continue;
            }
            std::thread::sleep(WATCH_INTERVAL);
            if self.queued() {
                self.wake_one();
            }
        }
    }

    /// Cancels every task and lets the workers end once they have dropped them.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let ids: Vec<u64> = self.tasks.iter().map(|entry| *entry.key()).collect();
        // Dropped outside the map's locks: an idle task is queued once more, to be dropped.
        let tasks: Vec<Task<()>> = ids
            .into_iter()
            .filter_map(|id| self.tasks.remove(&id).map(|(_, task)| task))
            .collect();
        drop(tasks);
        for _ in 0..self.workers.len() {
            self.wake_one();
        }
        if let Some(watchdog) = self.watchdog.thread.get() {
            watchdog.unpark();
        }
    }
}

/// Stops the scheduler when dropped.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::ThreadId;
    use std::time::Duration;

    use tokio::sync::mpsc as channel;

    use super::*;

    /// Long enough for anything here to happen many times over; reaching it is a failure.
    const BOUND: Duration = Duration::from_secs(20);

    fn clock() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    }

    /// Returns `Pending` once, having woken itself: what a guest does at an epoch tick.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if std::mem::replace(&mut self.0, true) {
                return std::task::Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }

    #[test]
    fn a_chain_of_wake_ups_stays_on_one_thread() {
        let clock = clock();
        let scheduler =
            Arc::new(Scheduler::start(2, "test", clock.handle().clone()).expect("threads"));
        let (done, finished) = mpsc::channel::<Vec<ThreadId>>();
        let inner = scheduler.clone();
        scheduler.spawn(async move {
            let (to_b, mut at_b) = channel::channel::<u32>(1);
            let (to_a, mut at_a) = channel::channel::<u32>(1);
            let (b_done, b_threads) = tokio::sync::oneshot::channel();
            inner.spawn(async move {
                let mut threads = Vec::new();
                while let Some(n) = at_b.recv().await {
                    threads.push(std::thread::current().id());
                    let _ = to_a.send(n + 1).await;
                }
                let _ = b_done.send(threads);
            });
            let mut threads = Vec::new();
            for n in 0..1_000 {
                let _ = to_b.send(n).await;
                assert_eq!(at_a.recv().await, Some(n + 1));
                threads.push(std::thread::current().id());
            }
            drop(to_b);
            threads.extend(b_threads.await.unwrap_or_default());
            let _ = done.send(threads);
        });
        let threads = finished.recv_timeout(BOUND).expect("the chain ran");
        assert_eq!(threads.len(), 2_000);
        assert!(
            threads.iter().all(|t| *t == threads[0]),
            "every hand-over on the thread that made it"
        );
    }

    /// Waits until every worker of `scheduler` has gone to sleep, having found nothing to do.
    fn until_all_asleep(scheduler: &Scheduler) {
        let shared = &scheduler.shared;
        let deadline = std::time::Instant::now() + BOUND;
        while shared
            .workers
            .iter()
            .any(|w| !w.asleep.load(Ordering::SeqCst))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the workers never slept"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_task_left_in_a_busy_workers_queue_is_stolen() {
        let clock = clock();
        let scheduler =
            Arc::new(Scheduler::start(2, "test", clock.handle().clone()).expect("threads"));
        // So that one worker is woken for the first task and the other sleeps on.
        until_all_asleep(&scheduler);
        let (done, finished) = mpsc::channel::<bool>();
        let inner = scheduler.clone();
        scheduler.spawn(async move {
            // Each blocks its thread until the other has run: they meet only on two threads.
            // The second spawn takes the `next` slot, the first waits in the queue alone,
            // which wakes no thread: the watchdog must.
            let (a_ran, a_done) = mpsc::channel::<()>();
            let (b_ran, b_done) = mpsc::channel::<()>();
            let a_met = done.clone();
            inner.spawn(async move {
                let _ = a_ran.send(());
                let _ = a_met.send(b_done.recv_timeout(BOUND).is_ok());
            });
            inner.spawn(async move {
                let _ = b_ran.send(());
                let _ = done.send(a_done.recv_timeout(BOUND).is_ok());
            });
        });
        for _ in 0..2 {
            assert_eq!(
                finished.recv_timeout(BOUND * 2),
                Ok(true),
                "both ran at once"
            );
        }
    }

    #[test]
    fn a_task_that_keeps_yielding_leaves_room_for_the_others() {
        let clock = clock();
        let scheduler = Scheduler::start(1, "test", clock.handle().clone()).expect("threads");
        let stop = Arc::new(AtomicBool::new(false));
        let (done, spun) = mpsc::channel();
        let spinning = stop.clone();
        scheduler.spawn(async move {
            let mut turns = 0u64;
            while !spinning.load(Ordering::Acquire) {
                YieldOnce(false).await;
                turns += 1;
            }
            let _ = done.send(turns);
        });
        // Queued from outside while the only worker spins: it must still get a turn.
        scheduler.spawn(async move { stop.store(true, Ordering::Release) });
        let turns = spun.recv_timeout(BOUND).expect("the spinner was stopped");
        assert!(turns >= 1, "the spinner ran before it was stopped");
    }

    #[test]
    fn a_panicking_task_leaves_its_worker_running() {
        let clock = clock();
        let scheduler = Scheduler::start(1, "test", clock.handle().clone()).expect("threads");
        scheduler.spawn(async { panic!("a bug in a task") });
        let (done, ran) = mpsc::channel();
        scheduler.spawn(async move {
            let _ = done.send(std::thread::current().name().map(str::to_owned));
        });
        let name = ran.recv_timeout(BOUND).expect("the next task ran");
        assert_eq!(name.as_deref(), Some("test-0"));
    }

    #[test]
    fn tasks_are_cancelled_when_their_runtime_shuts_down() {
        struct Dropped(mpsc::Sender<()>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let clock = clock();
        let scheduler = Scheduler::start(2, "test", clock.handle().clone()).expect("threads");
        let (dropped, cancelled) = mpsc::channel();
        let (started, running) = mpsc::channel();
        scheduler.spawn(async move {
            let _guard = Dropped(dropped);
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        running.recv_timeout(BOUND).expect("the task started");
        assert_eq!(scheduler.tasks(), 1);
        drop(clock);
        cancelled
            .recv_timeout(BOUND)
            .expect("its future was dropped");
        assert_eq!(scheduler.tasks(), 0);
        // And nothing new starts.
        scheduler.spawn(async {});
        assert_eq!(scheduler.tasks(), 0);
    }
}
