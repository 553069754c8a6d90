//! Hostile guests, run beside the echo service: for each attack, the `wasmhost` binary runs
//! the echo app whose worker is `guests/testing/hostile` — the relay spawns it with the
//! client's pid and the typed line, as it spawns the real worker — and the line names the
//! attack. Each test checks three things: the attack is refused or contained with the exact
//! error or exit reason; typed lines still come back upper-cased; the host's memory stays
//! bounded (its peak RSS, read from /proc).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The echo registry with the hostile worker in the worker's place.
const REGISTRY: &str = r#"
version: "1.0"
namespace: app

entries:
  - name: terminal
    kind: terminal.host

  - name: processes
    kind: process.host

  - name: cli
    kind: process.wasm
    source: "{artifacts}/echo_cli.wasm"
    modules: [io, process, time, channel]

  - name: relay
    kind: process.wasm
    source: "{artifacts}/echo_relay.wasm"
    modules: [process, logger, channel, time]
    names: [relay]

  - name: relay-service
    kind: process.service
    process: app:relay
    host: app:processes
    lifecycle:
      auto_start: true

  - name: worker
    kind: process.wasm
    source: "{artifacts}/test_hostile.wasm"
    modules: [process, time, logger]
    limits:
      memory: 32MiB
      cpu: 1s
"#;

/// What the host may grow to while an attack runs (peak RSS). The echo service takes about
/// 47 MiB and the worst attack here (8 MiB messages) about 100 MiB; unbounded, the floods
/// reached gigabytes within seconds.
const RSS_BOUND_KIB: u64 = 256 << 10;

/// How long one line may take to come back (the client itself times out after 2 s).
const LINE: Duration = Duration::from_secs(20);

/// `wasmhost run app:cli` on the hostile echo app, driven line by line.
struct Session {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    /// The host's log lines as they come, and all of them so far.
    log_lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    _app: tempfile::TempDir,
}

