#![no_main]
#[path = "../checks.rs"]
mod checks;

// Pids, sizes, durations and rates: the small text values guests and registries hand over.
libfuzzer_sys::fuzz_target!(|text: &str| {
    checks::pid(text);
    checks::values(text);
});
