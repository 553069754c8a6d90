#![no_main]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|input: (String, Vec<(String, Vec<u8>)>)| {
    checks::log_line(&input.0, &input.1)
});
