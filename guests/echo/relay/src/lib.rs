//! The echo relay (relay.lua): registers as `relay`, spawns a monitored worker per `echo`
//! message, logs each worker's exit, and reports stats from a concurrent task. Beyond the
//! seed, the line `!crash` makes it fail on purpose, to show its supervisor restarting it.

use std::cell::Cell;
use std::rc::Rc;

use serde::Deserialize;
use wasmhost_guest::payload;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Default)]
struct Stats {
    messages: Cell<u64>,
    workers_spawned: Cell<u64>,
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

    process::registry::register("relay").map_err(|err| err.to_string())?;
    logger::info("relay started", fields! { pid: process::pid() });

    let stats = Rc::new(Stats::default());
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
                }
            }
            msg = mailbox.recv() => {
                if msg.topic() == "echo"
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
