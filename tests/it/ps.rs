//! `wasmhost ps` against a running node: the supervision tree and the live processes, as
//! text and as JSON, through a control socket only this user can reach, gone when the node
//! stops; and `wasmhost top`, the same live in a pseudo-terminal.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const REGISTRY: &str = r#"
  - name: processes
    kind: process.host
  - name: child
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
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
  - name: inner
    kind: process.supervisor
    children: [b]
  - name: top
    kind: process.supervisor
    strategy: rest_for_one
    children: [a, inner]
    lifecycle:
      auto_start: true
"#;

/// `wasmhost` for `app`, with its runtime folder in `runtime`.
fn wasmhost(app: &Path, runtime: &Path) -> Command {
    let mut command = common::wasmhost();
    command
        .env("XDG_RUNTIME_DIR", runtime)
        .arg("--app")
        .arg(app);
    command
}

/// A `wasmhost run` that is killed if the test fails before it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wasmhost run` and returns once it says every service runs, with the rest of its
/// log to come on the receiver.
fn run_node(app: &Path, runtime: &Path) -> (Running, mpsc::Receiver<String>) {
    let mut node = Running(
        wasmhost(app, runtime)
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasmhost run"),
    );
    let stderr = node.0.stderr.take().expect("its stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the node says its services run within a minute");
        if line.contains("all services running") {
            return (node, lines);
        }
    }
}

fn ps(app: &Path, runtime: &Path, json: bool) -> Output {
    let mut command = wasmhost(app, runtime);
    command.arg("ps");
    if json {
        command.arg("--json");
    }
    command.output().expect("running wasmhost ps")
}

#[test]
fn ps_shows_the_tree_and_every_process_of_the_running_node() {
    common::build_guests();
    let app = common::app_with(REGISTRY);
    let runtime = tempfile::tempdir().expect("a runtime folder");
    let (mut node, _log) = run_node(app.path(), runtime.path());

    let out = ps(app.path(), runtime.path(), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(snapshot["node"]["os_pid"], node.0.id());
    let tree = snapshot["tree"].as_array().expect("a tree");
    let rows: Vec<(&str, &str, Option<&str>, &str)> = tree
        .iter()
        .map(|u| {
            (
                u["id"].as_str().unwrap_or_default(),
                u["kind"].as_str().unwrap_or_default(),
                u["parent"].as_str(),
                u["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("app:top", "supervisor", None, "running"),
            ("app:a", "service", Some("app:top"), "running"),
            ("app:inner", "supervisor", Some("app:top"), "running"),
            ("app:b", "service", Some("app:inner"), "running"),
        ]
    );
    let processes = snapshot["processes"].as_array().expect("processes");
    assert_eq!(processes.len(), 2, "{processes:?}");
    for (process, service) in processes.iter().zip(["app:a", "app:b"]) {
        assert_eq!(process["entry"], "app:child");
        assert_eq!(process["host"], "app:processes");
        assert_eq!(process["service"], service);
        assert_eq!(process["mailbox"], 0);
        assert!(
            process["memory"].as_u64().is_some_and(|m| m > 0),
            "{process}"
        );
        let unit = tree.iter().find(|u| u["id"] == service).expect("its unit");
        assert_eq!(unit["pid"], process["pid"]);
    }

    let out = ps(app.path(), runtime.path(), false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "SUPERVISION ",
        "\napp:top ",
        "\n├─ app:a ",
        "\n└─ app:inner ",
        "\n   └─ app:b ",
        "\nPID ",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    for process in processes {
        let pid = process["pid"].as_str().expect("a pid");
        assert!(text.contains(&format!("\n{pid}  app:child")), "{text}");
    }

    // A filter: `inner` is the app's one unit of that name; its subtree and b's process.
    let filtered = wasmhost(app.path(), runtime.path())
        .args(["ps", "inner"])
        .output()
        .expect("running wasmhost ps inner");
    let text = String::from_utf8_lossy(&filtered.stdout);
    assert!(
        filtered.status.success(),
        "{}",
        String::from_utf8_lossy(&filtered.stderr)
    );
    let b_pid = processes[1]["pid"].as_str().expect("b's pid");
    let a_pid = processes[0]["pid"].as_str().expect("a's pid");
    for line in ["showing 1 of them", "\napp:inner ", "\n└─ app:b ", b_pid] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    assert!(!text.contains("app:top") && !text.contains(a_pid), "{text}");
    // A mistyped one is refused before the node is asked, with the nearest name.
    let mistyped = wasmhost(app.path(), runtime.path())
        .args(["ps", "iner"])
        .output()
        .expect("running wasmhost ps iner");
    let stderr = String::from_utf8_lossy(&mistyped.stderr);
    assert_eq!(mistyped.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no service, supervisor or entry `iner`")
            && stderr.contains("did you mean `app:inner`?"),
        "{stderr}"
    );

    // A stopped node does not answer: `ps` says so rather than waiting for ever.
    let stopped = rustix::process::Pid::from_child(&node.0);
    rustix::process::kill_process(stopped, rustix::process::Signal::STOP).expect("SIGSTOP");
    let out = ps(app.path(), runtime.path(), false);
    rustix::process::kill_process(stopped, rustix::process::Signal::CONT).expect("SIGCONT");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("did not answer within 5s (is it stopped?)"),
        "{stderr}"
    );

    // Only this user may reach the socket.
    let socket = std::fs::read_dir(runtime.path().join("wasmhost"))
        .expect("the runtime folder")
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("control.sock"))
        .next()
        .expect("the app's folder");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
    };
    assert_eq!(mode(&socket) & 0o777, 0o600);
    assert_eq!(mode(socket.parent().expect("its folder")) & 0o777, 0o700);

    // SIGTERM stops the node cleanly, and the socket goes with it.
    let pid = rustix::process::Pid::from_child(&node.0);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = node.0.wait().expect("the node ends");
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket is removed");
    let out = ps(app.path(), runtime.path(), false);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: no node of this app is running"),
        "{stderr}"
    );
}

