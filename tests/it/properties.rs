//! The fuzz targets' checks (`fuzz/checks.rs`) on stable, in every test run: on random inputs
//! shaped like the real ones, and on every input of the fuzz corpora kept in `fuzz/corpus/`.
//! The long runs are cargo-fuzz's (`fuzz/README.md`).

#[path = "../../fuzz/checks.rs"]
mod checks;
use crate::common;
#[path = "../../fuzz/host_calls.rs"]
mod host_calls;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rusty_fork::rusty_fork_test;

/// A registry file made of plausible and implausible pieces: kinds and fields of the schema,
/// fields of other kinds, values of the wrong type, anchors, deep nesting.
fn registry_text() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        "process.wasm",
        "process.host",
        "terminal.host",
        "process.service",
        "process.lua",
        "",
    ]);
    let field = prop::sample::select(vec![
        "source",
        "method",
        "modules",
        "hash",
        "limits",
        "names",
        "authority",
        "workers",
        "lifecycle",
        "process",
        "host",
        "args",
        "bogus",
    ]);
    let value = prop::sample::select(vec![
        "x.wasm",
        "[process, time, nope]",
        "{memory: 1MiB, cpu: 2s, mailbox: 0, cpu_rate: \"150%\"}",
        "{memroy: 1}",
        "any",
        "[app:a, b]",
        "{auto_start: false, requires: [x], start_timeout: 1s}",
        "{restart: {backoff_factor: 0.5, jitter: 2, max_attempts: -1}}",
        "{signal: any, spawn: [app:nope]}",
        "0",
        "-1",
        "18446744073709551616",
        "\"\"",
        "[[[[[[[[[[]]]]]]]]]]",
        "&anchor {a: 1}",
        "*anchor",
        "~",
        "1e309",
        "sha256:00",
        "\"\\u0000\\n\"",
    ]);
    let entry = (
        "[a-z-]{0,6}",
        kind,
        prop::collection::vec((field, value), 0..5),
    );
    (
        prop::sample::select(vec!["\"1.0\"", "\"2\"", "1.0"]),
        "[a-z]{0,4}",
        prop::collection::vec(entry, 0..6),
    )
        .prop_map(|(version, namespace, entries)| {
            let mut text = format!("version: {version}\nnamespace: {namespace}\nentries:\n");
            for (name, kind, fields) in entries {
                text.push_str(&format!("  - name: {name}\n    kind: {kind}\n"));
                for (field, value) in fields {
                    text.push_str(&format!("    {field}: {value}\n"));
                }
            }
            text
        })
}

/// CBOR-ish bytes: real encodings of nested values, cut or corrupted at random.
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(ciborium::Value::from),
        any::<String>().prop_map(ciborium::Value::Text),
        any::<Vec<u8>>().prop_map(ciborium::Value::Bytes),
        any::<bool>().prop_map(ciborium::Value::Bool),
        Just(ciborium::Value::Null),
        any::<f64>().prop_map(ciborium::Value::Float),
    ];
    let value = leaf.prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(ciborium::Value::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(ciborium::Value::Map),
        ]
    });
    (
        value,
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(value, at, byte, corrupt)| {
            let mut bytes = wasmhost_types::payload::encode(&value);
            if corrupt && !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_registry_text_loads_or_is_diagnosed(text in registry_text()) {
        checks::registry(&text);
    }

    #[test]
    fn any_text_at_all_as_a_registry(text in any::<String>()) {
        checks::registry(&text);
    }

    #[test]
    fn any_root_file(text in "(\\[node\\]|\\[node.limits\\]|\\[app\\]|[a-z_]{1,12} = (\"[0-9a-zA-Z%]{0,6}\"|[0-9-]{1,20})|\n){0,12}") {
        checks::root_file(&text);
    }

    #[test]
    fn any_payload_is_shown_on_one_bounded_line(bytes in payload_bytes()) {
        checks::payload(&bytes);
    }

    #[test]
    fn any_bytes_as_a_payload(bytes in any::<Vec<u8>>()) {
        checks::payload(&bytes);
    }

    #[test]
    fn any_log_line_stays_one_bounded_line(
        message in any::<String>(),
        fields in prop::collection::vec((any::<String>(), payload_bytes()), 0..40),
    ) {
        checks::log_line(&message, &fields);
    }

    #[test]
    fn any_pid_text(text in "\\{[a-z:|]{0,8}\\|0x[0-9a-fA-F]{0,18}\\}|.{0,20}") {
        checks::pid(&text);
    }

    #[test]
    fn any_value_text(text in "[0-9. ]{0,6}(ms|s|m|h|KiB|MiB|GiB|B|%|)") {
        checks::values(&text);
    }
}

/// Every input cargo-fuzz kept in `fuzz/corpus/` passes its checks.
#[test]
fn the_fuzz_corpora_pass_their_checks() {
    let corpora = common::repo().join("fuzz/corpus");
    let mut inputs = 0;
    for (target, check) in [
        ("registry", checks::registry as fn(&str)),
        ("root_file", checks::root_file),
        ("text_values", |t: &str| {
            checks::pid(t);
            checks::values(t);
        }),
    ] {
        for input in corpus(&corpora.join(target)) {
            check(&String::from_utf8_lossy(&input));
            inputs += 1;
        }
    }
    for input in corpus(&corpora.join("payload")) {
        checks::payload(&input);
        inputs += 1;
    }
    // The log_line target takes structured input, built from its bytes by `arbitrary`.
    for input in corpus(&corpora.join("log_line")) {
        let bytes = arbitrary::Unstructured::new(&input);
        if let Ok((message, fields)) =
            <(String, Vec<(String, Vec<u8>)>) as arbitrary::Arbitrary>::arbitrary_take_rest(bytes)
        {
            checks::log_line(&message, &fields);
            inputs += 1;
        }
    }
    assert!(inputs > 0, "the corpora in {} are empty", corpora.display());
}

fn corpus(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

// The harness reads the resident memory of the whole test process, so this test runs in a
// process of its own (rusty-fork runs it as a child of the test binary).
rusty_fork_test! {
/// The host-call fuzzer's corpus, and random scripts: each runs in a process of a node with
/// small budgets, and the harness checks that the host survives it whole (`host_calls.rs`).
#[test]
fn scripts_of_host_calls_leave_the_host_whole() {
    let component = common::guest_artifacts().join("test_host_calls.wasm");
    let harness = host_calls::Harness::new(&component);
    let mut scripts = corpus(&common::repo().join("fuzz/corpus/host_calls"));
    assert!(!scripts.is_empty(), "the host_calls corpus is empty");
    // And random ones, the same every run (a failure can be replayed).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let random = prop::collection::vec(any::<u8>(), 0..512);
    for _ in 0..64 {
        scripts.push(random.new_tree(&mut runner).expect("a script").current());
    }
    let mut calls = 0;
    for script in &scripts {
        if let Some((made, _, _)) = harness.run(script).calls {
            calls += made;
        }
    }
    assert!(calls > 0, "no script made a call");
}
}