impl Session {
    fn start(flags: &[&str]) -> Session {
        let app = common::app_with(REGISTRY);
        let mut child = common::wasmhost()
            .args(flags)
            .args(["run", "app:cli"])
            .current_dir(app.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasmhost");
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        // Replies are the client's indented lines, without "from worker:".
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim_start_matches("> ");
                if let Some(reply) = line.strip_prefix("  ")
                    && !reply.starts_with("from worker: ")
                    && tx.send(reply.to_string()).is_err()
                {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let (tx, log_lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                {
                    let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Session {
            child,
            stdin,
            replies,
            log_lines,
            stderr: log,
            _app: app,
        }
    }

    /// Types `line` and returns what the client printed for it.
    fn say(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("typing a line");
        self.replies
            .recv_timeout(LINE)
            .unwrap_or_else(|_| panic!("no reply to {line:?}; stderr:\n{}", self.stderr()))
    }

    /// Echoes still work: a typed line comes back upper-cased.
    fn assert_echoes(&mut self) {
        assert_eq!(
            self.say("still here"),
            "STILL HERE",
            "stderr:\n{}",
            self.stderr()
        );
    }

    /// The host's peak resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the host's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc status")
    }

    fn assert_memory_bounded(&self) {
        let peak = self.peak_rss_kib();
        assert!(
            peak < RSS_BOUND_KIB,
            "the host peaked at {} MiB",
            peak >> 10
        );
    }

    /// The host's open file descriptors.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the host's fd folder")
            .count()
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a line of the host's log that contains `text`, and returns it.
    fn wait_for_log(&self, text: &str) -> String {
        loop {
            match self.log_lines.recv_timeout(LINE) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the log never said {text:?}:\n{}", self.stderr()),
            }
        }
    }

    /// Ends the session (an empty line) and checks the client said goodbye.
    fn finish(mut self) -> String {
        writeln!(self.stdin,).expect("typing the empty line");
        let status = self.child.wait().expect("waiting for wasmhost");
        assert_eq!(status.code(), Some(0), "stderr:\n{}", self.stderr());
        self.stderr()
    }
}

/// The three checks around one attack whose outcome comes back to the client.
fn refused(attack: &str, expected: &str) {
    let mut session = Session::start(&[]);
    session.assert_echoes();
    let outcome = session.say(attack);
    assert!(
        outcome.starts_with(expected),
        "{attack}: {outcome}\nexpected: {expected}"
    );
    session.assert_echoes();
    session.assert_memory_bounded();
    session.finish();
}

/// An attack that ends the attacker: the client times out on it, the relay logs why.
fn ends_attacker(attack: &str, reason: &str) {
    let mut session = Session::start(&[]);
    session.assert_echoes();
    assert_eq!(session.say(attack), "timeout");
    let line = session.wait_for_log(reason);
    assert!(line.contains("app:relay: worker exited from="), "{line}");
    session.assert_echoes();
    session.assert_memory_bounded();
    session.finish();
}

/// What a worker is told when it acts on a process it did not spawn (with pids elided).
const NOT_A_DESCENDANT: &str = "denied: PID is not a descendant of PID: app:worker may act only on itself and the processes it spawned (the registry can allow more with `authority.signal`)";

/// `text` with every pid written `PID`.
fn without_pids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        match rest[start..].find('}') {
            Some(end) if rest[start..start + end].contains("|0x") => {
                out.push_str(&rest[..start]);
                out.push_str("PID");
                rest = &rest[start + end + 1..];
            }
            _ => {
                out.push_str(&rest[..=start]);
                rest = &rest[start + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_worker_cannot_cancel_terminate_or_link_to_the_relay() {
    let mut session = Session::start(&[]);
    for attack in ["cancel-relay", "terminate-relay", "link-relay"] {
        assert_eq!(
            without_pids(&session.say(attack)),
            NOT_A_DESCENDANT,
            "{attack}"
        );
    }
    session.assert_echoes();
    session.finish();
}

#[test]
fn a_worker_cannot_terminate_cancel_or_link_the_client() {
    let mut session = Session::start(&[]);
    for attack in ["terminate-client", "cancel-client", "link-client"] {
        let outcome = session.say(attack);
        assert!(outcome.starts_with("denied: {app:terminal|0x"), "{outcome}");
        assert_eq!(without_pids(&outcome), NOT_A_DESCENDANT, "{attack}");
    }
    session.assert_echoes();
    session.finish();
}

#[test]
fn a_worker_cannot_squat_the_relays_name() {
    refused("squat-relay", "the name is reserved for app:relay");
}

#[test]
fn a_worker_cannot_spawn_onto_the_terminal_or_spawn_a_more_privileged_entry() {
    let mut session = Session::start(&[]);
    assert_eq!(
        session.say("spawn-on-terminal"),
        "denied: app:terminal is a terminal host: only `wasmhost run` binds a process to the terminal"
    );
    assert_eq!(
        session.say("spawn-more-privileged"),
        "denied: app:worker may not spawn app:cli: it is granted the module `channel`, which app:worker is not (the registry can allow it with `authority.spawn`)"
    );
    session.assert_echoes();
    session.finish();
}

#[test]
fn a_cancel_flood_keeps_one_cancel_pending() {
    refused("cancel-flood", "100000 cancels; the child saw 1");
}

#[test]
fn a_monitor_flood_ends_the_flooder_at_its_events_limit() {
    ends_attacker(
        "monitor-flood",
        r#"result={limit: "events: 10000 events are waiting, its limit"}"#,
    );
}

#[test]
fn a_name_flood_stops_at_the_names_limit() {
    refused(
        "name-flood",
        "16 names, then: limit: names: {app:processes|0x",
    );
}

#[test]
fn a_log_flood_is_held_to_the_log_rate() {
    let mut session = Session::start(&[]);
    assert_eq!(session.say("log-flood"), "logged 100000 lines");
    session.assert_echoes();
    session.assert_memory_bounded();
    let log = session.finish();
    let flood_lines = log
        .lines()
        .filter(|l| l.contains("app:worker: flood"))
        .count();
    assert!(
        (1..=2_000).contains(&flood_lines),
        "{flood_lines} flood lines of 100 000 reached the log"
    );
}

#[test]
fn a_flood_of_8_mib_messages_does_not_lock_the_client_out_of_the_relay() {
    let mut session = Session::start(&[]);
    // The relay reads as fast as it can, so how many are refused varies; what holds is that
    // its mailbox stays within its bytes and the client's lines still get through.
    let outcome = session.say("mailbox-flood");
    assert!(outcome.starts_with("sent "), "{outcome}");
    session.assert_echoes();
    session.assert_memory_bounded();
    session.finish();
}

#[test]
fn a_spinning_worker_is_stopped_by_its_cpu_limit_and_echoes_keep_coming_back() {
    ends_attacker(
        "spin",
        r#"result={limit: "cpu: ran for more than 1000 ms"}"#,
    );
}

/// Four spinning processes per core: typed lines still come back within the client's 2 s.
#[test]
fn echoes_come_back_while_eight_processes_spin() {
    let mut session = Session::start(&[]);
    assert_eq!(session.say("spin-children"), "8 spinning");
    session.assert_echoes();
    session.assert_echoes();
    session.finish();
}

#[test]
fn a_memory_bomb_is_stopped_by_its_memory_limit() {
    ends_attacker("memory-bomb", r#"exceeds the limit of 33554432 bytes"}"#);
}

#[test]
fn a_deeply_nested_log_field_after_deep_recursion_is_rendered_without_recursion() {
    let mut session = Session::start(&[]);
    assert_eq!(session.say("deep-log"), "logged a field nested 100000 deep");
    let line = session.wait_for_log("app:worker: deep nested=[[[[");
    assert!(line.ends_with('…') && line.len() < 2048, "{line}");
    session.assert_echoes();
    session.finish();
}

#[test]
fn a_spawn_bomb_fills_only_the_pool_the_app_may_use() {
    // A small pool: 200 processes, of which 2 are kept for the node's own spawns.
    let mut session = Session::start(&["--max-processes", "200"]);
    let outcome = session.say("spawn-bomb");
    assert!(
        outcome.ends_with(
            "then: limit: processes: the node's pool of 200 processes is full (2 are kept for services)"
        ),
        "{outcome}"
    );
    session.assert_memory_bounded();
    session.finish();
}

#[test]
fn invalid_pids_are_refused_or_ignored() {
    refused(
        "invalid-pids",
        "send allowed: true terminate allowed: false cancel allowed: false; send allowed: true terminate allowed: false cancel allowed: false; send allowed: true terminate allowed: false cancel allowed: false",
    );
}

#[test]
fn a_handle_used_after_it_was_dropped_traps_the_guest() {
    ends_attacker("use-after-drop", r#"result={trap: "#);
}

#[test]
fn wasi_gives_no_network_no_files_no_environment_and_opens_nothing() {
    let mut session = Session::start(&[]);
    session.assert_echoes();
    let before = session.open_fds();
    let outcome = session.say("wasi");
    assert!(
        outcome.starts_with("tcp: ")
            && !outcome.contains("allowed")
            && outcome.ends_with("env: 0 variables"),
        "{outcome}"
    );
    assert_eq!(session.open_fds(), before, "the host opened no descriptor");
    session.finish();
}

#[test]
fn exiting_through_wasi_with_success_is_a_normal_exit() {
    let mut session = Session::start(&[]);
    assert_eq!(session.say("exit-0"), "timeout");
    let line = session.wait_for_log("app:relay: worker exited from=");
    assert!(line.ends_with("result=0"), "{line}");
    session.finish();
}
