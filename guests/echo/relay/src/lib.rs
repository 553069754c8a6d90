//! The echo relay (relay.lua): registers as `relay`, spawns a monitored worker per `echo`
//! message, logs each worker's exit, and reports stats from a concurrent task. Beyond the
//! seed, the line `!crash` makes it fail on purpose, to show its supervisor restarting it;
//! a `stats` message is answered with its counters; and on `wasmhost upgrade app:relay` it
//! hands its counters over to the new component, keeping its pid, name and mailbox.

use std::cell::Cell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use wasmhost_guest::payload;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Default)]
struct Stats {
    messages: Cell<u64>,
    workers_spawned: Cell<u64>,
    /// Upgrades this relay has been through.
    hand_overs: Cell<u64>,
}

/// The counters as a `stats` answer and as the state handed over in an upgrade.
#[derive(Serialize, Deserialize, Default)]
struct Counters {
    messages: u64,
    workers_spawned: u64,
    hand_overs: u64,
}

impl Stats {
    fn counters(&self) -> Counters {
        Counters {
            messages: self.messages.get(),
            workers_spawned: self.workers_spawned.get(),
            hand_overs: self.hand_overs.get(),
        }
    }

    fn from(counters: Counters) -> Stats {
        Stats {
            messages: Cell::new(counters.messages),
            workers_spawned: Cell::new(counters.workers_spawned),
            hand_overs: Cell::new(counters.hand_overs),
        }
    }
}

#[derive(Deserialize)]
struct Echo {
    sender: Pid,
    data: String,
}

async fn stats_reporter(stats: Rc<Stats>) {
    loop {
        time::sleep("5s").await;
        logger::info(
            "stats",
            fields! {
                messages: stats.messages.get(),
                workers_spawned: stats.workers_spawned.get(),
            },
        );
    }
}

/// Spawns `app:worker` for each line on its own host, or the entry its first argument names
/// (the echo registry's `relay-service` can pass `app:worker-py` to have Python workers
/// answer) on the host its second names (`c@app:processes`: on node `c` of a cluster).
async fn main(args: Vec<Vec<u8>>) -> Result<i32, String> {
    let argument = |i: usize, default: &str| match args.get(i) {
        Some(arg) => {
            payload::decode::<String>(arg).map_err(|err| format!("argument {}: {err}", i + 1))
        }
        None => Ok(default.to_string()),
    };
    let worker = argument(0, "app:worker")?;
    let host = argument(1, "app:processes")?;
    let mailbox = process::mailbox();
    let events = process::events();

    // Handed over by the relay this one upgrades, if it does: the same process, its name
    // still held (registering it again succeeds).
    let handed_over: Option<Counters> = process::resumed()
        .transpose()
        .map_err(|err| format!("the state handed over: {err}"))?;
    let upgraded = handed_over.is_some();
    process::registry::register("relay").map_err(|err| err.to_string())?;
    let stats = Rc::new(Stats::from(handed_over.unwrap_or_default()));
    match upgraded {
        false => logger::info("relay started", fields! { pid: process::pid() }),
        true => logger::info(
            "relay upgraded",
            fields! { pid: process::pid(), messages: stats.messages.get() },
        ),
    }

    spawn_task(stats_reporter(stats.clone()));

    loop {
        select! {
            event = events.recv() => {
                match event {
                    Event::Exit { from, reason } => {
                        logger::info("worker exited", fields! { from, result: reason });
                    }
                    // Asked to stop (e.g. on shutdown): stop cleanly.
                    Event::Cancel { .. } => return Ok(0),
                    Event::LinkDown { .. } => {}
                    // `wasmhost upgrade`: the new component goes on from these counters.
                    Event::Upgrade => {
                        stats.hand_overs.set(stats.hand_overs.get() + 1);
                        return Err(process::hand_over(&stats.counters()).to_string());
                    }
                }
            }
            msg = mailbox.recv() => {
                if msg.topic() == "stats"
                    && let Some(asker) = msg.from()
                {
                    let _ = process::send(asker.clone(), "stats", &stats.counters());
                } else if msg.topic() == "echo"
                    && let Ok(echo) = msg.payload::<Echo>()
                {
                    // The supervision demo: typing `!crash` makes the relay fail; its
                    // supervisor restarts it and the next line is answered by the new one.
                    if echo.data == "!crash" {
                        logger::error("crashing on purpose", fields! { requested_by: echo.sender });
                        return Err("crashed on purpose (!crash)".into());
                    }
                    stats.messages.set(stats.messages.get() + 1);

                    let spawned =
                        process::spawn_monitored(&worker, &host, (&echo.sender, &echo.data));

                    match spawned {
                        Err(err) => logger::error("spawn failed", fields! { error: err }),
                        Ok(_) => stats.workers_spawned.set(stats.workers_spawned.get() + 1),
                    }
                }
            }
        }
    }
}
