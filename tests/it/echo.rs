//! The echo service end to end, driven as a user drives it: through the `wasmhost` binary,
//! in a pseudo-terminal and with piped stdin.

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{echo_app, wasmhost};
use rexpect::session::PtySession;

/// Starts `wasmhost run app:cli` in `app` with stdin, stdout and stderr piped.
fn spawn_piped(app: &std::path::Path) -> std::process::Child {
    spawn_piped_entry(app, "app:cli")
}

/// Starts `wasmhost run ENTRY` in `app` with stdin, stdout and stderr piped.
fn spawn_piped_entry(app: &std::path::Path, entry: &str) -> std::process::Child {
    wasmhost()
        .args(["run", entry])
        .current_dir(app)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasmhost")
}

/// Runs `wasmhost run app:cli` in `app` with `input` on stdin.
fn run_piped(app: &std::path::Path, input: &str) -> Output {
    let mut child = spawn_piped(app);
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    child.wait_with_output().expect("waiting for wasmhost")
}

/// Runs `wasmhost run app:cli` in `app` with `lines` on stdin and ends the input only once
/// `enough` says the log read so far shows what the test waits for (a minute of silence, or
/// the end of the log, ends the wait too: the caller's assertions say what is missing). The
/// output's stderr is the whole log as read.
fn run_piped_until(
    app: &std::path::Path,
    lines: &str,
    enough: impl Fn(&[String]) -> bool,
) -> Output {
    let mut child = spawn_piped(app);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(lines.as_bytes()).expect("writing stdin");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (line_tx, log_lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    while !enough(&seen) {
        match log_lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    drop(stdin);
    let mut out = child.wait_with_output().expect("waiting for wasmhost");
    let _ = reader.join();
    seen.extend(log_lines.try_iter());
    out.stderr = seen.join("\n").into_bytes();
    out
}

/// `run_piped_until` the log has shown `times` worker exits (ending the input at once would
/// race the log of the last one with the shutdown).
fn run_piped_until_exits_logged(app: &std::path::Path, lines: &str, times: usize) -> Output {
    run_piped_until(app, lines, |log| {
        log.iter().filter(|l| l.contains("worker exited")).count() >= times
    })
}

fn worker_pids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("from worker: "))
        .map(str::to_string)
        .collect()
}

fn is_worker_pid(pid: &str) -> bool {
    pid.starts_with("{app:processes|0x") && pid.ends_with('}')
}

#[test]
fn piped_lines_come_back_upper_cased_from_distinct_workers() {
    let app = echo_app(|r| r);
    let out = run_piped(app.path(), "hello world\nsecond line\n\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("Echo Client\nType messages to echo. Ctrl+C to exit.\n"),
        "{stdout}"
    );
    assert!(stdout.contains("  HELLO WORLD\n"), "{stdout}");
    assert!(stdout.contains("  SECOND LINE\n"), "{stdout}");
    let pids = worker_pids(&stdout);
    assert_eq!(pids.len(), 2, "{stdout}");
    assert!(pids.iter().all(|p| is_worker_pid(p)), "{pids:?}");
    assert_ne!(pids[0], pids[1], "each line gets its own worker");
    assert!(stdout.ends_with("\nGoodbye!\n"), "{stdout}");
}

#[test]
fn an_entry_is_found_without_its_namespace() {
    let app = echo_app(|r| r);
    let mut child = spawn_piped_entry(app.path(), "cli");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"bare name\n\n")
        .expect("writing stdin");
    let out = child.wait_with_output().expect("waiting for wasmhost");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("  BARE NAME\n"), "{stdout}");
    assert!(
        worker_pids(&stdout).iter().all(|p| is_worker_pid(p)),
        "{stdout}"
    );
}

#[test]
fn a_mistyped_entry_is_reported_with_the_nearest_before_anything_boots() {
    let app = echo_app(|r| r);
    let out = wasmhost()
        .args(["-v", "run", "clii"])
        .current_dir(app.path())
        .stdin(Stdio::null())
        .output()
        .expect("running wasmhost");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: no process entry `clii`\n  hint: did you mean `app:cli`? (process entries: app:cli, app:relay,"
        ),
        "{stderr}"
    );
    // Nothing was compiled or started: the debug log is silent.
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
}

