//! CPU time, measured honestly: a process is charged for the CPU time of the thread that
//! polls its task — running wasm, and the host calls it makes — during those polls, and
//! never for the time it waits, nor for the time the OS gives the thread to someone else.
//! (Counting epoch ticks instead would charge an idle process for every wake-up.)

use std::future::Future;
use std::pin::pin;
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
#[derive(Debug, Default)]
pub struct CpuMeter {
    /// Nanoseconds charged by finished polls.
    used: AtomicU64,
    /// The polling thread's CPU time when the poll under way started, plus one; 0 when no
    /// poll is under way.
    since: AtomicU64,
}

impl CpuMeter {
    /// The running time of the finished polls.
    pub fn used(&self) -> Duration {
        Duration::from_nanos(self.used.load(Ordering::Relaxed))
    }

    /// The running time so far, the poll under way included. Only meaningful on the thread
    /// that polls the process (its epoch callback is).
    pub fn used_in_poll(&self) -> Duration {
        let since = self.since.load(Ordering::Relaxed);
        let running = match since {
            0 => 0,
            since => thread_cpu().saturating_sub(since - 1),
        };
        self.used() + Duration::from_nanos(running)
    }

    /// Runs `future` to completion, charging every poll of it to this meter.
    pub async fn metered<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        std::future::poll_fn(|cx| {
            let start = thread_cpu();
            self.since.store(start + 1, Ordering::Relaxed);
            let poll = future.as_mut().poll(cx);
            self.since.store(0, Ordering::Relaxed);
            self.used
                .fetch_add(thread_cpu().saturating_sub(start), Ordering::Relaxed);
            match poll {
                Poll::Ready(out) => Poll::Ready(out),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
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
        let start = thread_cpu();
        assert!(future.as_mut().poll(&mut cx).is_pending());
        let paused = thread_cpu();
        // The process waits while its thread works for something else: not charged.
        let busy = Instant::now();
        while busy.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(0);
        }
        let resumed = thread_cpu();
        assert!(future.as_mut().poll(&mut cx).is_ready());
        let end = thread_cpu();
        let polls = Duration::from_nanos((paused - start) + (end - resumed));
        assert!(meter.used() <= polls, "{:?} > {polls:?}", meter.used());
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
