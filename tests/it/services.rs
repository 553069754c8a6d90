//! Services as `wasmhost run` starts them: readiness (the names an entry reserves,
//! registered), `requires`, `start_timeout`, stop order; and their restarts on tokio's paused
//! clock, so the exact delays are asserted without waiting for them.

use crate::common;

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

/// Where `text` first appears in `log` (to compare the order of log lines).
fn position(log: &str, text: &str) -> usize {
    log.find(text)
        .unwrap_or_else(|| panic!("no `{text}` in:\n{log}"))
}

const ENTRIES: &str = r#"
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
    let at = |text: &str| position(&stderr, text);
    assert!(
        at("service ready service=app:late-service") < at("service started service=app:needs-late"),
        "{stderr}"
    );
    // It found `alpha`: it exited normally, or was still running when the node stopped
    // (the terminal entry may finish first); it never failed.
    assert!(
        stderr.contains("service exited service=app:needs-late")
            || stderr.contains("service stopped service=app:needs-late"),
        "{stderr}"
    );
    assert!(!stderr.contains("service failed"), "{stderr}");
    assert!(!stderr.contains("restarting"), "{stderr}");
}

#[test]
fn a_service_that_registers_a_name_its_entry_does_not_reserve_is_told_to_reserve_it() {
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  # Registers `sink`, which its entry does not reserve: it was ready when spawned.
  - name: counter
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time, logger]
  - name: sink
    kind: process.service
    process: app:counter
    host: app:processes
    args: [count-in, sink]
    lifecycle:
      auto_start: true
"#
    ));
    // The terminal entry waits for `sink`, sends it nothing but `end`, and has its answer.
    let out = run(app.path(), &["app:counter", "--", "count-out", "\"0\""]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "the service registered `sink` after it was taken for ready: its entry reserves no \
             name, so it was ready once spawned, and what requires it or looks `sink` up may \
             have come first; hint: reserve it (`names: [sink]` on app:counter), and the service \
             is ready once it registers it service=app:sink"
        ),
        "{stderr}"
    );
}

