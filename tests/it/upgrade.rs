//! Hot upgrade: `wasmhost upgrade ENTRY` moves a running node's processes of an entry to its
//! new component, keeping the pid, the name and the mailbox, with the state the old instance
//! hands over; a new component that fails before it receives is rolled back. The app is the
//! echo app with the relay's component in a file of its own, and guests/testing/child's
//! `echo-clients` as clients.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use common::PATIENCE;
use serde_json::Value;

/// Clients of the relay: guests/testing/child in `echo-clients` mode.
const CLIENTS: &str = "
  - name: clients
    kind: process.wasm
    source: file://{artifacts}/test_child.wasm
    modules: [process, time, logger]
    authority:
      hosts: [app:processes]
";

/// The echo app, its relay's component copied to `relay.wasm` in the app (which the test
/// replaces), and a runtime folder of its own for the control socket.
struct EchoApp {
    dir: tempfile::TempDir,
    runtime_dir: tempfile::TempDir,
    relay: PathBuf,
}

impl EchoApp {
    fn new() -> EchoApp {
        let artifacts = common::guest_artifacts();
        let dir = common::echo_app(|registry| {
            let clients = CLIENTS.replace("{artifacts}", &artifacts.display().to_string());
            registry + &clients
        });
        let relay = dir.path().join("relay.wasm");
        std::fs::copy(artifacts.join("echo_relay.wasm"), &relay).expect("copying the relay");
        let registry = dir.path().join("src/_index.yaml");
        let text = std::fs::read_to_string(&registry).expect("the registry");
        let built = format!("file://{}/echo_relay.wasm", artifacts.display());
        assert!(text.contains(&built), "the relay's source in {text}");
        let text = text.replace(&built, &format!("file://{}", relay.display()));
        std::fs::write(&registry, text).expect("writing the registry");
        EchoApp {
            dir,
            runtime_dir: tempfile::tempdir().expect("a runtime folder"),
            relay,
        }
    }

    fn wasmhost(&self) -> Command {
        let mut command = common::wasmhost();
        command
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .arg("--app")
            .arg(self.dir.path());
        command
    }

