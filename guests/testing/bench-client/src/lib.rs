//! Measures from inside a process, `n` times one after another, and returns each round trip
//! in nanoseconds:
//! - `echo`: send a line to the relay → it spawns a worker → the worker's answer arrives;
//! - `spawn-monitor`: spawn a monitored `app:child` that returns at once → its EXIT arrives
//!   (the spawn+exit+monitor figure of docs/engine.md for Erlang and Lunatic).

use std::time::Instant;

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Echo<'a> {
    sender: Pid,
    data: &'a str,
}

async fn main((mode, n): (String, u32)) -> Result<Vec<u64>, String> {
    let mut round_trips = Vec::with_capacity(n as usize);
    match mode.as_str() {
        "echo" => {
            let inbox = process::inbox();
            let me = process::pid();
            for _ in 0..n {
                let start = Instant::now();
                let line = Echo {
                    sender: me.clone(),
                    data: "hello world",
                };
                process::send("relay", "echo", &line).map_err(|e| e.to_string())?;
                let reply = inbox.recv().await;
                if reply.topic() != "echo_response" {
                    return Err(format!("unexpected reply {}", reply.topic()));
                }
                round_trips.push(start.elapsed().as_nanos() as u64);
            }
        }
        "spawn-monitor" => {
            let events = process::events();
            for _ in 0..n {
                let start = Instant::now();
                let child = process::spawn_monitored("app:child", "app:processes", ("return", ""))
                    .map_err(|e| e.to_string())?;
                match events.recv().await {
                    Event::Exit { from, reason } if from == child && reason.is_normal() => {}
                    other => return Err(format!("unexpected event {other:?}")),
                }
                round_trips.push(start.elapsed().as_nanos() as u64);
            }
        }
        other => return Err(format!("unknown mode {other}")),
    }
    Ok(round_trips)
}
