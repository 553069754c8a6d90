//! Supervisor trees (`process.supervisor`): each strategy restarts the right children,
//! restart types decide who is restarted, and too many restarts fail the supervisor, which
//! escalates to its own supervisor and, at the top, ends `wasmhost run`. Children are made
//! to fail by killing their processes from outside, as an operator (or a bug) would.

use crate::common::{self, PATIENCE};

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmhost::runtime::{ExitReason, Node, Pid};
use wasmhost::services::{Services, State};

const ENTRIES: &str = r#"
  - name: terminal
    kind: terminal.host
  - name: processes
    kind: process.host
  - name: child
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
  # Three services that run until cancelled.
  - name: a
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
  - name: b
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
  - name: c
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
"#;

fn start(registry: &str) -> (tempfile::TempDir, Arc<Node>, Services) {
    common::build_guests();
    let (dir, node) = common::node_with(&format!("{ENTRIES}{registry}"), Default::default());
    let services = Services::start(&node, None);
    (dir, node, services)
}

/// A supervisor `top` over a, b and c with `strategy`.
fn tree(strategy: &str) -> String {
    format!(
        r#"
  - name: top
    kind: process.supervisor
    strategy: {strategy}
    max_restarts: 5
    period: 1h
    children: [a, b, c]
    lifecycle:
      auto_start: true
"#
    )
}

/// The pid of each running service.
fn pids(services: &Services) -> BTreeMap<String, Pid> {
    services
        .units()
        .into_iter()
        .filter_map(|u| Some((u.id, u.pid?)))
        .collect()
}

async fn running(services: &Services) {
    tokio::time::timeout(PATIENCE, services.running())
        .await
        .expect("started within the patience")
        .expect("running");
}

/// Waits until `id` is in a state `pred` accepts.
async fn until(services: &Services, id: &str, pred: impl FnMut(&State) -> bool) -> State {
    let mut state = services.state(id).expect("a unit");
    let reached = tokio::time::timeout(PATIENCE, state.wait_for(pred)).await;
    reached
        .expect("reached within the patience")
        .expect("the unit is watched")
        .clone()
}

/// Kills `id`'s process and waits until it runs again with a new pid.
async fn kill_and_wait_for_restart(node: &Node, services: &Services, id: &str) {
    let before = pids(services)[id].clone();
    node.terminate(&before, ExitReason::Killed("the test".into()));
    let mut state = services.state(id).expect("a unit");
    tokio::time::timeout(PATIENCE, async {
        loop {
            // The state first: a unit's pid is set before it is marked running, so a pid read
            // after `Running` is that run's (read before, it could be the gap's `None`, and the
            // `Running` that follows would be marked seen with no change left to wait for).
            let running = *state.borrow_and_update() == State::Running;
            let now = pids(services).get(id).cloned();
            if running && now.is_some_and(|p| p != before) {
                return;
            }
            state.changed().await.expect("watched");
        }
    })
    .await
    .expect("restarted within the patience");
}

