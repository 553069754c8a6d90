//! Time: `sleep`, one-shot timers (`after`) and tickers, with durations like `"5s"`.
//! Waiting here lets the process's other tasks run.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::bindings::wasi::io::poll::Pollable;
use crate::bindings::wasmhost::abi::time as abi;
use crate::rt::{WaitFor, wait_for};

/// Something that names a duration: a `Duration`, or text like `"100ms"`, `"5s"`, `"2m"`.
pub trait IntoDuration {
    fn into_duration(self) -> Duration;
}

impl IntoDuration for Duration {
    fn into_duration(self) -> Duration {
        self
    }
}

impl IntoDuration for &str {
    /// Panics on text that is not a duration: that is a bug in the guest, like a bad
    /// format string.
    fn into_duration(self) -> Duration {
        match humantime::parse_duration(self) {
            Ok(d) => d,
            Err(err) => {
                panic!("`{self}` is not a duration ({err}); write e.g. \"100ms\" or \"5s\"")
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Waits for `d`; the process's other tasks keep running.
pub async fn sleep(d: impl IntoDuration) {
    after(d).await
}

/// A timer that fires once; await it (or put it in `select!`).
pub struct Timer {
    wait: WaitFor,
    // Dropped after `wait`: a pollable must go before its parent.
    _ready: Rc<Pollable>,
    _timer: abi::Timer,
}

/// Returns a timer that fires `d` from now (the seed's `time.after`).
pub fn after(d: impl IntoDuration) -> Timer {
    let timer = abi::Timer::new(nanos(d.into_duration()));
    let ready = Rc::new(timer.subscribe());
    Timer {
        wait: wait_for(&ready),
        _ready: ready,
        _timer: timer,
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.wait).poll(cx)
    }
}

/// A periodic timer.
pub struct Ticker {
    // Declared first so it is dropped first: a pollable must go before its parent.
    ready: Rc<Pollable>,
    ticker: abi::Ticker,
}

/// Returns a ticker that ticks every `period`.
pub fn ticker(period: impl IntoDuration) -> Ticker {
    let ticker = abi::Ticker::new(nanos(period.into_duration()));
    Ticker {
        ready: Rc::new(ticker.subscribe()),
        ticker,
    }
}

impl Ticker {
    /// Waits for the next tick; returns how many ticks were due (more than 1 if the process
    /// fell behind).
    pub async fn tick(&self) -> u64 {
        loop {
            let due = self.ticker.tick();
            if due > 0 {
                return due;
            }
            wait_for(&self.ready).await;
        }
    }
}
