//! A worker that answers after the client has given up (3 s > the client's 2 s timeout); or,
//! for a line that starts with `hold`, one that answers at once and then stays (for an hour),
//! for the tests that need live workers.

use serde::Serialize;
use wasmhost_guest::prelude::*;

entry!(main);

#[derive(Serialize)]
struct Response {
    data: String,
    worker: Pid,
}

async fn main((sender, data): (Pid, String)) -> i32 {
    if data.starts_with("hold") {
        let response = Response {
            data: data.to_uppercase(),
            worker: process::pid(),
        };
        let _ = process::send(&sender, "echo_response", &response);
        time::sleep("1h").await;
        return 0;
    }
    time::sleep("3s").await;
    let _ = process::send(&sender, "echo_response", &data);
    0
}