/// Which of a, b, c have new pids, and their restart counts.
fn restarted(before: &BTreeMap<String, Pid>, services: &Services) -> (Vec<&'static str>, Vec<u32>) {
    let after = pids(services);
    let units = services.units();
    let mut changed = Vec::new();
    let mut counts = Vec::new();
    for id in ["a", "b", "c"] {
        let full = format!("app:{id}");
        if before.get(&full) != after.get(&full) {
            changed.push(id);
        }
        let unit = units.iter().find(|u| u.id == full).expect("a unit");
        assert_eq!(unit.state, State::Running, "{full}");
        counts.push(unit.restarts);
    }
    (changed, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_child_that_failed() {
    let (_dir, node, services) = start(&tree("one_for_one"));
    running(&services).await;
    let before = pids(&services);
    kill_and_wait_for_restart(&node, &services, "app:b").await;
    assert_eq!(restarted(&before, &services), (vec!["b"], vec![0, 1, 0]));
    services.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_restarts_every_child() {
    let (_dir, node, services) = start(&tree("one_for_all"));
    running(&services).await;
    let before = pids(&services);
    kill_and_wait_for_restart(&node, &services, "app:b").await;
    // c, the last, starts again last: once it runs, all do.
    until(&services, "app:c", |s| *s == State::Running).await;
    let after = pids(&services);
    assert!(after["app:c"] != before["app:c"], "c was restarted");
    assert_eq!(
        restarted(&before, &services),
        (vec!["a", "b", "c"], vec![1, 1, 1])
    );
    services.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    let (_dir, node, services) = start(&tree("rest_for_one"));
    running(&services).await;
    let before = pids(&services);
    kill_and_wait_for_restart(&node, &services, "app:b").await;
    let mut c = services.state("app:c").expect("c");
    tokio::time::timeout(PATIENCE, async {
        while pids(&services).get("app:c") == before.get("app:c") || *c.borrow() != State::Running {
            c.changed().await.expect("watched");
        }
    })
    .await
    .expect("c restarted within the patience");
    assert_eq!(
        restarted(&before, &services),
        (vec!["b", "c"], vec![0, 1, 1])
    );
    services.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_types_decide_who_is_started_again() {
    let (_dir, node, services) = start(
        r#"
  - name: returns-transient
    kind: process.service
    process: app:child
    host: app:processes
    args: [return, "done"]
  - name: killed-temporary
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
    lifecycle:
      restart_type: temporary
  - name: killed-transient
    kind: process.service
    process: app:child
    host: app:processes
    args: [wait-cancel, ""]
  - name: top
    kind: process.supervisor
    max_restarts: 5
    period: 1h
    children: [returns-transient, killed-temporary, killed-transient]
    lifecycle:
      auto_start: true
"#,
    );
    running(&services).await;
    // A transient child that returned normally has exited, and stays so.
    assert_eq!(
        until(&services, "app:returns-transient", |s| *s != State::Running).await,
        State::Exited
    );
    let temporary = pids(&services)["app:killed-temporary"].clone();
    node.terminate(&temporary, ExitReason::Killed("the test".into()));
    assert_eq!(
        until(&services, "app:killed-temporary", |s| *s != State::Running).await,
        State::Failed("killed by the test".into())
    );
    // A transient child that failed is restarted; the supervisor counted one restart in
    // all, so the temporary one was not.
    kill_and_wait_for_restart(&node, &services, "app:killed-transient").await;
    let units = services.units();
    let restarts: Vec<(String, u32)> = units.iter().map(|u| (u.id.clone(), u.restarts)).collect();
    assert_eq!(
        restarts,
        [
            ("app:top".to_string(), 0),
            ("app:returns-transient".to_string(), 0),
            ("app:killed-temporary".to_string(), 0),
            ("app:killed-transient".to_string(), 1),
        ]
    );
    assert_eq!(
        *services
            .state("app:killed-temporary")
            .expect("unit")
            .borrow(),
        State::Failed("killed by the test".into())
    );
    services.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_child_is_restarted_even_after_returning_until_intensity_is_exceeded() {
    let (_dir, _node, services) = start(
        r#"
  - name: returns-permanent
    kind: process.service
    process: app:child
    host: app:processes
    args: [return, "done"]
    lifecycle:
      restart_type: permanent
  - name: top
    kind: process.supervisor
    max_restarts: 2
    period: 1h
    children: [returns-permanent]
    lifecycle:
      auto_start: true
"#,
    );
    let why = tokio::time::timeout(PATIENCE, services.failed())
        .await
        .expect("gave up within the patience");
    assert_eq!(
        why,
        "supervisor app:top failed: more than 2 restarts within 3600s; the last: \
         app:returns-permanent returned done"
    );
    let units = services.units();
    assert_eq!(units[1].restarts, 2, "started once, restarted twice");
    assert_eq!(units[1].state, State::Exited);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_supervisor_escalates_to_its_parent() {
    let (_dir, node, services) = start(
        r#"
  - name: inner
    kind: process.supervisor
    max_restarts: 0
    children: [b, c]
  - name: top
    kind: process.supervisor
    strategy: one_for_one
    max_restarts: 1
    period: 1h
    children: [a, inner]
    lifecycle:
      auto_start: true
"#,
    );
    running(&services).await;
    let a = pids(&services)["app:a"].clone();
    // inner gives up at its first restart; top restarts it (one for one: a stays).
    kill_and_wait_for_restart(&node, &services, "app:c").await;
    until(&services, "app:inner", |s| *s == State::Running).await;
    assert_eq!(pids(&services)["app:a"], a, "a was not restarted");
    let inner = services.units().into_iter().find(|u| u.id == "app:inner");
    assert_eq!(inner.map(|u| u.restarts), Some(1));
    // The second time, top is past its intensity too, and fails: the app is done.
    let c = pids(&services)["app:c"].clone();
    node.terminate(&c, ExitReason::Killed("the test, again".into()));
    let why = tokio::time::timeout(PATIENCE, services.failed())
        .await
        .expect("gave up within the patience");
    assert_eq!(
        why,
        "supervisor app:top failed: more than 1 restarts within 3600s; the last: app:inner \
         error: more than 0 restarts within 5s; the last: app:c killed by the test, again"
    );
    for unit in services.units().iter().filter(|u| u.id != "app:top") {
        assert!(
            matches!(unit.state, State::Stopped | State::Failed(_)),
            "{} is {:?}",
            unit.id,
            unit.state
        );
        assert_eq!(unit.pid, None, "{} has no process", unit.id);
    }
}

#[test]
fn wasmhost_run_ends_when_the_top_supervisor_fails() {
    common::build_guests();
    let app = common::app_with(&format!(
        "{ENTRIES}{}",
        r#"
  - name: failing
    kind: process.service
    process: app:child
    host: app:processes
    args: [error, "broken"]
  - name: top
    kind: process.supervisor
    max_restarts: 1
    children: [a, failing]
    lifecycle:
      auto_start: true
"#
    ));
    let out = common::wasmhost()
        .arg("--app")
        .arg(app.path())
        .arg("run")
        .output()
        .expect("running wasmhost");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "error: supervisor app:top failed: more than 1 restarts within 5s; the last: \
             app:failing error: broken"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("child ended; restarting"), "{stderr}");
    assert!(stderr.contains("service stopped service=app:a"), "{stderr}");
}
