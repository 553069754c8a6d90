//! Measures echoes from inside a process: sends `n` lines to the relay one after another
//! and returns each round trip in nanoseconds (send → relay spawns a worker → answer).

use std::time::Instant;

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Echo<'a> {
    sender: Pid,
    data: &'a str,
}

async fn main((n,): (u32,)) -> Result<Vec<u64>, String> {
    let inbox = process::inbox();
    let me = process::pid();
    let mut round_trips = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let start = Instant::now();
        process::send(
            "relay",
            "echo",
            &Echo {
                sender: me.clone(),
                data: "hello world",
            },
        )
        .map_err(|e| e.to_string())?;
        let reply = inbox.recv().await;
        if reply.topic() != "echo_response" {
            return Err(format!("unexpected reply {}", reply.topic()));
        }
        round_trips.push(start.elapsed().as_nanos() as u64);
    }
    Ok(round_trips)
}
