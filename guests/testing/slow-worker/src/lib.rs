//! A worker that answers after the client has given up (3 s > the client's 2 s timeout).

use wasmhost_guest::prelude::*;

entry!(main);

async fn main((sender, data): (Pid, String)) -> i32 {
    time::sleep("3s").await;
    let _ = process::send(&sender, "echo_response", &data);
    0
}