    /// `wasmhost run ARGS…`, its log as JSON lines on a channel.
    fn run(&self, args: &[&str]) -> (Child, Receiver<Value>) {
        let mut node = self
            .wasmhost()
            .args(["--log-format", "json", "run"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasmhost run");
        let stderr = node.stderr.take().expect("its stderr");
        let (tx, log) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (node, log)
    }

    fn ps(&self) -> Value {
        let out = self.wasmhost().args(["ps", "--json"]).output().expect("ps");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// Waits (at most `PATIENCE`) until `ps` shows what `ready` looks for, and returns it.
    fn ps_until<T>(&self, what: &str, ready: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let snapshot = self.ps_or_null();
            if let Some(found) = ready(&snapshot) {
                return found;
            }
            assert!(Instant::now() < deadline, "{what}: {snapshot}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `ps`, or `null` while no node answers yet.
    fn ps_or_null(&self) -> Value {
        let out = self.wasmhost().args(["ps", "--json"]).output().expect("ps");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn upgrade(&self) -> std::process::Output {
        self.wasmhost()
            .args(["upgrade", "app:relay"])
            .output()
            .expect("wasmhost upgrade")
    }
}

/// The relay service's pid, once it runs.
fn relay_pid(snapshot: &Value) -> Option<String> {
    let unit = snapshot["tree"]
        .as_array()?
        .iter()
        .find(|u| u["id"] == "app:relay-service")?;
    (unit["state"] == "running").then(|| unit["pid"].as_str().map(String::from))?
}

/// `bytes` (a component) with a custom section added: another component, which does the same.
fn another_build_of(bytes: &[u8]) -> Vec<u8> {
    let name = b"wasmhost-test";
    let body: Vec<u8> = [&[name.len() as u8][..], name, b"another build"].concat();
    assert!(body.len() < 128, "one LEB128 byte");
    [bytes, &[0, body.len() as u8], &body].concat()
}

/// The first log line with `message`, within `PATIENCE`; the lines before it are dropped.
fn logged(log: &Receiver<Value>, message: &str) -> Value {
    first_line(log, &format!("`{message}` in the log"), |line| {
        line["message"] == message
    })
}

/// The stdout of `out`, after checking it succeeded.
fn succeeded(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The stderr of `out`, after checking it failed (exit 1).
fn failed(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

fn wait_for_exit(mut node: Child, within: Duration) -> std::process::ExitStatus {
    let (tx, done) = channel();
    std::thread::spawn(move || {
        let _ = tx.send(node.wait().expect("waiting for wasmhost"));
    });
    done.recv_timeout(within)
        .expect("wasmhost run ended in time")
}

#[test]
fn the_echo_relay_upgraded_while_eight_clients_send_keeps_its_pid_its_counters_and_every_line() {
    let app = EchoApp::new();
    // 8 clients, each sending lines until 5 after it has seen the relay upgraded.
    let (clients, log) = app.run(&["app:clients", "--", "echo-clients", "\"app:clients 8 5\""]);
    let relay = app.ps_until("8 clients and the relay", |snapshot| {
        let clients = snapshot["processes"]
            .as_array()?
            .iter()
            .filter(|p| p["entry"] == "app:clients")
            .count();
        (clients == 9).then_some(())?;
        relay_pid(snapshot)
    });
    let old = std::fs::read(&app.relay).expect("the relay");
    std::fs::write(&app.relay, another_build_of(&old)).expect("the new relay");

    let out = app.upgrade();
    let stdout = succeeded(&out);
    assert!(
        stdout.contains(&format!("{relay}  handed over; its new instance runs")),
        "{stdout}"
    );
    assert!(
        stdout.contains("upgraded: 1 process of app:relay"),
        "{stdout}"
    );
    let upgraded = logged(&log, "relay upgraded");
    assert_eq!(upgraded["pid"], relay.as_str(), "{upgraded}");

    let done = logged(&log, "clients done");
    let fields = &done["fields"];
    assert_eq!(fields["relay"], relay.as_str(), "{done}");
    assert_eq!(fields["hand_overs"], 1, "{done}");
    let lines = fields["lines"].as_u64().expect("lines");
    assert!(lines >= 8 * 5, "{done}");
    // Every line the clients sent reached the relay and was counted, before the upgrade and
    // after it: the counters went over with the hand-over.
    assert_eq!(fields["messages"].as_u64(), Some(lines), "{done}");
    let status = wait_for_exit(clients, PATIENCE);
    assert!(status.success(), "{status}");
}

#[test]
fn a_new_relay_that_fails_before_it_receives_is_rolled_back_and_the_relay_runs_on() {
    common::build_guests();
    let app = EchoApp::new();
    let (mut node, log) = app.run(&[]);
    let relay = app.ps_until("the relay", relay_pid);
    let good = std::fs::read(&app.relay).expect("the relay");

    // Another entry's component: called with the relay's arguments, it fails at once.
    std::fs::copy(
        common::guest_artifacts().join("test_child.wasm"),
        &app.relay,
    )
    .expect("the failing relay");
    let out = app.upgrade();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "rolled back: the new component failed in {relay} before it received (error: "
        )),
        "{stdout}"
    );
    let went_back = logged(
        &log,
        "the upgraded instance failed before it received; back to the old component",
    );
    assert_eq!(went_back["pid"], relay.as_str(), "{went_back}");
    let snapshot = app.ps();
    assert_eq!(relay_pid(&snapshot).as_deref(), Some(relay.as_str()));

    // The relay runs its old component, and receives: it hands over to a good new one.
    std::fs::write(&app.relay, another_build_of(&good)).expect("the new relay");
    let stdout = succeeded(&app.upgrade());
    assert!(
        stdout.contains(&format!("{relay}  handed over; its new instance runs")),
        "{stdout}"
    );
    let upgraded = logged(&log, "relay upgraded");
    assert_eq!(upgraded["pid"], relay.as_str(), "{upgraded}");
    node.kill().expect("stopping the node");
    let _ = wait_for_exit(node, PATIENCE);
}

/// A refusal names the problem and changes nothing: an entry that is not there, and a
/// component that does not match its pinned hash.
#[test]
fn an_upgrade_the_registry_does_not_allow_is_refused_with_why() {
    common::build_guests();
    let app = EchoApp::new();
    let (mut node, _log) = app.run(&[]);
    let relay = app.ps_until("the relay", relay_pid);

    let stderr = failed(
        &app.wasmhost()
            .args(["upgrade", "app:rleay"])
            .output()
            .expect("upgrade"),
    );
    assert!(stderr.contains("app:relay"), "the nearest name: {stderr}");

    let registry = app.dir.path().join("src/_index.yaml");
    let text = std::fs::read_to_string(&registry).expect("the registry");
    let pinned = text.replace(
        "    source: file://",
        "    hash: sha256:0000000000000000000000000000000000000000000000000000000000000000\n    source: file://",
    );
    std::fs::write(&registry, pinned).expect("pinning");
    let stderr = failed(&app.upgrade());
    assert!(stderr.contains("does not match its hash"), "{stderr}");
    assert_eq!(relay_pid(&app.ps()).as_deref(), Some(relay.as_str()));
    node.kill().expect("stopping the node");
    let _ = wait_for_exit(node, PATIENCE);
}

/// The first log line (JSON, or text as a string) for which `found` is true, within
/// `PATIENCE`; the lines before it are dropped.
fn first_line(log: &Receiver<Value>, what: &str, found: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) if found(&line) => return line,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {PATIENCE:?}"),
        }
    }
}

/// `wasmhost run --watch`: a change of the sources builds the app, and the entry whose
/// component the build changed is upgraded in place. The "build" here copies a file.
#[test]
fn run_watch_builds_a_changed_source_and_upgrades_the_entry_in_place() {
    let app = EchoApp::new();
    let next = app.dir.path().join("next.component");
    std::fs::copy(&app.relay, &next).expect("the relay's next build");
    std::fs::write(
        app.dir.path().join("wasmhost.toml"),
        "[app]\nregistry = \"src\"\n\n[build]\ncommand = \"cp next.component relay.wasm\"\n",
    )
    .expect("writing wasmhost.toml");
    let (mut node, log) = app.run(&["--watch"]);
    let text = |wanted: &'static str| {
        move |line: &Value| line.as_str().is_some_and(|l| l.contains(wanted))
    };
    first_line(&log, "`watching`", text("for changes"));
    let relay = app.ps_until("the relay", relay_pid);

    let old = std::fs::read(&app.relay).expect("the relay");
    std::fs::write(&next, another_build_of(&old)).expect("a new source");
    let handed_over = format!("{relay}  handed over; its new instance runs");
    first_line(&log, "the relay handed over", |line| {
        line.as_str().is_some_and(|l| l.contains(&handed_over))
    });
    assert_eq!(
        std::fs::read(&app.relay).expect("the relay"),
        another_build_of(&old),
        "built"
    );
    assert_eq!(relay_pid(&app.ps()).as_deref(), Some(relay.as_str()));
    node.kill().expect("stopping the node");
    let _ = wait_for_exit(node, PATIENCE);
}

/// `--watch` needs something to build.
#[test]
fn run_watch_without_a_build_is_refused_with_a_hint() {
    let app = EchoApp::new();
    std::fs::write(
        app.dir.path().join("wasmhost.toml"),
        "[app]\nregistry = \"src\"\n",
    )
    .expect("writing wasmhost.toml");
    let stderr = failed(
        &app.wasmhost()
            .args(["run", "--watch"])
            .output()
            .expect("wasmhost run --watch"),
    );
    assert!(stderr.contains("says nothing to build"), "{stderr}");
    assert!(stderr.contains("hint: add a [[build.guest]]"), "{stderr}");
}