#[test]
fn a_component_not_built_stops_a_run_only_if_the_run_starts_it() {
    common::build_guests();
    let registry = |auto_start: bool| {
        format!(
            "{ENTRIES}{}",
            r#"
  # Never built here.
  - name: ghost
    kind: process.wasm
    source: "not-built.wasm"
    modules: [process]
  - name: ghost-service
    kind: process.service
    process: app:ghost
    host: app:processes
    lifecycle:
      auto_start: AUTO
"#
            .replace("AUTO", &auto_start.to_string())
        )
    };
    // Nothing starts it: one warning, and the run goes on; a spawn of it fails.
    let app = common::app_with(&registry(false));
    let out = run(app.path(), &["app:child", "--", "return", "ran"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "not built, so spawning them fails until they are (`wasmhost build`): app:ghost"
        ),
        "{stderr}"
    );
    // A service the run starts runs it: refused before anything boots, with the file.
    let app = common::app_with(&registry(true));
    let out = run(app.path(), &["app:child", "--", "return", "never runs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("entry app:ghost: source `not-built.wasm` not found (looked for ")
            && stderr.contains("hint: build the components with `wasmhost build`")
            && !stderr.contains("service started"),
        "{stderr}"
    );
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
    let at = |text: &str| position(&stderr, text);
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

/// A node and its services for `registry`, in the current (paused-clock) runtime.
fn start_services(registry: &str) -> (tempfile::TempDir, wasmhost::services::Services) {
    common::build_guests();
    let (dir, node) = common::node_with(&format!("{ENTRIES}{registry}"), Default::default());
    let services = wasmhost::services::Services::start(&node, None);
    (dir, services)
}

/// When `service` became running each time, from the first, until it fails for good or
/// `starts` have been seen.
async fn start_times(
    services: &wasmhost::services::Services,
    service: &str,
    starts: usize,
) -> Vec<std::time::Duration> {
    starts_and_waits(services, service, starts).await.0
}

/// `start_times`, and how long each restart's backoff said it would wait (`restarting`,
/// as `ps` shows it).
async fn starts_and_waits(
    services: &wasmhost::services::Services,
    service: &str,
    starts: usize,
) -> (Vec<std::time::Duration>, Vec<std::time::Duration>) {
    use wasmhost::services::State;
    let mut state = services.state(service).expect("the service");
    let first = tokio::time::Instant::now();
    let (mut times, mut waits) = (Vec::new(), Vec::new());
    // Bounded in the paused clock's time, which runs ahead whenever every task waits.
    let watched = tokio::time::timeout(std::time::Duration::from_secs(600), async {
        while times.len() < starts {
            state.changed().await.expect("the supervisor runs");
            let now = state.borrow_and_update().clone();
            match now {
                State::Running => times.push(first.elapsed()),
                State::Restarting { at } => {
                    waits.push(at.saturating_duration_since(tokio::time::Instant::now()))
                }
                State::Failed(_) => break,
                _ => {}
            }
        }
    })
    .await;
    assert!(watched.is_ok(), "after 600 s: {times:?}");
    (times, waits)
}

fn seconds(times: &[std::time::Duration]) -> Vec<f64> {
    times
        .iter()
        .map(|t| (t.as_secs_f64() * 1e3).round() / 1e3)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn restarts_back_off_by_the_factor_up_to_the_cap_then_give_up() {
    let (_app, services) = start_services(
        r#"
  - name: flaky
    kind: process.service
    process: app:child
    host: app:processes
    args: [fail-after, 1ms]
    lifecycle:
      auto_start: true
      restart:
        initial_delay: 1s
        backoff_factor: 2
        max_delay: 3s
        jitter: 0
        max_attempts: 4
"#,
    );
    let (times, waits) = starts_and_waits(&services, "app:flaky", 10).await;
    // Each run lasts 1 ms (so each start is seen before the failure that follows it); the
    // delays are 1 s, 2 s, then capped at 3 s; after the fourth restart it gives up. While
    // it waits, it is `restarting` and knows when it starts again.
    assert_eq!(seconds(&times), [0.0, 1.001, 3.002, 6.003, 9.004]);
    assert_eq!(seconds(&waits), [1.0, 2.0, 3.0, 3.0]);
    let state = services.state("app:flaky").expect("the service");
    assert_eq!(
        *state.borrow(),
        wasmhost::services::State::Failed(
            "error: failed after 1ms (gave up after 4 attempts)".into()
        )
    );
    services.stop().await;
}

#[tokio::test(start_paused = true)]
async fn jitter_keeps_each_delay_within_its_bounds() {
    let (_app, services) = start_services(
        r#"
  - name: flaky
    kind: process.service
    process: app:child
    host: app:processes
    args: [fail-after, 1ms]
    lifecycle:
      auto_start: true
      restart:
        initial_delay: 1s
        backoff_factor: 2
        max_delay: 60s
        jitter: 0.5
        max_attempts: 6
"#,
    );
    let times = start_times(&services, "app:flaky", 10).await;
    assert_eq!(times.len(), 7, "{times:?}");
    for (i, pair) in times.windows(2).enumerate() {
        // Each run lasts 1 ms before the delay begins.
        let delay = (pair[1] - pair[0]).as_secs_f64() - 1e-3;
        let nominal = 2f64.powi(i as i32);
        assert!(
            (nominal * 0.5 - 1e-3..=nominal * 1.5 + 1e-3).contains(&delay),
            "restart {}: {delay} s, nominal {nominal} s ± 50 %",
            i + 1
        );
    }
    services.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_run_longer_than_stable_threshold_resets_the_backoff() {
    let (_app, services) = start_services(
        r#"
  - name: flaky
    kind: process.service
    process: app:child
    host: app:processes
    args: [fail-after, 10s]
    lifecycle:
      auto_start: true
      stable_threshold: 5s
      restart:
        initial_delay: 1s
        backoff_factor: 2
        jitter: 0
"#,
    );
    // Each run lasts 10 s, past the 5 s threshold: every restart waits the initial 1 s.
    let times = start_times(&services, "app:flaky", 4).await;
    assert_eq!(seconds(&times), [0.0, 11.0, 22.0, 33.0]);
    let state = services.state("app:flaky").expect("the service");
    services.stop().await;
    assert_eq!(*state.borrow(), wasmhost::services::State::Stopped);
}

#[test]
fn a_second_ctrl_c_stops_waiting_for_a_stubborn_service() {
    use std::io::{BufRead, BufReader};
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  # Ignores its cancel: a clean stop would wait its whole stop_timeout.
  - name: stubborn
    kind: process.service
    process: app:child
    host: app:processes
    args: [spin, ""]
    lifecycle:
      auto_start: true
      stop_timeout: 600s
"#
    ));
    let mut child = common::wasmhost()
        .arg("--app")
        .arg(app.path())
        .args(["-v", "run", "app:child", "--", "wait-cancel", "x"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting wasmhost");
    let mut log = BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let mut seen = String::new();
    let mut wait_for = |text: &str| {
        for line in log.by_ref().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(text) {
                return;
            }
        }
        panic!("no `{text}` in:\n{seen}");
    };
    let interrupt = || {
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
    };

    wait_for("running app:child on the terminal");
    interrupt();
    wait_for("stopping (Ctrl+C again to force)");
    interrupt();
    wait_for("forced: services still stopping end with wasmhost");
    let status = child.wait().expect("wasmhost exits");
    assert_eq!(status.code(), Some(130));
}

/// A service that ignores its cancel is terminated when its `stop_timeout` runs out: the
/// stop takes exactly that long on the paused clock, not the hour the service would take.
#[tokio::test(start_paused = true)]
async fn a_service_that_ignores_its_cancel_is_killed_after_stop_timeout() {
    let (_app, services) = start_services(
        r#"
  - name: deaf
    kind: process.service
    process: app:child
    host: app:processes
    args: [fail-after, 1h]
    lifecycle:
      auto_start: true
      stop_timeout: 2s
"#,
    );
    let running = tokio::time::timeout(std::time::Duration::from_secs(60), services.running());
    running.await.expect("started").expect("running");
    let state = services.state("app:deaf").expect("the service");
    let asked = tokio::time::Instant::now();
    services.stop().await;
    assert_eq!(asked.elapsed(), std::time::Duration::from_secs(2));
    assert_eq!(*state.borrow(), wasmhost::services::State::Stopped);
}
