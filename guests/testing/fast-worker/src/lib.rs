//! The echo worker without its 100 ms sleep, to measure the cost of an echo itself. It traps
//! on the line `!trap` (the throughput driver's trapping workers).

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Response {
    data: String,
    worker: Pid,
}

async fn main((sender_pid, data): (Pid, String)) -> i32 {
    // The throughput driver's one line in a hundred: a worker that traps.
    if data == "!trap" {
        panic!("asked to trap");
    }
    let response = Response {
        data: data.to_uppercase(),
        worker: process::pid(),
    };
    let _ = process::send(&sender_pid, "echo_response", &response);
    0
}
