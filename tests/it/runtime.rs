//! The runtime's semantics, observed from inside processes: each test runs a scenario
//! guest (guests/testing/scenarios) that drives the ABI and returns what it saw.

use crate::common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ciborium::Value;
use tokio::sync::oneshot;

use wasmhost::payload;
use wasmhost::runtime::{ExitReason, Node, NodeConfig, SpawnOptions};
use wasmhost::services::Services;

use common::runtime;

const HOST: &str = "test:procs";

/// One node for the whole binary: the components compile once.
fn node() -> Arc<Node> {
    static NODE: OnceLock<Arc<Node>> = OnceLock::new();
    NODE.get_or_init(|| {
        common::build_guests();
        let app = common::load(&common::repo().join("guests/testing/app"));
        common::node_of(app, NodeConfig::default())
    })
    .clone()
}

/// Runs `entry` with string arguments and returns how it ended.
fn run(entry: &str, args: &[&str]) -> ExitReason {
    let node = node();
    let args = args.iter().map(payload::encode).collect();
    runtime().block_on(common::run_to_exit(
        &node,
        SpawnOptions::new(entry, HOST).args(args),
    ))
}

/// Runs a scenario that must end normally; returns its value.
fn scenario(name: &str, arg: &str) -> Value {
    match run("test:scenarios", &[name, arg]) {
        ExitReason::Normal(bytes) => {
            ciborium::from_reader(bytes.as_slice()).expect("a CBOR result")
        }
        other => panic!("scenario {name} ended with {other}"),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

#[test]
fn send_by_pid_reaches_the_process() {
    assert_eq!(scenario("send-by-pid", "hello"), text("hello"));
}

#[test]
fn send_by_registered_name_reaches_the_holder() {
    assert_eq!(scenario("send-by-name", "by name"), text("by name"));
}

#[test]
fn send_to_an_unknown_name_is_an_error_the_sender_sees() {
    assert_eq!(
        scenario("send-to-unknown-name", "x"),
        text("no process is registered as `nobody`")
    );
}

#[test]
fn messages_from_one_sender_arrive_in_order() {
    let expected: Vec<Value> = (0..200).map(|i| Value::Integer(i.into())).collect();
    assert_eq!(scenario("fifo", "200"), Value::Array(expected));
}

#[test]
fn the_monitor_gets_the_childs_return_value() {
    assert_eq!(scenario("monitor", "return 7"), text("7"));
}

fn reason_map(value: Value) -> (String, String) {
    match value {
        Value::Map(entries) if entries.len() == 1 => match &entries[0] {
            (Value::Text(k), Value::Text(v)) => (k.clone(), v.clone()),
            other => panic!("unexpected entry {other:?}"),
        },
        other => panic!("not an abnormal exit: {other:?}"),
    }
}

#[test]
fn the_monitor_gets_the_childs_error() {
    assert_eq!(
        reason_map(scenario("monitor", "error it broke")),
        ("error".to_string(), "it broke".to_string())
    );
}

#[test]
fn the_monitor_gets_the_childs_trap_with_the_panic_message() {
    let (kind, message) = reason_map(scenario("monitor", "panic boom at the worker"));
    assert_eq!(kind, "trap");
    assert!(message.contains("boom at the worker"), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

/// A component may import an interface its entry is not granted (Python's toolchain imports
/// them all): it loads, and a call into it fails, naming the module.
#[test]
fn a_call_into_an_interface_not_granted_fails_naming_the_module() {
    // `return` makes no time call: the process runs.
    assert_eq!(
        run("test:timeless", &["return", "fine"]),
        ExitReason::Normal(payload::encode("fine"))
    );
    match run("test:timeless", &["fail-after", "1ms"]) {
        ExitReason::Trap(message) => assert_eq!(
            message,
            "wasmhost:abi/time@0.5.0#[constructor]timer: `time` is not granted to test:timeless (add it to \
             the entry's `modules`)"
        ),
        other => panic!("expected a trap, got {other}"),
    }
}

#[test]
fn a_name_is_free_again_after_its_owner_exits() {
    let value = scenario("name-freed-on-exit", "");
    let Value::Array(items) = value else {
        panic!("{value:?}")
    };
    let Value::Text(while_alive) = &items[0] else {
        panic!("registering a held name must fail: {items:?}")
    };
    assert!(
        while_alive.starts_with("the name is held by {test:procs|0x"),
        "{while_alive}"
    );
    assert_eq!(items[1], Value::Null, "lookup after the owner exited");
    assert_eq!(items[2], Value::Bool(true), "registering the freed name");
}

#[test]
fn select_picks_whichever_source_is_ready_first() {
    assert_eq!(
        scenario("select-first-ready", ""),
        Value::Array(vec![text("mailbox"), text("timer")])
    );
}

#[test]
fn tasks_share_the_process_memory_and_channels_connect_them() {
    assert_eq!(
        scenario("tasks-share-memory", ""),
        Value::Integer(55.into())
    );
}

#[test]
fn a_process_that_breaks_its_memory_limit_ends_with_a_limit_reason() {
    match run("test:greedy", &["grow", ""]) {
        ExitReason::Limit(message) => {
            assert!(message.starts_with("memory: "), "{message}");
            assert!(
                message.ends_with("exceeds the limit of 4194304 bytes"),
                "{message}"
            );
        }
        other => panic!("expected a memory limit, got {other}"),
    }
}

fn texts(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|s| text(s)).collect())
}

#[test]
fn a_full_mailbox_refuses_the_next_message_with_an_error_naming_the_receiver() {
    assert_eq!(
        scenario("mailbox-limit", ""),
        texts(&["ok", "ok", "ok", "the mailbox of CHILD is full"])
    );
}

#[test]
fn a_message_over_the_receivers_size_limit_is_refused() {
    assert_eq!(
        scenario("message-size-limit", ""),
        texts(&["ok", "payload over the receiver's limit of 64 bytes"])
    );
}

#[test]
fn a_spawn_over_the_children_limit_fails_until_a_child_exits() {
    let outcomes = match run("test:few-children", &["children-limit", ""]) {
        ExitReason::Normal(bytes) => {
            ciborium::from_reader::<Value, _>(bytes.as_slice()).expect("a CBOR result")
        }
        other => panic!("the scenario ended with {other}"),
    };
    assert_eq!(
        outcomes,
        texts(&[
            "ok",
            "ok",
            "limit: children: SELF already has 2 live children, its limit",
            "ok after one exited",
        ])
    );
}

#[test]
fn a_sender_that_filled_its_share_of_a_mailbox_does_not_lock_others_out() {
    let outcomes = match run("test:scenarios", &["mailbox-share", ""]) {
        ExitReason::Normal(bytes) => {
            ciborium::from_reader::<Value, _>(bytes.as_slice()).expect("a CBOR result")
        }
        other => panic!("the scenario ended with {other}"),
    };
    let full = "the mailbox of HOARDER is full";
    assert_eq!(
        outcomes,
        texts(&[
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            "ok",
            full,
            full,
            "other sender: ok"
        ]),
        "six of eight slots for the first sender; the rest kept for others"
    );
}

#[test]
fn a_spinning_process_is_stopped_by_its_cpu_limit_and_others_keep_running() {
    let node = node();
    runtime().block_on(async {
        let (tx, spinner) = oneshot::channel();
        node.spawn(
            SpawnOptions::new("test:spinner", HOST)
                .args(vec![payload::encode("spin"), payload::encode("")])
                .on_exit(tx),
        )
        .expect("spawning the spinner");
        // While it spins, another process starts, runs and ends.
        let (tx, other) = oneshot::channel();
        node.spawn(
            SpawnOptions::new("test:child", HOST)
                .args(vec![payload::encode("return"), payload::encode("done")])
                .on_exit(tx),
        )
        .expect("spawning a bystander");
        let other = tokio::time::timeout(Duration::from_secs(5), other)
            .await
            .expect("the bystander is not stalled");
        assert_eq!(
            other.expect("an exit"),
            ExitReason::Normal(payload::encode("done"))
        );
        let spinner = tokio::time::timeout(Duration::from_secs(10), spinner)
            .await
            .expect("the spinner is stopped");
        assert_eq!(
            spinner.expect("an exit"),
            ExitReason::Limit("cpu: ran for more than 200 ms".into())
        );
    });
}

/// CPU is the time a process runs, not the wake-ups: 300 ticks of 10 ms take three seconds
/// of waiting and a few milliseconds of running, well within `cpu: 200ms`.
#[test]
fn an_idle_process_with_a_ticker_is_not_charged_for_waiting() {
    assert_eq!(
        run("test:ticking", &["tick", "300"]),
        ExitReason::Normal(payload::encode("300"))
    );
}

#[test]
fn terminate_ends_a_spinning_process_with_killed() {
    let node = node();
    runtime().block_on(async {
        let (tx, exit) = oneshot::channel();
        let pid = node
            .spawn(
                SpawnOptions::new("test:child", HOST)
                    .args(vec![payload::encode("spin"), payload::encode("")])
                    .on_exit(tx),
            )
            .expect("spawning");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(node.terminate(&pid, ExitReason::Killed("the test".into())));
        let reason = tokio::time::timeout(Duration::from_secs(5), exit)
            .await
            .expect("it stops");
        assert_eq!(
            reason.expect("an exit"),
            ExitReason::Killed("the test".into())
        );
        assert!(!node.is_alive(&pid), "it left the process table");
    });
}

#[test]
fn a_bad_argument_list_is_an_error_exit() {
    match run("test:child", &["only one"]) {
        ExitReason::Error(message) => assert_eq!(
            message,
            "bad arguments: cannot decode payload: expected 2 arguments, got 1"
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn a_failing_service_is_restarted_until_max_attempts_and_a_returning_one_is_not() {
    let node = node();
    runtime().block_on(async {
        let (tx, witness) = oneshot::channel();
        let args = vec![payload::encode("witness"), payload::encode("1500ms")];
        node.spawn(
            SpawnOptions::new("test:scenarios", HOST)
                .args(args)
                .on_exit(tx),
        )
        .expect("spawning the witness");
        tokio::time::timeout(common::PATIENCE, async {
            while node.lookup("witness").is_none() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the witness registers its name");
        // Restarts come after 50, 100 and 200 ms; the witness listens for 1.5 s.
        let services = Services::start(&node, None);
        let counts = match witness.await.expect("an exit") {
            ExitReason::Normal(bytes) => {
                ciborium::from_reader::<Value, _>(bytes.as_slice()).expect("CBOR")
            }
            other => panic!("the witness ended with {other}"),
        };
        services.stop().await;
        assert_eq!(
            counts,
            Value::Map(vec![
                (text("flaky"), Value::Integer(4.into())),
                (text("steady"), Value::Integer(1.into())),
            ]),
            "flaky runs once and is restarted 3 times; steady exits normally and stays down"
        );
    });
}

#[test]
fn a_ticker_ticks() {
    assert_eq!(scenario("ticker", ""), Value::Integer(3.into()));
}

#[test]
fn cancel_lets_a_process_stop_itself_and_ends_one_that_does_not() {
    let value = scenario("cancel", "");
    let Value::Map(results) = value else {
        panic!("{value:?}")
    };
    assert_eq!(
        results[0],
        (text("polite"), text("please stop")),
        "it returned the reason"
    );
    assert_eq!(
        results[1],
        (
            text("stubborn"),
            Value::Map(vec![(text("cancelled"), text("please stop"))])
        ),
        "it was ended after the grace period"
    );
}

#[test]
fn a_linked_failure_arrives_as_an_event_when_links_are_trapped() {
    assert_eq!(
        reason_map(scenario("trapped-link", "")),
        ("error".to_string(), "linked failure".to_string())
    );
}

#[test]
fn a_linked_failure_takes_the_process_down_when_links_are_not_trapped() {
    match run("test:scenarios", &["untrapped-link", ""]) {
        ExitReason::LinkDown(pid) => assert_eq!(&*pid.host, HOST),
        other => panic!("expected link-down, got {other}"),
    }
}
