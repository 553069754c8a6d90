//! Services as `wasmhost run` starts them: readiness (the names an entry reserves,
//! registered), `requires`, `start_timeout`.

mod common;

use std::process::Output;

fn run(app: &std::path::Path, args: &[&str]) -> Output {
    common::wasmhost()
        .arg("--app")
        .arg(app)
        .arg("run")
        .args(args)
        .output()
        .expect("running wasmhost")
}

const ENTRIES: &str = r#"
version: "1.0"
namespace: app
entries:
  - name: terminal
    kind: terminal.host
  - name: processes
    kind: process.host
  - name: child
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
"#;

#[test]
fn services_start_in_requires_order_and_run_waits_until_they_are_ready() {
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  # Registers `alpha` 100 ms after it starts: ready only then.
  - name: late
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
    names: [alpha]
  - name: late-service
    kind: process.service
    process: app:late
    host: app:processes
    args: [register-late, alpha]
    lifecycle:
      auto_start: true
  # Fails if `alpha` is not registered when it starts.
  - name: needs-late
    kind: process.service
    process: app:child
    host: app:processes
    args: [lookup, alpha]
    lifecycle:
      auto_start: true
      requires: [late-service]
"#
    ));
    // The terminal entry, too, fails unless `alpha` is registered when it starts.
    let out = run(app.path(), &["app:child", "--", "lookup", "alpha"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let at = |text: &str| {
        stderr
            .find(text)
            .unwrap_or_else(|| panic!("no `{text}` in:\n{stderr}"))
    };
    assert!(
        at("service ready service=app:late-service") < at("service started service=app:needs-late"),
        "{stderr}"
    );
    assert!(
        stderr.contains("service exited service=app:needs-late"),
        "{stderr}"
    );
    assert!(!stderr.contains("restarting"), "{stderr}");
}

#[test]
fn a_service_not_ready_within_start_timeout_fails_and_run_says_so() {
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  - name: mute
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
    names: [gamma]
  - name: mute-service
    kind: process.service
    process: app:mute
    host: app:processes
    args: [wait-cancel, ""]
    lifecycle:
      auto_start: true
      start_timeout: 200ms
      restart:
        initial_delay: 10ms
        max_attempts: 1
"#
    ));
    let out = run(app.path(), &["app:child", "--", "return", "never runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: cannot run app:child: service app:mute-service failed: error: not ready \
             within its start_timeout of 200ms (it registers gamma) (gave up after 1 attempts)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("service failed; restarting service=app:mute-service"),
        "{stderr}"
    );
}

#[test]
fn services_stop_in_reverse_order_a_dependent_first() {
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  - name: base
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
    names: [base]
  - name: base-service
    kind: process.service
    process: app:base
    host: app:processes
    args: [register-late, base]
    lifecycle:
      auto_start: true
  - name: top-service
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
    lifecycle:
      auto_start: true
      requires: [base-service]
"#
    ));
    let out = run(app.path(), &["app:child", "--", "return", "done"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let at = |text: &str| {
        stderr
            .find(text)
            .unwrap_or_else(|| panic!("no `{text}` in:\n{stderr}"))
    };
    assert!(
        at("service started service=app:base-service")
            < at("service started service=app:top-service"),
        "{stderr}"
    );
    assert!(
        at("service stopped service=app:top-service")
            < at("service stopped service=app:base-service"),
        "{stderr}"
    );
}
