//! `wasmhost:abi/time`: one-shot timers, tickers and a blocking sleep, on tokio's clock.

use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::HasProcess;
use super::bindings::time::{self as wit, Host, HostTicker, HostTimer};
use crate::runtime::{Charge, ProcessCtxView, ProcessView};

pub fn add_to_linker<T: ProcessView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasProcess>(linker, T::process)
}

type Result<T> = wasmtime::Result<T>;

/// The shortest ticker period, so a guest cannot make the host spin.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// What the host keeps for a timer or a ticker, charged to its process.
const TIMER_COST: u64 = 64;

pub struct Timer {
    deadline: Instant,
    _receipt: Charge,
}

pub struct Ticker {
    next: Instant,
    period: Duration,
    _receipt: Charge,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Timer {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.deadline).await
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Ticker {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.next).await
    }
}

impl Host for ProcessCtxView<'_> {
    async fn sleep(&mut self, d: u64) -> Result<()> {
        tokio::time::sleep(Duration::from_nanos(d)).await;
        Ok(())
    }
}

impl HostTimer for ProcessCtxView<'_> {
    fn new(&mut self, d: u64) -> Result<Resource<Timer>> {
        let deadline = Instant::now() + Duration::from_nanos(d);
        let _receipt = self.ctx.hold(TIMER_COST)?;
        Ok(self.table.push(Timer { deadline, _receipt })?)
    }

    fn subscribe(&mut self, timer: Resource<Timer>) -> Result<Resource<DynPollable>> {
        subscribe(self.table, timer)
    }

    fn fired(&mut self, timer: Resource<Timer>) -> Result<bool> {
        Ok(Instant::now() >= self.table.get(&timer)?.deadline)
    }

    fn drop(&mut self, timer: Resource<Timer>) -> Result<()> {
        self.table.delete(timer)?;
        Ok(())
    }
}

impl HostTicker for ProcessCtxView<'_> {
    fn new(&mut self, period: u64) -> Result<Resource<Ticker>> {
        let period = Duration::from_nanos(period).max(MIN_PERIOD);
        let next = Instant::now() + period;
        let _receipt = self.ctx.hold(TIMER_COST)?;
        Ok(self.table.push(Ticker {
            next,
            period,
            _receipt,
        })?)
    }

    fn subscribe(&mut self, ticker: Resource<Ticker>) -> Result<Resource<DynPollable>> {
        subscribe(self.table, ticker)
    }

    fn tick(&mut self, ticker: Resource<Ticker>) -> Result<u64> {
        let ticker = self.table.get_mut(&ticker)?;
        let now = Instant::now();
        if now < ticker.next {
            return Ok(0);
        }
        let behind = now.duration_since(ticker.next);
        let due = (behind.as_nanos() / ticker.period.as_nanos()) as u64 + 1;
        ticker.next += ticker.period * due as u32;
        Ok(due)
    }

    fn drop(&mut self, ticker: Resource<Ticker>) -> Result<()> {
        self.table.delete(ticker)?;
        Ok(())
    }
}
