//! CPU time, measured honestly: a process is charged for the time its task spends being
//! polled — running wasm, and the host calls it makes — and never for the time it waits.
//! (Counting epoch ticks instead would charge an idle process for every wake-up.)
//!
//! A short poll (most are: a message handled, a spawn made) is charged its wall-clock time,
//! which costs a vDSO clock read. A poll that runs into an epoch tick is a process that
//! computes; from that tick on it is charged its thread's CPU time (a system call per tick),
//! so time the OS gives the thread to someone else is not charged to it.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

/// The CPU time of the calling thread, in nanoseconds.
fn thread_cpu() -> u64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// A process's running time.
#[derive(Debug)]
pub struct CpuMeter {
    base: Instant,
    /// Nanoseconds charged so far.
    used: AtomicU64,
    /// When the poll under way started, in nanoseconds after `base` plus one; 0 when none is.
    since: AtomicU64,
    /// Once the poll under way has run into a tick: its thread's CPU time when it was last
    /// charged, plus one; 0 until then.
    cpu_mark: AtomicU64,
}

impl Default for CpuMeter {
    fn default() -> Self {
        CpuMeter {
            base: Instant::now(),
            used: AtomicU64::new(0),
            since: AtomicU64::new(0),
            cpu_mark: AtomicU64::new(0),
        }
    }
}

impl CpuMeter {
    fn wall(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64 + 1
    }

    fn charge(&self, nanos: u64) -> u64 {
        self.used.fetch_add(nanos, Ordering::Relaxed) + nanos
    }

    /// When the meter, and its process, started.
    pub fn started(&self) -> Instant {
        self.base
    }

    /// The running time charged so far.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.used.load(Ordering::Relaxed))
    }

    /// Whether the poll under way has not yet run into a tick: a process that has just been
    /// woken, meeting a deadline that passed while it waited, not one that computes.
    pub fn before_first_tick(&self) -> bool {
        self.cpu_mark.load(Ordering::Relaxed) == 0
    }

    /// Charges the poll under way up to now and returns the running time so far. Called by
    /// the process's epoch callback, on the thread that polls it.
    pub fn tick(&self) -> Duration {
        let mark = self.cpu_mark.load(Ordering::Relaxed);
        let cpu = thread_cpu();
        let used = if mark == 0 {
            // The first tick of a long poll: its wall time so far, then CPU time from here.
            let since = self.since.swap(0, Ordering::Relaxed);
            match since {
                0 => self.used.load(Ordering::Relaxed),
                since => self.charge(self.wall().saturating_sub(since)),
            }
        } else {
            self.charge(cpu.saturating_sub(mark - 1))
        };
        self.cpu_mark.store(cpu + 1, Ordering::Relaxed);
        Duration::from_nanos(used)
    }

    /// Runs `future` to completion, charging every poll of it to this meter. (A plain
    /// future, not an `async fn`: that would hold `future` twice, as its argument and pinned.)
    pub fn metered<F: Future>(&self, future: F) -> Metered<'_, F> {
        Metered {
            meter: self,
            future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A future whose every poll is charged to a [`CpuMeter`].
    pub struct Metered<'a, F> {
        meter: &'a CpuMeter,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Metered<'_, F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let meter = *this.meter;
        meter.since.store(meter.wall(), Ordering::Relaxed);
        let poll = this.future.poll(cx);
        let mark = meter.cpu_mark.swap(0, Ordering::Relaxed);
        let since = meter.since.swap(0, Ordering::Relaxed);
        if mark != 0 {
            meter.charge(thread_cpu().saturating_sub(mark - 1));
        } else if since != 0 {
            meter.charge(meter.wall().saturating_sub(since));
        }
        poll
    }
}

/// Keeps a process within a share of one core (`cpu_rate`): a token bucket of running time
/// that fills at the rate and holds at most one second's worth; a process that has run
/// ahead of it is paused for as long as it takes to catch up.
pub struct Throttle {
    per_mille: u32,
    /// Running time it may still use, in nanoseconds (negative: it is ahead).
    tokens: i128,
    last_check: Instant,
    last_used: Duration,
}

impl Throttle {
    pub fn new(per_mille: u32) -> Self {
        Throttle {
            per_mille: per_mille.clamp(1, 1000),
            tokens: 0,
            last_check: Instant::now(),
            last_used: Duration::ZERO,
        }
    }

    /// How long to pause at `now`, given the meter's running time.
    pub fn pause(&mut self, used: Duration, now: Instant) -> Option<Duration> {
        let rate = i128::from(self.per_mille);
        let earned = now.duration_since(self.last_check).as_nanos() as i128 * rate / 1000;
        let spent = used.saturating_sub(self.last_used).as_nanos() as i128;
        let cap = 1_000_000_000 * rate / 1000;
        self.tokens = (self.tokens + earned).min(cap) - spent;
        self.last_check = now;
        self.last_used = used;
        (self.tokens < 0).then(|| Duration::from_nanos((-self.tokens * 1000 / rate) as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;

    use super::*;

    /// The meter charges the polls, and not the wait between them.
    #[test]
    fn waiting_is_not_charged() {
        use std::task::{Context, Waker};
        let meter = CpuMeter::default();
        let mut first = true;
        let pending_once = std::future::poll_fn(|_| {
            if std::mem::take(&mut first) {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        });
        let mut future = pin!(meter.metered(pending_once));
        let mut cx = Context::from_waker(Waker::noop());
        let start = Instant::now();
        assert!(future.as_mut().poll(&mut cx).is_pending());
        let first_poll = start.elapsed();
        // The process waits here: not charged.
        std::thread::sleep(Duration::from_millis(20));
        let resumed = Instant::now();
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let polls = first_poll + resumed.elapsed();
        assert!(meter.used() <= polls, "{:?} > {polls:?}", meter.used());
    }

    /// A long poll is charged its thread's CPU time from its first tick on: time its thread
    /// spends off the CPU (here, asleep) is not charged.
    #[test]
    fn a_long_poll_is_charged_cpu_time_from_its_first_tick() {
        use std::task::{Context, Waker};
        let meter = CpuMeter::default();
        let work = std::future::poll_fn(|_| {
            assert_eq!(
                meter.tick(),
                meter.used(),
                "the first tick charges the poll so far"
            );
            let before = meter.used();
            std::thread::sleep(Duration::from_millis(50));
            let after = meter.tick();
            assert!(
                after - before < Duration::from_millis(25),
                "{:?}",
                after - before
            );
            Poll::Ready(())
        });
        let mut future = pin!(meter.metered(work));
        assert!(
            future
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        );
        assert!(
            meter.used() < Duration::from_millis(25),
            "{:?}",
            meter.used()
        );
    }

    #[test]
    fn a_process_ahead_of_its_rate_is_paused_until_it_catches_up() {
        let mut throttle = Throttle::new(250);
        let start = throttle.last_check;
        // 10 ms of running at once is 40 ms of a quarter core.
        let pause = throttle.pause(Duration::from_millis(10), start);
        assert_eq!(pause, Some(Duration::from_millis(40)));
        // 40 ms later it has caught up; running 1 ms more is within its rate.
        let later = start + Duration::from_millis(44);
        assert_eq!(throttle.pause(Duration::from_millis(11), later), None);
    }
}
