//! The echo throughput driver, run by the `wasmhost` binary on its terminal
//! (`bench/throughput`): `driver CLIENTS N` spawns CLIENTS clients, each sending N lines
//! through the echo relay, and prints the echoes answered per second; one line in a hundred
//! is `!trap`, which makes its worker trap (the relay logs every worker's exit, trapped or
//! not). `client N` is one client. The worker is `test-fast-worker`.

use std::time::Instant;

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Echo<'a> {
    sender: Pid,
    data: &'a str,
}

async fn main((mode, clients, n): (String, u32, u32)) -> Result<u64, String> {
    match mode.as_str() {
        "driver" => driver(clients, n).await,
        _ => client(n).await,
    }
}

async fn driver(clients: u32, n: u32) -> Result<u64, String> {
    let start = Instant::now();
    let mut running = 0;
    for _ in 0..clients {
        process::spawn_monitored("app:client", "app:processes", ("client", 0u32, n))
            .map_err(|e| e.to_string())?;
        running += 1;
    }
    let events = process::events();
    let mut answered = 0;
    while running > 0 {
        if let Event::Exit { reason, .. } = events.recv().await {
            answered += reason
                .value::<u64>()
                .ok_or(format!("a client failed: {reason}"))?;
            running -= 1;
        }
    }
    let rate = answered as f64 / start.elapsed().as_secs_f64();
    io::print(&format!(
        "{answered} echoes in {:.3} s: {rate:.0} echoes/s",
        start.elapsed().as_secs_f64()
    ));
    Ok(0)
}

async fn client(n: u32) -> Result<u64, String> {
    let me = process::pid();
    let mailbox = process::mailbox();
    let mut answered = 0;
    for i in 0..n {
        let data = if i % 100 == 99 {
            "!trap"
        } else {
            "hello world"
        };
        process::send(
            "relay",
            "echo",
            &Echo {
                sender: me.clone(),
                data,
            },
        )
        .map_err(|e| e.to_string())?;
        if data == "!trap" {
            continue;
        }
        let reply = mailbox.recv().await;
        if reply.topic() != "echo_response" {
            return Err(format!("unexpected reply {}", reply.topic()));
        }
        answered += 1;
    }
    Ok(answered)
}
