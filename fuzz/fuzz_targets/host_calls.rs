#![no_main]
//! Scripts of host calls against a node with small budgets (`host_calls.rs`): no host
//! panic, nothing left behind, the host's memory within budget and slack, and every call
//! back within `CALL_BOUND`. Needs the guest built first: `cargo build --release --target
//! wasm32-wasip2` in `guests/` (the test suite builds it).
#[path = "../host_calls.rs"]
mod host_calls;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest one host call may take (in a release build, on this 2-core machine).
const CALL_BOUND_NS: u64 = 50_000_000;

static CALLS: AtomicU64 = AtomicU64::new(0);

fn harness() -> &'static host_calls::Harness {
    static HARNESS: OnceLock<host_calls::Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let component = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guests/target/wasm32-wasip2/release/test_host_calls.wasm");
        host_calls::Harness::new(&component)
    })
}

libfuzzer_sys::fuzz_target!(|script: &[u8]| {
    let outcome = harness().run(script);
    if let Some((calls, slowest, op)) = outcome.calls {
        assert!(
            slowest < CALL_BOUND_NS,
            "a call with opcode {op} took {} ms",
            slowest / 1_000_000
        );
        let total = CALLS.fetch_add(calls, Ordering::Relaxed) + calls;
        if total / 1_000_000 != (total - calls) / 1_000_000 {
            eprintln!("host calls so far: {total}");
        }
    }
});
