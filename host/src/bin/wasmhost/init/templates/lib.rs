//! A wasmhost process: prints a greeting with its pid on the terminal, and ends.

use wasmhost_guest::prelude::*;

entry!(main);

async fn main(_args: ()) -> i32 {
    io::print(&format!("Hello from Rust! I am {}.", process::pid()));
    0
}
