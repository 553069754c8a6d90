//! The wasmhost side of the benchmark suite (`bench/erlang/suite.erl` is the Erlang side):
//! each mode measures from inside a process and returns nanoseconds — one figure per round
//! trip, or the whole run's time.
//! - `echo N`: send a line to the relay → it spawns a worker → the worker's answer arrives;
//! - `spawn-monitor N`: spawn a monitored `app:child` that returns at once → its EXIT arrives;
//! - `ping-pong N`: a 32-byte message to a partner process and back;
//! - `flood N`: N 32-byte messages to one receiver, as fast as they can be sent; the time until
//!   the receiver has taken them all;
//! - `ring N M`: N processes in a ring pass a token M times round; the time until it stops;
//! - `wake N`: N counters (`app:child`'s `counter`) that hibernate as they start; once they
//!   have, one message each, until its answer: a new instance made, its state read, the
//!   message read and answered;
//! - `watch`: monitor the process registered as `relay` (on another node), and return when
//!   that was and when its `no-connection` came (Unix time in nanoseconds): the cluster
//!   benchmark kills the relay's node in between.
//!
//! `pong`, `sink` and `ring-member` are the partners these spawn, on the client's host, or on
//! the one a mode names after ` on ` (`ping-pong on b@app:processes`: partners on node b).

use std::time::Instant;

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Where partners are spawned unless the mode says.
const HOST: &str = "app:processes";
/// 32 bytes, the message of the ping-pong and flood scenarios.
const MESSAGE: &str = "0123456789abcdef0123456789abcdef";

#[derive(Serialize)]
struct Echo<'a> {
    sender: Pid,
    data: &'a str,
}

async fn main((mode, n, m): (String, u32, u32)) -> Result<Vec<u64>, String> {
    let fail = |e: &dyn std::fmt::Display| e.to_string();
    let mailbox = process::mailbox();
    let mut times = Vec::with_capacity(n as usize);
    let (mode, host) = mode.split_once(" on ").unwrap_or((&mode, HOST));
    match mode {
        "echo" => {
            let me = process::pid();
            for _ in 0..n {
                let start = Instant::now();
                let line = Echo {
                    sender: me.clone(),
                    data: "hello world",
                };
                process::send("relay", "echo", &line).map_err(|e| fail(&e))?;
                let reply = mailbox.recv().await;
                if reply.topic() != "echo_response" {
                    return Err(format!("unexpected reply {}", reply.topic()));
                }
                times.push(elapsed(start));
            }
        }
        "spawn-monitor" => {
            let events = process::events();
            for _ in 0..n {
                let start = Instant::now();
                let child = process::spawn_monitored("app:child", host, ("return", ""))
                    .map_err(|e| fail(&e))?;
                match events.recv().await {
                    Event::Exit { from, reason } if from == child && reason.is_normal() => {}
                    other => return Err(format!("unexpected event {other:?}")),
                }
                times.push(elapsed(start));
            }
        }
        "ping-pong" => {
            let partner =
                process::spawn("app:client", host, ("pong", 0u32, 0u32)).map_err(|e| fail(&e))?;
            for _ in 0..n {
                let start = Instant::now();
                process::send(&partner, "ping", MESSAGE).map_err(|e| fail(&e))?;
                mailbox.recv().await;
                times.push(elapsed(start));
            }
            process::send(&partner, "stop", &()).map_err(|e| fail(&e))?;
        }
        "wake" => {
            let mut counters = Vec::with_capacity(n as usize);
            while counters.len() < n as usize {
                match process::spawn("app:child", host, ("counter", "")) {
                    Ok(pid) => counters.push(pid),
                    // The pool is full of counters that have not hibernated yet.
                    Err(process::SpawnError::Limit(_)) => time::sleep("1ms").await,
                    Err(err) => return Err(fail(&err)),
                }
            }
            // Time for the last ones to hibernate (a benchmark may wait; a test may not).
            time::sleep("200ms").await;
            for counter in &counters {
                let start = Instant::now();
                process::send(counter, "add", &1u64).map_err(|e| fail(&e))?;
                let reply = mailbox.recv().await;
                if reply.topic() != "total" {
                    return Err(format!("unexpected reply {}", reply.topic()));
                }
                times.push(elapsed(start));
            }
            for counter in &counters {
                process::send(counter, "stop", &()).map_err(|e| fail(&e))?;
            }
        }
        "pong" => loop {
            let msg = mailbox.recv().await;
            match (msg.topic(), msg.from()) {
                ("ping", Some(from)) => {
                    let data: String = msg.payload().map_err(|e| fail(&e))?;
                    process::send(from, "pong", &data).map_err(|e| fail(&e))?;
                }
                _ => return Ok(times),
            }
        },
        "flood" => {
            let sink = process::spawn("app:sink", host, ("sink", n, 0u32)).map_err(|e| fail(&e))?;
            let start = Instant::now();
            for _ in 0..n {
                // A full outbox to another node refuses at once: wait for it to drain.
                loop {
                    match process::send(&sink, "data", MESSAGE) {
                        Ok(()) => break,
                        Err(process::SendError::Limit(_)) => {
                            time::sleep(std::time::Duration::from_micros(50)).await;
                        }
                        Err(err) => return Err(fail(&err)),
                    }
                }
            }
            mailbox.recv().await;
            times.push(elapsed(start));
        }
        "sink" => {
            let mut from = None;
            for _ in 0..n {
                from = mailbox.recv().await.from().cloned();
            }
            if let Some(from) = from {
                process::send(&from, "done", &()).map_err(|e| fail(&e))?;
            }
        }
        "ring" => {
            let members = (0..n)
                .map(|_| process::spawn("app:client", host, ("ring-member", 0u32, 0u32)))
                .collect::<Result<Vec<Pid>, _>>()
                .map_err(|e| fail(&e))?;
            let me = process::pid();
            for (i, member) in members.iter().enumerate() {
                let next = &members[(i + 1) % members.len()];
                process::send(member, "next", &(next, &me)).map_err(|e| fail(&e))?;
            }
            let hops = u64::from(n) * u64::from(m);
            let start = Instant::now();
            process::send(&members[0], "token", &hops).map_err(|e| fail(&e))?;
            mailbox.recv().await;
            times.push(elapsed(start));
            for member in &members {
                process::send(member, "stop", &0u64).map_err(|e| fail(&e))?;
            }
        }
        "ring-member" => {
            let (next, boss): (Pid, Pid) = mailbox.recv().await.payload().map_err(|e| fail(&e))?;
            loop {
                let msg = mailbox.recv().await;
                let left: u64 = msg.payload().map_err(|e| fail(&e))?;
                match (msg.topic(), left) {
                    ("token", 0) => process::send(&boss, "done", &()).map_err(|e| fail(&e))?,
                    ("token", _) => {
                        process::send(&next, "token", &(left - 1)).map_err(|e| fail(&e))?
                    }
                    _ => return Ok(times),
                }
            }
        }
        "watch" => {
            let relay = loop {
                if let Some(relay) = process::registry::lookup("relay") {
                    break relay;
                }
                time::sleep(std::time::Duration::from_millis(5)).await;
            };
            let events = process::events();
            process::monitor(&relay);
            times.push(unix_nanos());
            match events.recv().await {
                Event::Exit { reason, .. } if reason.to_string().contains("no connection") => {
                    times.push(unix_nanos());
                }
                other => return Err(format!("unexpected event {other:?}")),
            }
        }
        other => return Err(format!("unknown mode {other}")),
    }
    Ok(times)
}

fn elapsed(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}
