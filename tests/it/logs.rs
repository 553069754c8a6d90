//! The log as JSON (`--log-format json`, or `[node] log_format = "json"`): every line one
//! object with its time and level; a guest's line with its pid, entry, message and fields as
//! typed values; the host's own fields at the top level.

use crate::common;

use serde_json::{Value, json};

const REGISTRY: &str = r#"
  - name: terminal
    kind: terminal.host
  - name: processes
    kind: process.host
  - name: counter
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time, logger]
    names: [sink]
  - name: sink
    kind: process.service
    process: app:counter
    host: app:processes
    args: [count-in, sink]
    lifecycle:
      auto_start: true
"#;

/// Runs the terminal entry `count-out 0` beside the `sink` service (it logs `sink registered`
/// and `numbers sent`), with `flags`: every line of its log, each parsed as JSON.
fn run_logged(app: &std::path::Path, flags: &[&str]) -> Vec<Value> {
    let out = common::wasmhost()
        .arg("--app")
        .arg(app)
        .args(flags)
        .args(["run", "app:counter", "--", "count-out", "\"0\""])
        .output()
        .expect("running wasmhost");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not JSON ({err}): {line}\nin:\n{stderr}"));
            assert!(
                value["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.ends_with('Z'))
                    && value["level"].is_string()
                    && value["message"].is_string(),
                "{line}"
            );
            value
        })
        .collect()
}

/// The one line whose message is `message`.
fn line<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    let found: Vec<&Value> = lines.iter().filter(|l| l["message"] == message).collect();
    assert_eq!(found.len(), 1, "one `{message}` in {lines:#?}");
    found[0]
}

#[test]
fn every_line_of_a_json_log_is_an_object_and_a_guests_fields_keep_their_types() {
    common::build_guests();
    let app = common::app_with(REGISTRY);
    let lines = run_logged(app.path(), &["--log-format", "json"]);

    // A guest's lines: who logged them, and each field as its JSON value.
    let sent = line(&lines, "numbers sent");
    assert_eq!(sent["level"], "INFO");
    assert_eq!(sent["entry"], "app:counter");
    assert!(
        sent["pid"]
            .as_str()
            .is_some_and(|pid| pid.starts_with("{app:terminal|")),
        "{sent}"
    );
    assert_eq!(sent["fields"], json!({ "count": 0, "refused": 0 }));
    let registered = line(&lines, "sink registered");
    assert!(
        registered["pid"]
            .as_str()
            .is_some_and(|pid| pid.starts_with("{app:processes|")),
        "{registered}"
    );
    assert_eq!(registered["fields"], json!({ "name": "sink" }));
    // The service a guest runs as, for a service's process only.
    assert_eq!(registered["service"], "app:sink");
    assert!(sent.get("service").is_none(), "{sent}");
    // The host's: its fields at the top level, numbers as numbers.
    let started = line(&lines, "service started");
    assert_eq!(started["service"], "app:sink");
    assert!(started["pid"].is_string(), "{started}");
    let exited = lines
        .iter()
        .find(|l| l["message"] == "service exited")
        .or_else(|| lines.iter().find(|l| l["message"] == "service stopped"));
    assert!(exited.is_some(), "{lines:#?}");

    // The app's setting does the same; the flag overrides it.
    let settings = app.path().join("wasmhost.toml");
    std::fs::write(&settings, "[node]\nlog_format = \"json\"\n").expect("writing the settings");
    let lines = run_logged(app.path(), &[]);
    assert_eq!(line(&lines, "numbers sent")["fields"]["count"], 0);
    let out = common::wasmhost()
        .arg("--app")
        .arg(app.path())
        .args([
            "--log-format",
            "text",
            "run",
            "app:counter",
            "--",
            "count-out",
            "\"0\"",
        ])
        .output()
        .expect("running wasmhost");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app:counter: numbers sent count=0 refused=0"),
        "{stderr}"
    );
}
