//! The guest libraries of the other languages (guests/python/wasmhost/, guests/js/wasmhost/,
//! guests/c/wasmhost/), each exercised by a process in its language (guests/*/checks/, the
//! same checks): sending
//! by name, the unknown-name error, select with a timeout, EXIT of monitored children with
//! their results, log fields arriving as fields, and what such a process is denied: the
//! network, files, and the modules its entry is not granted.

use crate::common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ciborium::Value;
use tokio::sync::oneshot;
use wasmhost::payload;
use wasmhost::runtime::{ExitReason, Moved, Node, NodeConfig, SpawnOptions};

use common::runtime;

const REGISTRY: &str = r#"
  - name: terminal
    kind: terminal.host
  - name: processes
    kind: process.host
  - name: checks-py
    kind: process.wasm
    source: "{python}/checks.wasm"
    modules: [process, time, logger]
  - name: checks-js
    kind: process.wasm
    source: "{js}/checks.wasm"
    modules: [process, time, logger]
  - name: checks-c
    kind: process.wasm
    source: "{c}/checks.wasm"
    modules: [process, time, logger]
  # The same components, for the upgrade test alone (an upgrade moves every process of its
  # entry).
  - name: upgrade-py
    kind: process.wasm
    source: "{python}/checks.wasm"
    modules: [process, time, logger]
  - name: upgrade-js
    kind: process.wasm
    source: "{js}/checks.wasm"
    modules: [process, time, logger]
  - name: upgrade-c
    kind: process.wasm
    source: "{c}/checks.wasm"
    modules: [process, time, logger]
  # The same components, granted less: their time calls fail.
  - name: checks-py-without-time
    kind: process.wasm
    source: "{python}/checks.wasm"
    modules: [process]
  - name: checks-js-without-time
    kind: process.wasm
    source: "{js}/checks.wasm"
    modules: [process]
  - name: checks-c-without-time
    kind: process.wasm
    source: "{c}/checks.wasm"
    modules: [process]
"#;

/// A language, its checks entry, and how it words what the checks compare.
struct Language {
    entry: &'static str,
    /// How `repr`/`JSON.stringify` show a string.
    quoted_nobody: &'static str,
    /// An exception with the message "on purpose", as the entry point reports it.
    error: &'static str,
    /// `{answer: 42}` as the library shows a returned value.
    shown_answer: &'static str,
    /// What trying the network gives: what the check returns, or the trap it ends with
    /// (`None`: the language has no network API here at all).
    network: Option<Result<&'static str, &'static str>>,
    /// What opening /etc/passwd gives (`None`: no file API).
    file: Option<&'static str>,
}

const PYTHON: Language = Language {
    entry: "app:checks-py",
    quoted_nobody: "'nobody'",
    error: "ValueError: on purpose",
    shown_answer: "{'answer': 42}",
    network: Some(Ok("ModuleNotFoundError: No module named 'socket'")),
    file: Some("FileNotFoundError: [Errno 44] No such file or directory: '/etc/passwd'"),
};

const JAVASCRIPT: Language = Language {
    entry: "app:checks-js",
    quoted_nobody: "\"nobody\"",
    error: "Error: on purpose",
    shown_answer: "{\"answer\":42}",
    // `fetch` needs an HTTP import the component does not have.
    network: Some(Err("wasm trap: wasm `unreachable` instruction executed")),
    file: None,
};

/// C's library shows a returned value as `returned`, and an error as its message.
const C: Language = Language {
    entry: "app:checks-c",
    quoted_nobody: "\"nobody\"",
    error: "on purpose",
    shown_answer: "returned",
    // wasi-libc (WASI preview1) declares no `socket`.
    network: None,
    file: Some("Capabilities insufficient"),
};

const LANGUAGES: [&Language; 3] = [&PYTHON, &JAVASCRIPT, &C];

/// One node for the binary (a Python component takes seconds to compile without the cache).
fn node() -> Arc<Node> {
    static NODE: OnceLock<(tempfile::TempDir, Arc<Node>)> = OnceLock::new();
    NODE.get_or_init(|| common::node_with(REGISTRY, NodeConfig::default()))
        .1
        .clone()
}

/// Runs `entry` in `mode` and returns how it ended.
fn run(entry: &str, mode: &str, arg: Value) -> ExitReason {
    let node = node();
    let args = vec![payload::encode(mode), payload::encode(&arg)];
    let options = SpawnOptions::new(entry, "app:processes").args(args);
    runtime().block_on(common::run_to_exit(&node, options))
}