#[test]
fn top_shows_the_tree_and_the_processes_live_sorts_on_a_key_and_quits_on_q() {
    common::build_guests();
    let app = common::app_with(REGISTRY);
    let runtime = tempfile::tempdir().expect("a runtime folder");
    let (_node, _log) = run_node(app.path(), runtime.path());

    // In a pseudo-terminal of 40 rows and 160 columns.
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("stty rows 40 cols 160 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_wasmhost"))
        .arg("--app")
        .arg(app.path())
        .args(["top", "--interval", "200ms"])
        .env("XDG_RUNTIME_DIR", runtime.path());
    let mut session = rexpect::session::spawn_with_options(
        command,
        rexpect::reader::Options::new()
            .timeout_ms(Some(20_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("starting wasmhost top in a pseudo-terminal");
    // A screen drawn whole shows its text without its blanks (the cursor moves past them).
    session.exp_string("sortedbycpu").expect("the help line");
    session.exp_string("SUPERVISION").expect("the tree");
    session
        .exp_string("app:inner")
        .expect("a supervisor of the tree");
    session.exp_string("STATE").expect("the process table");
    session.exp_string("MAILBOX").expect("its columns");
    session
        .exp_string("app:child")
        .expect("a process of the table");
    session.send("m").expect("pressing m");
    session.flush().expect("the key sent");
    session
        .exp_string("sortedbymemory")
        .expect("sorted by memory now");
    session.send("q").expect("pressing q");
    session.flush().expect("the key sent");
    session.exp_eof().expect("top ends");
    let status = session.process().wait().expect("its exit status");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}

#[test]
fn top_without_a_terminal_says_to_use_ps() {
    let app = common::app_with(REGISTRY);
    let runtime = tempfile::tempdir().expect("a runtime folder");
    let out = wasmhost(app.path(), runtime.path())
        .arg("top")
        .output()
        .expect("running wasmhost top");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("`wasmhost top` needs a terminal; `wasmhost ps`"),
        "{stderr}"
    );
}