#[test]
fn end_of_input_says_goodbye() {
    let app = echo_app(|r| r);
    let out = run_piped(app.path(), "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.ends_with("> \nGoodbye!\n"), "{stdout}");
}

#[test]
fn the_relay_logs_each_worker_exit_and_its_stats() {
    let app = echo_app(|r| r);
    // Keep the client at its prompt until the relay's 5 s stats report has been logged.
    let out = run_piped_until(app.path(), "one\ntwo\nthree\n", |log| {
        log.last().is_some_and(|l| l.contains(" stats "))
    });
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("relay started pid={app:processes|0x"), "{log}");
    let exits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("worker exited"))
        .collect();
    assert_eq!(exits.len(), 3, "{log}");
    assert!(
        exits
            .iter()
            .all(|l| l.contains("from={app:processes|0x") && l.ends_with("result=0")),
        "{log}"
    );
    assert!(log.contains("stats messages=3 workers_spawned=3"), "{log}");
}

#[test]
fn without_the_relay_service_the_relay_is_not_available() {
    let app = echo_app(|r| {
        let cut = r
            .find("  - name: relay-service")
            .expect("the registry has relay-service");
        let rest = &r[cut..];
        let end = rest.find("\n\n").map(|i| cut + i + 2).unwrap_or(r.len());
        format!("{}{}", &r[..cut], &r[end..])
    });
    let out = run_piped(app.path(), "hello\n\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains(">   error: relay not available\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("\nGoodbye!\n"), "{stdout}");
}

#[test]
fn a_worker_slower_than_two_seconds_times_out() {
    let app = echo_app(|r| r.replace("release/echo_worker.wasm", "release/test_slow_worker.wasm"));
    let out = run_piped(app.path(), "hello\n\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains(">   timeout\n"), "{stdout}");
    assert!(!stdout.contains("HELLO"), "{stdout}");
}

/// `wasmhost ARGS` in `app`, in a pseudo-terminal.
fn pty_session(app: &std::path::Path, args: &[&str]) -> PtySession {
    let mut command = wasmhost();
    command.args(args).current_dir(app).env_remove("NO_COLOR");
    rexpect::session::spawn_with_options(
        command,
        rexpect::reader::Options::new()
            .timeout_ms(Some(20_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("starting wasmhost in a pseudo-terminal")
}

#[test]
fn in_a_terminal_each_line_is_answered_by_a_new_worker() {
    let app = echo_app(|r| r);
    let mut session = pty_session(app.path(), &["run", "app:cli"]);
    session.exp_string("Echo Client").expect("the banner");
    session.exp_string("> ").expect("the first prompt");
    session.send_line("hello world").expect("typing");
    session
        .exp_string("HELLO WORLD")
        .expect("the upper-cased answer");
    let (_, first) = session
        .exp_regex(r"from worker: \{app:processes\|0x[0-9a-f]+\}")
        .expect("the first worker's pid");
    session.send_line("again").expect("typing");
    session.exp_string("AGAIN").expect("the second answer");
    let (_, second) = session
        .exp_regex(r"from worker: \{app:processes\|0x[0-9a-f]+\}")
        .expect("the second worker's pid");
    assert_ne!(first, second, "each line gets its own worker");
    session.send_line("").expect("an empty line");
    session.exp_string("Goodbye!").expect("the farewell");
    session.exp_eof().expect("wasmhost exits");
    let status = session.process().wait().expect("exit status");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}

#[test]
fn in_a_terminal_ctrl_c_stops_the_app_cleanly() {
    let app = echo_app(|r| r);
    let mut session = pty_session(app.path(), &["run", "app:cli"]);
    session.exp_string("> ").expect("the first prompt");
    session.send_control('c').expect("pressing Ctrl+C");
    session.exp_eof().expect("wasmhost exits");
    let status = session.process().wait().expect("exit status");
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 130)),
        "{status:?}"
    );
}

/// `wasmhost run` without an entry, in a pseudo-terminal, stopped by `stop` once the relay
/// runs: it stops the relay, then exits with the status returned.
fn serve_then_stop(stop: impl FnOnce(&mut PtySession)) -> rexpect::process::WaitStatus {
    let app = echo_app(|r| r);
    let mut session = pty_session(app.path(), &["run"]);
    session
        .exp_string("relay started")
        .expect("the relay starts");
    stop(&mut session);
    session
        .exp_string("service stopped")
        .expect("the relay is stopped");
    session.exp_eof().expect("wasmhost exits");
    session.process().wait().expect("exit status")
}

#[test]
fn run_without_an_entry_serves_until_ctrl_c_then_stops_the_services() {
    let status = serve_then_stop(|session| session.send_control('c').expect("pressing Ctrl+C"));
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 130)),
        "{status:?}"
    );
}

