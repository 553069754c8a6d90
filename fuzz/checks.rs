//! What must hold for any input to the parts of wasmhost that read untrusted text or bytes.
//! Shared by the fuzz targets (`fuzz_targets/`, cargo-fuzz on nightly) and by
//! `tests/it/properties.rs` (random and corpus inputs, on stable, in every test run).

#![allow(dead_code)]

use std::path::Path;

use wasmhost::app::{self, AppRoot, values};
use wasmhost::runtime::render_log_line;
use wasmhost_types::{ExitReason, Pid, payload};

/// A registry file: it loads or yields diagnostics, each placed within the text.
pub fn registry(text: &str) {
    // Lines as YAML counts them: a lone carriage return ends a line too.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() as u64 + 1;
    let file = Path::new("/nonexistent/src/_index.yaml");
    if let Err(problems) = app::load_text(Path::new("/nonexistent"), file, text) {
        for problem in &problems.0 {
            assert!(!problem.message.is_empty());
            if let Some(line) = problem.line {
                assert!(
                    line <= lines,
                    "line {line} of a {lines}-line file: {problem}"
                );
            }
        }
        let _ = problems.to_string();
    }
}

/// A root file (`wasmhost.toml`): it parses or says why, without panicking.
pub fn root_file(text: &str) {
    if let Err(err) = AppRoot::from_text("/nonexistent".into(), text) {
        assert!(!err.to_string().is_empty());
    }
}

/// A payload, as the host shows it: one line, within its bound, never a panic.
pub fn payload(bytes: &[u8]) {
    let shown = payload::display_within(bytes, 64);
    assert!(
        shown.len() <= 64 + '…'.len_utf8() + 32,
        "{} bytes",
        shown.len()
    );
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    let _ = payload::display(bytes);
    let _ = payload::as_integer(bytes);
    if let Ok(reason) = payload::decode::<ExitReason>(bytes) {
        let shown = reason.to_string();
        assert!(!shown.contains('\n'), "{shown:?}");
    }
    let _ = payload::decode::<Pid>(bytes);
}

/// A guest's log line: one line, within its bound.
pub fn log_line(message: &str, fields: &[(String, Vec<u8>)]) {
    let line = render_log_line("{app:processes|0x00001} app:w", message, fields, 0);
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert!(line.len() <= (16 << 10) + 200, "{} bytes", line.len());
}

/// A pid from text: it parses back to the text it came from, or is refused.
pub fn pid(text: &str) {
    if let Ok(pid) = text.parse::<Pid>() {
        let again: Pid = pid.to_string().parse().expect("a shown pid parses");
        assert_eq!(again, pid);
    }
}

/// Sizes, durations and rates as people write them.
pub fn values(text: &str) {
    let _ = values::parse_size(text);
    let _ = values::parse_duration(text);
    if let Ok(rate) = values::parse_rate(text) {
        assert!((1..=1000).contains(&rate), "{rate}");
    }
}
