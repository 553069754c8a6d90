//! The echo client (cli.lua): reads lines from the terminal, sends each to the registered
//! `relay`, and prints the worker's upper-cased answer, or `timeout` after 2 s.

use serde::{Deserialize, Serialize};
use wasmhost_guest::io::{cyan, dim, green, yellow};
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Echo<'a> {
    sender: Pid,
    data: &'a str,
}

#[derive(Deserialize)]
struct Response {
    data: String,
    worker: Pid,
}

/// The seed's client sleeps 200 ms here for the relay to register. `wasmhost run` starts the
/// relay's service and waits until it holds its name before it starts the client, so the
/// client waits only if it was started some other way, and no longer than the seed did.
async fn wait_for_relay() {
    for _ in 0..20 {
        if process::registry::lookup("relay").is_some() {
            return;
        }
        time::sleep("10ms").await;
    }
}

async fn main(_: ()) -> i32 {
    let mailbox = process::mailbox();

    wait_for_relay().await;

    io::print(&cyan("Echo Client"));
    io::print(&dim("Type messages to echo. Ctrl+C to exit.\n"));

    loop {
        io::write(&yellow("> "));
        let input = match io::readline() {
            Some(line) if !line.is_empty() => line,
            _ => break,
        };

        let msg = Echo {
            sender: process::pid(),
            data: &input,
        };
        if process::send("relay", "echo", &msg).is_err() {
            io::print(&dim("  error: relay not available"));
        } else {
            let timeout = time::after("2s");
            select! {
                _ = timeout => {
                    io::print(&dim("  timeout"));
                }
                msg = mailbox.recv() => {
                    if msg.topic() == "echo_response"
                        && let Ok(resp) = msg.payload::<Response>()
                    {
                        io::print(&green(&format!("  {}", resp.data)));
                        io::print(&dim(&format!("  from worker: {}", resp.worker)));
                    }
                }
            }
        }
    }

    io::print("\nGoodbye!");
    0
}
