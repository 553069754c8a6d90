//! The node as a library: how it is configured and sized, observed through its API and from
//! inside processes. Each test builds its own node over a small registry.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use tokio::sync::oneshot;
use wasmhost::payload;
use wasmhost::runtime::{ExitReason, Node, NodeConfig, Pid, SpawnError, SpawnOptions};

const HOST: &str = "test:procs";

const REGISTRY: &str = r#"
version: "1.0"
namespace: test
entries:
  - name: procs
    kind: process.host
  - name: solo
    kind: process.host
    workers: 1
  - name: child
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
  - name: scenarios
    kind: process.wasm
    source: "{artifacts}/test_scenarios.wasm"
    modules: [process, time, channel]
"#;

fn args(mode: &str, arg: &str) -> Vec<Vec<u8>> {
    vec![payload::encode(mode), payload::encode(arg)]
}

async fn exit_of(exit: oneshot::Receiver<ExitReason>) -> ExitReason {
    tokio::time::timeout(Duration::from_secs(20), exit)
        .await
        .expect("the process ends in time")
        .expect("an exit reason")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_refuses_the_spawn_with_a_limit_error() {
    let config = NodeConfig {
        max_processes: 2,
        ..NodeConfig::default()
    };
    let (_app, node) = common::node_with(REGISTRY, config);
    let waiting = spawn_waiting(&node, 2);
    let refused = node.spawn(SpawnOptions::new("test:child", HOST).args(args("return", "")));
    assert_eq!(
        refused,
        Err(SpawnError::Limit(
            "processes: the node's pool of 2 processes is full".into()
        ))
    );
    cancel_all(&node, waiting).await;
}

/// Spawns `n` children that wait to be cancelled, as the node itself spawns (a supervisor,
/// `wasmhost run`).
fn spawn_waiting(node: &Arc<Node>, n: usize) -> Vec<(Pid, oneshot::Receiver<ExitReason>)> {
    (0..n)
        .map(|_| {
            let (tx, exit) = oneshot::channel();
            let options = SpawnOptions::new("test:child", HOST)
                .args(args("wait-cancel", ""))
                .on_exit(tx);
            (node.spawn(options).expect("a slot is free"), exit)
        })
        .collect()
}

/// Cancels them and checks each returned the cancel's reason.
async fn cancel_all(node: &Node, waiting: Vec<(Pid, oneshot::Receiver<ExitReason>)>) {
    for (pid, _) in &waiting {
        node.cancel(pid, "done".into(), Duration::from_secs(5));
    }
    for (_, exit) in waiting {
        assert_eq!(
            exit_of(exit).await,
            ExitReason::Normal(payload::encode("done"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_sees_a_full_pool_as_a_spawn_error() {
    // The scenario itself takes one of the three slots.
    let config = NodeConfig {
        max_processes: 3,
        ..NodeConfig::default()
    };
    let (_app, node) = common::node_with(REGISTRY, config);
    let (tx, exit) = oneshot::channel();
    let options = SpawnOptions::new("test:scenarios", HOST)
        .args(args("spawn-until-refused", "10"))
        .on_exit(tx);
    node.spawn(options).expect("spawning the scenario");
    let value = match exit_of(exit).await {
        ExitReason::Normal(bytes) => payload::decode::<Value>(&bytes).expect("CBOR"),
        other => panic!("the scenario ended with {other}"),
    };
    assert_eq!(
        value,
        Value::Array(vec![
            Value::Integer(2.into()),
            Value::Text("limit: processes: the node's pool of 3 processes is full".into()),
        ])
    );
}

/// A spawn storm inside the app fills the pool up to the reserved slots; the node's own
/// spawns (a service restarting, `wasmhost run`) still find room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_storm_leaves_the_reserved_slots_to_the_node() {
    let config = NodeConfig {
        max_processes: 6,
        reserved_processes: Some(2),
        ..NodeConfig::default()
    };
    let (_app, node) = common::node_with(REGISTRY, config);
    let (tx, exit) = oneshot::channel();
    let options = SpawnOptions::new("test:scenarios", HOST)
        .args(args("spawn-until-refused", "10"))
        .on_exit(tx);
    let storm = node.spawn(options).expect("spawning the scenario");
    let value = match exit_of(exit).await {
        ExitReason::Normal(bytes) => payload::decode::<Value>(&bytes).expect("CBOR"),
        other => panic!("the scenario {storm} ended with {other}"),
    };
    assert_eq!(
        value,
        Value::Array(vec![
            Value::Integer(3.into()),
            Value::Text(
                "limit: processes: the node's pool of 6 processes is full (2 are kept for services)"
                    .into()
            ),
        ]),
        "1 scenario + 3 children = the 4 slots the app may fill"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserved_slots_are_the_nodes_own() {
    let config = NodeConfig {
        max_processes: 3,
        reserved_processes: Some(2),
        ..NodeConfig::default()
    };
    let (_app, node) = common::node_with(REGISTRY, config);
    // The node's own spawns fill the whole pool, reserved slots included.
    let waiting = spawn_waiting(&node, 3);
    cancel_all(&node, waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_workers_runs_its_processes_on_threads_of_its_own() {
    let (_app, node) = common::node_with(REGISTRY, NodeConfig::default());
    let solo = node
        .host_threads("test:solo")
        .expect("solo has its own threads");
    assert_eq!(solo.threads, 1);
    assert_eq!(solo.processes, 0);
    assert!(
        node.host_threads(HOST).is_none(),
        "procs shares the node's threads"
    );

    let (tx, exit) = oneshot::channel();
    let options = SpawnOptions::new("test:child", "test:solo")
        .args(args("wait-cancel", ""))
        .on_exit(tx);
    let pid = node.spawn(options).expect("spawning on solo");
    assert_eq!(&*pid.host, "test:solo");
    let solo = node.host_threads("test:solo").expect("solo's threads");
    assert_eq!(solo.processes, 1, "its task runs on solo's threads");
    node.cancel(&pid, "done".into(), Duration::from_secs(5));
    assert_eq!(
        exit_of(exit).await,
        ExitReason::Normal(payload::encode("done"))
    );
}

#[test]
fn a_limit_above_the_pool_is_refused_before_anything_starts() {
    let registry = format!(
        "{REGISTRY}  - name: big\n    kind: process.wasm\n    source: \"{{artifacts}}/test_child.wasm\"\n    modules: [process, time]\n    limits:\n      memory: 128MiB\n"
    );
    let err = Node::builder(common::load(common::app_with(&registry).path()))
        .interfaces(wasmhost::abi::INTERFACES)
        .build()
        .err()
        .expect("128 MiB does not fit a 64 MiB slot");
    let text = err.to_string();
    assert!(
        text.contains(
            "entry test:big: `limits.memory`: 128.0 MiB is more than the node's `max_memory` of 64.0 MiB"
        ),
        "{text}"
    );
}
