#![no_main]
//! Scripts of host calls against a node with small budgets (`host_calls.rs`): no host
//! panic, nothing left behind, the host's memory within budget and slack, and every call
//! that does not wait back within `CALL_BOUND_NS`. It shows how many host calls were made
//! (`HOST_CALLS`, counted in fuzzing builds only) at each million. Needs the guest built
//! first: `cargo build --release --target wasm32-wasip2` in `guests/` (the test suite
//! builds it).
#[path = "../host_calls.rs"]
mod host_calls;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest one host call may take (in a release build, on this 2-core machine).
const CALL_BOUND_NS: u64 = 50_000_000;

/// Millions of host calls last shown.
static SHOWN: AtomicU64 = AtomicU64::new(0);

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
    if let Some((_, slowest, op)) = outcome.calls {
        assert!(
            slowest < CALL_BOUND_NS,
            "a call with opcode {op} took {} ms",
            slowest / 1_000_000
        );
    }
    // Every call into the host interfaces, by the script and its children, whether or not
    // the script ran to its end (most long ones end at a limit).
    let total = wasmhost::runtime::HOST_CALLS.load(Ordering::Relaxed);
    let before = SHOWN.swap(total / 1_000_000, Ordering::Relaxed);
    if total / 1_000_000 != before {
        eprintln!("host calls so far: {total}");
    }
});