#[test]
fn run_without_an_entry_stopped_by_sigterm_exits_cleanly() {
    let status = serve_then_stop(|session| {
        session
            .process_mut()
            .signal(rexpect::process::Signal::SIGTERM)
            .expect("sending SIGTERM")
    });
    assert!(
        matches!(status, rexpect::process::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
}

/// The next line from `lines` that contains one of `wanted`, or a panic after 30 s of silence.
fn next_with(
    lines: &std::sync::mpsc::Receiver<String>,
    wanted: &[&str],
    seen: &mut String,
) -> String {
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("none of {wanted:?} in:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if wanted.iter().any(|w| line.contains(w)) {
            return line;
        }
    }
}

/// Each line `reader` gives, on a channel.
fn lines_of(reader: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn typing_crash_makes_the_relay_fail_and_its_supervisor_restart_it() {
    let app = echo_app(|r| r);
    let mut child = spawn_piped(app.path());
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = lines_of(child.stdout.take().expect("stdout is piped"));
    let log = lines_of(child.stderr.take().expect("stderr is piped"));
    let (mut out, mut err) = (String::new(), String::new());
    let relay_pid = |line: &str| line.rsplit("pid=").next().unwrap_or_default().to_string();

    let first = relay_pid(&next_with(&log, &["relay started"], &mut err));
    stdin.write_all(b"!crash\n").expect("typing");
    // The relay ends without answering: the client says so, and never hangs.
    next_with(&stdout, &["timeout", "relay not available"], &mut out);
    let failed = next_with(&log, &["service failed; restarting"], &mut err);
    assert!(failed.contains("service=app:relay-service"), "{failed}");
    assert!(failed.contains("crashed on purpose (!crash)"), "{failed}");
    // Restarted (after its backoff), it registers `relay` before it logs this.
    let second = relay_pid(&next_with(&log, &["relay started"], &mut err));
    assert_ne!(first, second, "a new relay process");

    stdin.write_all(b"again\n").expect("typing");
    next_with(&stdout, &["AGAIN"], &mut out);
    stdin
        .write_all(b"\n")
        .expect("an empty line ends the client");
    let status = child.wait().expect("wasmhost exits");
    assert_eq!(status.code(), Some(0));
}

/// The first `relay started pid={…}` in `text`.
fn relay_started(text: &str) -> String {
    text.split("relay started pid=")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .map(|pid| format!("relay started pid={pid}}}"))
        .unwrap_or_else(|| panic!("no relay started in {text:?}"))
}

/// The supervision demo as a user sees it: in a terminal, `!crash` fails the relay, the log
/// says it is restarted, and the next line is answered by the new relay's worker.
#[test]
fn in_a_terminal_crash_restarts_the_relay_and_echo_goes_on() {
    let app = echo_app(|r| r);
    let mut session = pty_session(app.path(), &["run", "app:cli"]);
    // The client prompts once the relay holds its name; the relay's log line goes through
    // the log's writer thread, so either may reach the terminal first.
    let (_, start) = session
        .exp_regex(
            r"(?s)relay started pid=\{app:processes\|0x[0-9a-f]+\}.*> |> .*relay started pid=\{app:processes\|0x[0-9a-f]+\}",
        )
        .expect("the relay starts and the client prompts");
    let first = relay_started(&start);
    session.send_line("!crash").expect("typing");
    session
        .exp_string("service failed; restarting")
        .expect("the log says the relay is restarted");
    // The client says the relay did not answer, and a new relay starts: whichever first.
    let (_, both) = session
        .exp_regex(
            r"(?s)(timeout|relay not available).*relay started pid=\{[^}]+\}|relay started pid=\{[^}]+\}.*(timeout|relay not available)",
        )
        .expect("the client's answer and a new relay");
    let second = relay_started(&both);
    assert_ne!(first, second, "a new relay process");
    session.send_line("still here").expect("typing");
    session.exp_string("STILL HERE").expect("the answer");
    session.send_line("").expect("an empty line");
    session.exp_string("Goodbye!").expect("the farewell");
    session.exp_eof().expect("wasmhost exits");
}

/// A worker that fails shows in the relay's `worker exited` log with its error (here a
/// worker that does not understand its arguments), and the client is told `timeout`.
#[test]
fn a_failing_worker_shows_in_the_relays_log_with_its_error() {
    let app = echo_app(|r| r.replace("release/echo_worker.wasm", "release/test_child.wasm"));
    let out = run_piped(app.path(), "hello\n\n");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(">   timeout\n"), "{stdout}");
    let exited = stderr
        .lines()
        .find(|l| l.contains("worker exited"))
        .unwrap_or_else(|| panic!("no `worker exited` in:\n{stderr}"));
    assert!(
        exited.contains(r#"result={error: "unknown mode {app:terminal|0x"#),
        "{exited}"
    );
}

/// The echo registry with the relay service changed by `edit`.
fn echo_app_with_relay_service(from: &str, to: &str) -> tempfile::TempDir {
    echo_app(|r| {
        assert!(r.contains(from), "the echo registry has `{from}`");
        r.replace(from, to)
    })
}

/// The transcript of two lines: each upper-cased, from its own worker.
fn assert_two_echoes(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(">   HELLO\n"), "{stdout}\n{stderr}");
    assert!(stdout.contains(">   WORLD\n"), "{stdout}\n{stderr}");
    let pids = worker_pids(&stdout);
    assert_eq!(pids.len(), 2, "{stdout}");
    assert!(pids.iter().all(|p| is_worker_pid(p)), "{pids:?}");
    assert_ne!(pids[0], pids[1], "each line gets its own worker");
}

/// The echo transcript with the relay told to spawn `worker`.
fn echoes_from(worker: &str) {
    let app = echo_app_with_relay_service(
        "    process: app:relay\n    host: app:processes\n",
        &format!("    process: app:relay\n    host: app:processes\n    args: [{worker}]\n"),
    );
    let out = run_piped_until_exits_logged(app.path(), "hello\nworld\n", 2);
    assert_two_echoes(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("worker exited").count(), 2, "{stderr}");
    assert_eq!(stderr.matches("result=0").count(), 2, "{stderr}");
}

#[test]
fn python_workers_answer_when_the_relay_is_told_to_spawn_them() {
    echoes_from("app:worker-py");
}

#[test]
fn javascript_workers_answer_when_the_relay_is_told_to_spawn_them() {
    echoes_from("app:worker-js");
}

#[test]
fn c_workers_answer_when_the_relay_is_told_to_spawn_them() {
    echoes_from("app:worker-c");
}

#[test]
fn the_python_relay_spawns_the_rust_workers() {
    let app =
        echo_app_with_relay_service("    process: app:relay\n", "    process: app:relay-py\n");
    let out = run_piped_until_exits_logged(app.path(), "hello\nworld\n", 2);
    assert_two_echoes(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("app:relay-py: relay started pid={app:processes|0x"),
        "{stderr}"
    );
    let exits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("worker exited"))
        .collect();
    assert_eq!(exits.len(), 2, "{stderr}");
    assert!(
        exits.iter().all(
            |l| l.contains("app:relay-py: worker exited from={app:processes|0x")
                && l.ends_with("result=0")
        ),
        "{stderr}"
    );
}