/// Runs a check that must end normally; returns its value.
fn check(language: &Language, mode: &str, arg: Value) -> Value {
    match run(language.entry, mode, arg) {
        ExitReason::Normal(value) => payload::decode(&value).expect("a CBOR value"),
        other => panic!("{} {mode} ended with {other}", language.entry),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn every_library_reads_and_writes_a_pid_of_a_cluster_and_of_a_lone_node() {
    for text_ in [
        "{app:processes|0x00004}",
        "{b.7@app:processes|0x00004}",
        "{node-2.18446744073709551615@app:processes|0x1234567}",
    ] {
        for language in LANGUAGES {
            let seen = check(language, "pid", text(text_));
            assert_eq!(
                seen,
                Value::Array(vec![text(text_), Value::Bool(true)]),
                "{} reads {text_}",
                language.entry
            );
        }
    }
    for not_a_pid in [
        "{b@app:p|0x1}",
        "{B.7@app:p|0x1}",
        "{b.x@app:p|0x1}",
        "{b.7@|0x1}",
    ] {
        for language in LANGUAGES {
            let seen = check(language, "pid", text(not_a_pid));
            assert_eq!(seen, Value::Null, "{} reads {not_a_pid}", language.entry);
        }
    }
}

#[test]
fn a_message_sent_by_name_arrives_with_its_payload_and_sender() {
    for language in LANGUAGES {
        let seen = check(language, "send-by-name", Value::Null);
        let Value::Array(seen) = seen else {
            panic!("{seen:?}")
        };
        assert_eq!(seen[0], text("greeting"), "{}", language.entry);
        let Value::Map(payload) = &seen[1] else {
            panic!("{seen:?}")
        };
        assert_eq!(payload[0], (text("n"), Value::Integer(1.into())));
        // A pid inside a payload is its text.
        let pid = match &payload[1] {
            (key, Value::Text(pid)) if *key == text("pid") => pid,
            other => panic!("{other:?}"),
        };
        assert!(pid.starts_with("{app:processes|0x"), "{pid}");
        assert_eq!(seen[2], Value::Bool(true), "the sender is itself");
    }
}

#[test]
fn sending_to_an_unknown_name_raises_an_error_naming_it() {
    for language in LANGUAGES {
        assert_eq!(
            check(language, "unknown-name", Value::Null),
            Value::Array(vec![
                text("unknown_name"),
                text(&format!(
                    "no process is registered as {}",
                    language.quoted_nobody
                ))
            ]),
            "{}",
            language.entry
        );
    }
}

/// 100 messages to itself, taken back with each way of receiving; the libraries take runs of
/// waiting messages in one host call, so most come from the library's buffer, which every way
/// must see, in order, before it waits.
#[test]
fn messages_come_in_order_however_they_are_received() {
    let numbers: Vec<Value> = (0..100).map(|i| Value::Integer(i.into())).collect();
    for language in LANGUAGES {
        assert_eq!(
            check(language, "fifo", Value::Integer(100.into())),
            Value::Array(vec![Value::Array(numbers.clone()), Value::Bool(true)]),
            "{}",
            language.entry
        );
    }
}

#[test]
fn select_times_out_and_wakes_for_a_timer() {
    for language in LANGUAGES {
        assert_eq!(
            check(language, "select-timeout", Value::Null),
            Value::Array(vec![Value::Null, Value::Bool(true), Value::Bool(true)]),
            "{}",
            language.entry
        );
    }
}

#[test]
fn monitored_children_exit_with_their_result_or_their_error() {
    for language in LANGUAGES {
        let seen = check(language, "monitor", text(language.entry));
        let answer = Value::Map(vec![(text("answer"), Value::Integer(42.into()))]);
        assert_eq!(
            seen,
            Value::Array(vec![
                Value::Array(vec![
                    Value::Bool(true),
                    text("normal"),
                    answer,
                    text(""),
                    text(language.shown_answer),
                ]),
                Value::Array(vec![
                    Value::Bool(true),
                    text("error"),
                    Value::Null,
                    text(language.error),
                    text(&format!("error: {}", language.error)),
                ]),
            ]),
            "{}",
            language.entry
        );
    }
}

#[test]
fn log_fields_arrive_in_the_host_log_as_fields() {
    let dir = common::app_with(REGISTRY);
    for (language, name) in [(&PYTHON, "py"), (&JAVASCRIPT, "js"), (&C, "c")] {
        let out = common::wasmhost()
            .arg("--app")
            .arg(dir.path())
            .args(["run", language.entry, "--", "log"])
            .output()
            .expect("running wasmhost");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("checked"))
            .unwrap_or_else(|| panic!("no log line in:\n{stderr}"));
        assert!(
            line.contains(&format!(
                "{}: checked count=3 name={name} items=[1, 2] pid={{app:terminal|0x",
                language.entry
            )),
            "{line}"
        );
    }
}

#[test]
fn a_process_in_another_language_gets_no_network_and_no_files() {
    for language in LANGUAGES {
        if let Some(network) = language.network {
            let expected = match network {
                Ok(returned) => ExitReason::Normal(payload::encode(returned)),
                Err(trap) => ExitReason::Trap(trap.into()),
            };
            assert_eq!(
                run(language.entry, "socket", Value::Null),
                expected,
                "{}",
                language.entry
            );
        }
        if let Some(file) = language.file {
            assert_eq!(
                check(language, "file", Value::Null),
                text(file),
                "{}",
                language.entry
            );
        }
    }
}

#[test]
fn a_call_into_a_module_not_granted_ends_the_process_naming_it_and_the_node_goes_on() {
    for language in LANGUAGES {
        let denied = format!("{}-without-time", language.entry);
        match run(&denied, "ungranted", Value::Null) {
            ExitReason::Trap(message) => assert_eq!(
                message,
                format!(
                    "wasmhost:abi/time@0.5.0#sleep: `time` is not granted to {denied} (add it \
                     to the entry's `modules`)"
                )
            ),
            other => panic!("expected a trap, got {other}"),
        }
        // The same component, granted `time`, runs on the same node.
        assert_eq!(
            run(language.entry, "ungranted", Value::Null),
            ExitReason::Normal(payload::encode("slept"))
        );
    }
}

/// A Python process takes 14 of the pool's core instances, where the pool counts 4 per
/// process: the spawn that would not fit is refused with `limit`, not started and failed.
#[test]
fn a_pool_full_of_python_processes_refuses_the_next_spawn() {
    let config = NodeConfig {
        max_processes: 4,
        ..NodeConfig::default()
    };
    let (_dir, node) = common::node_with(REGISTRY, config);
    runtime().block_on(async {
        let spawn = || {
            let (tx, exit) = oneshot::channel();
            let args = vec![payload::encode("wait"), payload::encode("")];
            node.spawn(
                SpawnOptions::new("app:checks-py", "app:processes")
                    .args(args)
                    .on_exit(tx),
            )
            .map(|pid| (pid, exit))
        };
        let (first, exit) = spawn().expect("one fits");
        let refused = spawn().map(|(pid, _)| pid).expect_err("a second does not");
        assert_eq!(
            refused.to_string(),
            "limit: processes: the node's pool is full: 14 of its 16 core instances are in use \
             and app:checks-py takes 14"
        );
        node.cancel(&first, "done".into(), Duration::from_secs(5));
        let reason = tokio::time::timeout(Duration::from_secs(30), exit).await;
        assert_eq!(
            reason.expect("it ends").expect("a reason"),
            ExitReason::Normal(payload::encode("done"))
        );
    });
}

/// Each library hibernates the way the Rust SDK does: `main` is called again with the spawn
/// arguments, `resumed` gives the state, messages taken from the host but not read yet are
/// kept and come first (they wake it at once), and a wake-up time wakes it.
#[test]
fn every_library_hibernates_and_resumes_with_its_state_its_arguments_and_its_unread_messages() {
    let numbers: Vec<Value> = (0..3).map(|i| Value::Integer(i.into())).collect();
    for language in LANGUAGES {
        assert_eq!(
            check(language, "hibernate", Value::Integer(3.into())),
            Value::Array(vec![
                Value::Integer(3.into()),
                Value::Array(numbers.clone()),
                Value::Bool(true)
            ]),
            "{}",
            language.entry
        );
    }
}

/// Each library hands over in an upgrade as the Rust SDK does: on the `upgrade` event it
/// hibernates with its state, and the instance of the new component (the same process)
/// finds the state and the message that waited in its mailbox meanwhile.
#[test]
fn every_library_hands_over_its_state_and_its_mailbox_in_an_upgrade() {
    let node = node();
    for entry in ["app:upgrade-py", "app:upgrade-js", "app:upgrade-c"] {
        runtime().block_on(async {
            let (tx, exit) = oneshot::channel();
            let args = vec![payload::encode("upgrade"), payload::encode(&42)];
            let options = SpawnOptions::new(entry, "app:processes").args(args);
            let pid = node.spawn(options.on_exit(tx)).expect("spawned");
            // The registry's entry as it is: the same component, compiled again (from the
            // compile cache).
            let new = node.app().processes[entry].clone();
            let report = node
                .upgrade(new, &[], Duration::from_secs(10))
                .await
                .expect("upgraded");
            assert_eq!(report.processes, vec![(pid, Moved::HandedOver)], "{entry}");
            assert!(!report.rolled_back);
            let reason = tokio::time::timeout(common::PATIENCE, exit)
                .await
                .expect("in time")
                .expect("its exit");
            let ExitReason::Normal(value) = reason else {
                panic!("{entry} ended with {reason}");
            };
            let value: Value = payload::decode(&value).expect("CBOR");
            let (answer, number) = (Value::Integer(42.into()), Value::Integer(7.into()));
            assert_eq!(value, Value::Array(vec![answer, number]), "{entry}");
        });
    }
}
