//! The cluster: each node its own `wasmhost run`, joined over a real NATS server (the pinned
//! one `scripts/install-nats.sh` installs) started for each test on a free loopback port with
//! a store of its own. Short heartbeats keep node loss quick; nothing waits on the clock but
//! for lines the nodes print, each within a bound.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::{echo_app, repo, wasmhost};

mod trust;

/// The longest wait for one line.
const LINE: Duration = Duration::from_secs(30);
/// Test settings: a node is down after a second of silence.
const QUICK: [&str; 4] = ["--heartbeat", "200ms", "--down-after", "1s"];

/// The pinned nats-server, installed once per test binary.
fn nats_server() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let output = Command::new(repo().join("scripts/install-nats.sh"))
            .output()
            .expect("running scripts/install-nats.sh");
        assert!(
            output.status.success(),
            "scripts/install-nats.sh failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// A loopback port nothing listens on (the OS's choice, released at once).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").port()
}

/// A NATS server of a test's own, stopped when dropped.
struct Nats {
    child: Child,
    url: String,
    port: u16,
    store: tempfile::TempDir,
    flags: Vec<String>,
}

impl Nats {
    fn start() -> Nats {
        Nats::start_with(&["-js"])
    }

    /// Started with `flags` (`-js` for JetStream) on a port of its own choice, once it says
    /// it is ready.
    fn start_with(flags: &[&str]) -> Nats {
        let store = tempfile::tempdir().expect("a store folder");
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let (child, port) = Nats::run(store.path(), "-1", &flags);
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            port,
            store,
            flags,
        }
    }

    /// A server on `port` (`-1`: its choice) with its store in `store`: it and its port.
    fn run(store: &Path, port: &str, flags: &[String]) -> (Child, u16) {
        let mut child = Command::new(nats_server())
            .args(["-a", "127.0.0.1", "-p", port, "-sd"])
            .arg(store)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nats-server");
        let lines = read_lines(child.stderr.take().expect("stderr is piped"));
        let mut log = Log::new(lines);
        let listening = log.wait_for("Listening for client connections on ");
        let port = listening
            .rsplit(':')
            .next()
            .and_then(|port| port.trim().parse::<u16>().ok())
            .unwrap_or_else(|| panic!("no port in {listening:?}"));
        log.wait_for("Server is ready");
        (child, port)
    }

    /// Stops the server as an operator would (SIGTERM: it shuts down cleanly).
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// Starts the server again, on the same port with the same store.
    fn start_again(&mut self) {
        let (child, _) = Nats::run(self.store.path(), &self.port.to_string(), &self.flags);
        self.child = child;
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines `from` writes, as they come. Read to the end even when nobody listens any more:
/// a closed pipe would kill the writer at its next line (nats-server logs an authorization
/// error long after it said it was ready).
fn read_lines(from: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Lines as they come, each waited for within `LINE`.
struct Log {
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Log {
    fn new(lines: Receiver<String>) -> Log {
        Log {
            lines,
            seen: Vec::new(),
        }
    }

    /// A line that contains `text`: one already read, else the next one.
    fn find(&mut self, text: &str) -> String {
        match self.seen.iter().find(|line| line.contains(text)) {
            Some(line) => line.clone(),
            None => self.wait_for(text),
        }
    }

    /// A line that contains `then` and comes after one that contains `first` (each read
    /// already, or waited for).
    fn find_after(&mut self, first: &str, then: &str) -> String {
        let start = match self.seen.iter().position(|line| line.contains(first)) {
            Some(at) => at,
            None => {
                self.wait_for(first);
                self.seen.len() - 1
            }
        };
        match self.seen[start + 1..]
            .iter()
            .find(|line| line.contains(then))
        {
            Some(line) => line.clone(),
            None => self.wait_for(then),
        }
    }

    /// Every line, once the process that wrote them has ended (within `LINE`), to show.
    fn all(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(LINE) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// The next line that contains one of `texts`.
    fn wait_for_any(&mut self, texts: &[&str]) -> String {
        let deadline = Instant::now() + LINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if texts.iter().any(|text| line.contains(text)) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "never saw any of {texts:?}; so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next line that contains `text`.
    fn wait_for(&mut self, text: &str) -> String {
        let deadline = Instant::now() + LINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("never saw {text:?}; so far:\n{}", self.seen.join("\n")),
            }
        }
    }
}

/// A node: `wasmhost run` with a cluster's flags, its stdout and log read as they come.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Log,
    log: Log,
}

impl Node {
    fn start(app: &Path, nats: &Nats, name: &str, args: &[&str]) -> Node {
        Node::start_timed(app, nats, name, &QUICK, args)
    }

    /// Started with the heartbeat settings `timing` in place of the quick ones.
    fn start_timed(app: &Path, nats: &Nats, name: &str, timing: &[&str], args: &[&str]) -> Node {
        let mut command = wasmhost();
        command
            .current_dir(app)
            .args(["run", "--cluster", &nats.url, "--node", name])
            .args(timing)
            .args(args);
        Node::spawn(command)
    }

    fn spawn(mut command: Command) -> Node {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasmhost");
        Node {
            stdin: child.stdin.take(),
            out: Log::new(read_lines(child.stdout.take().expect("piped"))),
            log: Log::new(read_lines(child.stderr.take().expect("piped"))),
            child,
        }
    }

    /// The echo relay's node: runs only the relay's service, ready once the relay holds its
    /// name.
    fn relay(app: &Path, nats: &Nats, name: &str) -> Node {
        let mut node = Node::start(app, nats, name, &["--services", "relay-service"]);
        node.log.wait_for("service ready service=app:relay-service");
        node
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("typing a line");
    }

    /// Types `line` into the echo client until it is answered (at most five times: while the
    /// nodes join again a message may be lost, which the client shows as `timeout` or
    /// `relay not available`).
    fn echo_until_answered(&mut self, line: &str) {
        for _ in 0..5 {
            self.type_line(line);
            let answer =
                self.out
                    .wait_for_any(&[&line.to_uppercase(), "timeout", "relay not available"]);
            if answer.contains(&line.to_uppercase()) {
                return;
            }
        }
        panic!("{line:?} was never answered:\n{}", self.out.seen.join("\n"));
    }

    /// Waits for the node to exit (within `LINE`): its exit code.
    fn exit_code(&mut self) -> Option<i32> {
        self.exit_code_within(LINE)
    }

    /// Waits for the node to exit (within `bound`): its exit code.
    fn exit_code_within(&mut self, bound: Duration) -> Option<i32> {
        drop(self.stdin.take());
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for wasmhost") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "wasmhost did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends the node's OS process `signal` (`STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        // A failing test shows what each node logged.
        if std::thread::panicking() {
            while let Ok(line) = self.log.lines.try_recv() {
                self.log.seen.push(line);
            }
            eprintln!(
                "--- node {}:\n{}",
                self.child.id(),
                self.log.seen.join("\n")
            );
        }
    }
}

/// `wasmhost run ARGS` in `app` expected to fail at start: its stderr.
fn refused_start(app: &Path, args: &[&str]) -> String {
    let output = wasmhost()
        .current_dir(app)
        .arg("run")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running wasmhost");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{args:?}:\n{stderr}");
    stderr
}

fn worker_pid(line: &str) -> &str {
    line.trim()
        .strip_prefix("from worker: ")
        .unwrap_or_else(|| panic!("not a worker line: {line}"))
}

/// The echo app on three nodes: the client on a, the relay on b, and its workers (`worker`,
/// the component in place of the echo worker) on c, which b knows is up. The app and the
/// nodes c, b, a.
fn echo_on_three_nodes(nats: &Nats, worker: &str) -> (tempfile::TempDir, Node, Node, Node) {
    let app = echo_app(|r| {
        r.replace("release/echo_worker.wasm", worker).replace(
            "    process: app:relay\n    host: app:processes\n",
            "    process: app:relay\n    host: app:processes\n    args: [app:worker, \"c@app:processes\"]\n",
        )
    });
    let mut c = Node::start(app.path(), nats, "c", &["--services", "none"]);
    c.log.wait_for("joined the cluster");
    let mut b = Node::relay(app.path(), nats, "b");
    b.log.find("node up peer=\"c\"");
    let a = Node::start(app.path(), nats, "a", &["--services", "none", "app:cli"]);
    (app, c, b, a)
}

#[test]
fn the_echo_service_answers_across_nodes_client_on_a_relay_on_b_workers_on_c() {
    let nats = Nats::start();
    let (_app, _c, mut b, mut a) = echo_on_three_nodes(&nats, "release/echo_worker.wasm");

    a.out.wait_for("Echo Client");
    a.type_line("hello across nodes");
    a.out.wait_for("HELLO ACROSS NODES");
    let first = a.out.wait_for("from worker: ");
    a.type_line("again");
    a.out.wait_for("AGAIN");
    let second = a.out.wait_for("from worker: ");
    a.type_line("");
    a.out.wait_for("Goodbye!");
    assert_eq!(a.exit_code(), Some(0), "{}", a.log.seen.join("\n"));

    // Each answer came from a worker of node c (its name and incarnation in the pid), and
    // each line had its own; the relay on b monitored each across the nodes.
    for pid in [worker_pid(&first), worker_pid(&second)] {
        assert!(
            pid.starts_with("{c.") && pid.contains("@app:processes|0x"),
            "{pid}"
        );
        b.log.find(&format!("worker exited from={pid}"));
    }
    assert_ne!(first, second);
}

#[test]
fn names_are_cluster_wide_a_reserved_name_is_held_once_and_goes_with_its_node() {
    let nats = Nats::start();
    let app = echo_app(|r| r);
    let mut b = Node::relay(app.path(), &nats, "b");
    let relay = b.log.find("relay started");
    let relay_pid = relay
        .split("pid=")
        .nth(1)
        .expect("the relay's pid")
        .trim()
        .to_string();

    // A second relay, on node a, cannot take the name the one on b holds.
    let mut second = Node::start(app.path(), &nats, "a", &["--services", "none", "app:relay"]);
    assert_eq!(second.exit_code(), Some(1));
    let refusal = second.log.wait_for("failed");
    assert!(
        refusal.contains(&format!("the name is held by {relay_pid}")),
        "{refusal}"
    );
    drop(second);

    // A client on node c finds the relay by name; once b is killed, c takes it for down
    // and the name is gone with it.
    let mut c = Node::start(app.path(), &nats, "c", &["--services", "none", "app:cli"]);
    c.out.wait_for("Echo Client");
    c.type_line("first");
    c.out.wait_for("FIRST");
    b.kill();
    c.log.wait_for("node down: no heartbeat for 1s peer=\"b\"");
    c.type_line("second");
    c.out.wait_for("error: relay not available");

    // b starts again under its name: a new incarnation, and the relay is found again.
    let mut b_again = Node::relay(app.path(), &nats, "b");
    let again = b_again.log.find("relay started");
    assert!(!again.contains(&relay_pid), "{again}");
    // c learns of the name from its watch of the names bucket, a moment after b registered
    // it (nothing on c shows when): until then the client finds no relay, and is asked again.
    let deadline = Instant::now() + LINE;
    loop {
        c.type_line("third");
        let answer = c.out.wait_for_any(&["THIRD", "relay not available"]);
        if answer.contains("THIRD") {
            break;
        }
        assert!(Instant::now() < deadline, "c never found b's new relay");
        std::thread::sleep(Duration::from_millis(50));
    }
    let worker = c.out.wait_for("from worker: ");
    let old_incarnation = &relay_pid[..=relay_pid.find('@').expect("a pid of a node")];
    assert!(!worker.contains(old_incarnation), "{worker} vs {relay_pid}");
}

#[test]
fn every_bad_start_is_refused_with_its_own_message() {
    let nats = Nats::start();
    let app = echo_app(|r| r);
    let dir = app.path();
    let quick = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = QUICK.iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused_start(dir, &args)
    };

    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let stderr = run(quick(&["--cluster", &nowhere, "--node", "a"]));
    assert!(
        stderr.contains(&format!("cannot reach the cluster at {nowhere}")),
        "{stderr}"
    );

    let stderr = run(quick(&["--cluster", &nats.url, "--node", "Node.A"]));
    assert!(stderr.contains("invalid node name \"Node.A\""), "{stderr}");

    let stderr = run(quick(&["--cluster", &nats.url]));
    assert!(
        stderr.contains("a node of a cluster needs a node name"),
        "{stderr}"
    );

    let no_jetstream = Nats::start_with(&[]);
    let stderr = run(quick(&["--cluster", &no_jetstream.url, "--node", "a"]));
    assert!(stderr.contains("has JetStream off"), "{stderr}");

    // A name a live node holds.
    let _b = Node::relay(dir, &nats, "b");
    let stderr = run(quick(&["--cluster", &nats.url, "--node", "b"]));
    assert!(
        stderr.contains("node name b is held by a live node"),
        "{stderr}"
    );

    // Another down_after than the cluster's.
    let stderr = run(vec![
        "--cluster".into(),
        nats.url.clone(),
        "--node".into(),
        "a".into(),
        "--down-after".into(),
        "5s".into(),
    ]);
    assert!(
        stderr.contains("every node of a cluster has the same down_after"),
        "{stderr}"
    );

    // Another registry: the same app but for one comment.
    let other = echo_app(|r| format!("# changed\n{r}"));
    let args = quick(&["--cluster", &nats.url, "--node", "a"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = refused_start(other.path(), &args);
    assert!(stderr.contains("node b runs another registry"), "{stderr}");
}

/// The echo app with `app:watcher`, the test child (its `monitor-name` and `monitor-crash`
/// modes monitor a registered process and fail with what they heard; `count-in`,
/// `count-out` and `count-stall` send and check numbered messages).
fn echo_app_with_watcher() -> tempfile::TempDir {
    let child = crate::common::guest_artifacts().join("test_child.wasm");
    echo_app(|r| {
        format!(
            "{r}\n  - name: watcher\n    kind: process.wasm\n    source: file://{}\n    modules: [process, time, logger]\n    authority:\n      hosts: [app:processes]\n",
            child.display()
        )
    })
}

/// The pid a log line ends with (`… pid={b.1@app:processes|0x00001}`).
fn pid_in(line: &str) -> String {
    let pid = line.rsplit("pid=").next().expect("a pid");
    pid.trim().to_string()
}

#[test]
fn a_monitor_across_nodes_hears_the_exit_and_no_connection_when_the_node_is_lost() {
    let nats = Nats::start();
    let app = echo_app_with_watcher();
    let mut b = Node::relay(app.path(), &nats, "b");
    let relay = pid_in(&b.log.find("service ready"));
    let watch = |mode: &str| {
        let args = watcher_args(mode, "relay");
        Node::start(app.path(), &nats, "a", &args)
    };

    // The relay fails on purpose: the watcher on node a hears its exit, and only its kind
    // (it is not the relay's ancestor).
    let mut a = watch("monitor-crash");
    assert_eq!(a.exit_code(), Some(1));
    let heard = a.log.find("failed");
    assert!(
        heard.contains(&format!("monitored {relay}: error: ")) && !heard.contains("on purpose"),
        "{heard}"
    );

    // Its supervisor starts a new relay; a new watcher monitors it; node b is killed.
    let line = b.log.wait_for("service ready");
    let relay = pid_in(&line);
    let mut a = watch("monitor-name");
    // The watcher's line reached the relay after its monitor did (one sender, one order).
    b.log.wait_for("worker exited");
    b.kill();
    assert_eq!(a.exit_code(), Some(1));
    let heard = a.log.find("failed");
    let node = &relay[1..relay.find('@').expect("a pid of a node")];
    assert!(
        heard.contains(&format!("monitored {relay}: no connection to node {node}")),
        "{heard}"
    );
}

#[test]
fn killing_a_node_gives_each_monitor_of_its_processes_one_no_connection() {
    let nats = Nats::start();
    // The workers answer and stay.
    let (_app, mut c, mut b, mut a) = echo_on_three_nodes(&nats, "release/test_slow_worker.wasm");
    a.out.wait_for("Echo Client");

    let mut workers = std::collections::BTreeSet::new();
    for n in 0..20 {
        a.type_line(&format!("hold {n}"));
        a.out.wait_for(&format!("HOLD {n}"));
        workers.insert(worker_pid(&a.out.wait_for("from worker: ")).to_string());
    }
    assert_eq!(workers.len(), 20);

    c.kill();
    // The relay monitors each worker: each monitor hears of node c's loss, once.
    let mut lost = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let line = b.log.wait_for("worker exited");
        assert!(line.contains("result={no_connection: \"c."), "{line}");
        let from = line
            .split("from=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the worker's pid");
        assert!(lost.insert(from.to_string()), "{from} was reported twice");
    }
    assert_eq!(lost, workers);
}

#[test]
fn links_terminate_and_cancel_reach_across_nodes_within_the_callers_authority() {
    let nats = Nats::start();
    let app = echo_app_with_watcher();
    let mut c = Node::start(app.path(), &nats, "c", &["--services", "none"]);
    c.log.wait_for("joined the cluster");
    let mut b = Node::relay(app.path(), &nats, "b");
    let relay = pid_in(&b.log.find("service ready"));

    let args = watcher_args("remote-family", "c");
    let mut a = Node::start(app.path(), &nats, "a", &args);
    assert_eq!(a.exit_code(), Some(1));
    let heard = a.log.find("failed");
    // Its child on c, linked and terminated: the link broke (trapped, so an event).
    assert!(heard.contains("link-down from {c."), "{heard}");
    assert!(heard.contains(": killed by"), "{heard}");
    // Its monitored child on c, cancelled: it stopped when asked (a normal exit).
    assert!(heard.contains("; exit of {c."), "{heard}");
    // Its child on c spawned linked, which failed: the link broke with the failure's kind.
    let failed = heard
        .split("; spawn-linked, then link-down from ")
        .nth(1)
        .and_then(|rest| rest.split(';').next());
    assert!(
        failed.is_some_and(|f| f.starts_with("{c.") && f.contains("}: error")),
        "{heard}"
    );
    // The relay on b is not its child: refused on a, before anything is sent.
    assert!(
        heard.contains(&format!(
            "terminate {relay}: denied: app:watcher may not signal {relay}: on another node a process reaches only the children it spawned there"
        )),
        "{heard}"
    );
}

#[test]
fn a_link_across_nodes_breaks_with_no_connection_when_the_node_is_lost() {
    let nats = Nats::start();
    let app = echo_app_with_watcher();
    let mut c = Node::start(app.path(), &nats, "c", &["--services", "none"]);
    c.log.wait_for("joined the cluster");
    let mut b = Node::relay(app.path(), &nats, "b");
    let args = watcher_args("link-remote", "c");
    let mut a = Node::start(app.path(), &nats, "a", &args);
    // The watcher's line reached the relay after it had linked its child on c.
    b.log.wait_for("worker exited");
    c.kill();
    assert_eq!(a.exit_code(), Some(1));
    let heard = a.log.find("failed");
    assert!(
        heard.contains("link-down from {c.") && heard.contains("no connection to node c."),
        "{heard}"
    );
}

#[test]
fn a_node_stopped_past_down_after_is_lost_once_on_both_sides_and_joins_again() {
    let nats = Nats::start();
    let app = echo_app(|r| r);
    let mut b = Node::relay(app.path(), &nats, "b");
    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.type_line("before");
    a.out.wait_for("BEFORE");

    b.signal("STOP");
    a.log.wait_for("node down: no heartbeat for 1s peer=\"b\"");
    b.signal("CONT");
    // b saw the loss too, and joined again with a new session; a sees that session up.
    b.log.wait_for("joined the cluster again");
    let lost_on_b = b.log.find("node down");
    assert!(lost_on_b.contains("peer=\"a\""), "{lost_on_b}");
    b.log
        .find_after("joined the cluster again", "node up peer=\"a\"");
    a.log.wait_for("node up peer=\"b\"");

    a.echo_until_answered("after");
    let lost_on_a = a
        .log
        .seen
        .iter()
        .filter(|l| l.contains("node down") && l.contains("peer=\"b\""));
    assert_eq!(lost_on_a.count(), 1, "{}", a.log.seen.join("\n"));
}

#[test]
fn the_nodes_join_again_after_the_nats_server_restarts_and_the_names_hold() {
    let mut nats = Nats::start();
    let app = echo_app(|r| r);
    let mut b = Node::relay(app.path(), &nats, "b");
    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.type_line("before");
    a.out.wait_for("BEFORE");

    nats.stop();
    a.log.wait_for("lost the connection to the cluster");
    b.log.wait_for("lost the connection to the cluster");
    nats.start_again();
    for node in [&mut a, &mut b] {
        node.log.wait_for("connected to the cluster again");
    }
    // Each joined again with a new session, and saw the other's.
    a.log
        .find_after("joined the cluster again", "node up peer=\"b\"");
    b.log
        .find_after("joined the cluster again", "node up peer=\"a\"");
    // The relay's name outlived the server's restart (its bucket is on disk).
    a.echo_until_answered("after");
}

/// A frame as the wire carries it, made by hand (the wire's types are the host's own).
fn frame(node: &str, incarnation: u64, seq: u64, to: &str, from: Option<&str>) -> Vec<u8> {
    use ciborium::Value;
    let text = |s: &str| Value::Text(s.to_string());
    let message = Value::Map(vec![
        (text("to"), text(to)),
        (text("from"), from.map_or(Value::Null, text)),
        (text("topic"), text("echo")),
        (text("payload"), Value::Bytes(vec![0xf6])),
    ]);
    let frame = Value::Map(vec![
        (text("node"), text(node)),
        (text("incarnation"), Value::Integer(incarnation.into())),
        (text("session"), Value::Integer(incarnation.into())),
        (text("seq"), Value::Integer(seq.into())),
        (text("signal"), Value::Map(vec![(text("Message"), message)])),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&frame, &mut bytes).expect("encoding a frame");
    bytes
}

#[test]
fn malformed_misaddressed_and_forged_frames_are_counted_and_dropped() {
    let nats = Nats::start();
    let app = echo_app(|r| r);
    // With debug logs, which say each frame it drops.
    let mut b = Node::start(
        app.path(),
        &nats,
        "b",
        &["--services", "relay-service", "-v"],
    );
    b.log.wait_for("service ready service=app:relay-service");
    let joined = b.log.find("joined the cluster node=b");
    let incarnation = joined
        .split("incarnation=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("b's incarnation");
    let relay = pid_in(&b.log.find("service ready"));

    // What a misbehaving peer (or anyone with access to the server) might publish to b.
    let subject = format!("wasmhost.node.b.{incarnation}");
    let bad = [
        b"\xff\xfe not a frame at all".to_vec(),
        vec![0xa1; 64 << 10],
        // Addressed to a pid of another node.
        frame("x", 1, 0, "{c.1@app:processes|0x00001}", None),
        // Speaking for a process of a node other than its own.
        frame("x", 1, 0, &relay, Some("{y.1@app:processes|0x00001}")),
    ];
    // And a credit that is not one, on b's subject for credits.
    let credits = format!("wasmhost.credit.b.{incarnation}");
    crate::common::runtime().block_on(async {
        let client = async_nats::connect(&nats.url).await.expect("connecting");
        for bytes in bad {
            client
                .publish(subject.clone(), bytes.into())
                .await
                .expect("publishing");
        }
        let not_a_credit = b"\xa1\x64node\x63../".to_vec();
        client
            .publish(credits, not_a_credit.into())
            .await
            .expect("publishing");
        client.flush().await.expect("flushing");
    });

    // b dropped and counted each, and still serves.
    for _ in 0..4 {
        b.log.wait_for("dropped a malformed cluster frame");
    }
    b.log.find("dropped a malformed credit");
    let snapshot = wasmhost()
        .current_dir(app.path())
        .args(["ps", "--json", "--node", "b"])
        .output()
        .expect("running wasmhost ps");
    let json: serde_json::Value =
        serde_json::from_slice(&snapshot.stdout).expect("ps --json prints JSON");
    let malformed = json["cluster"]["malformed"].as_u64();
    assert_eq!(malformed, Some(5), "{json}");
    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.echo_until_answered("still here");
}

/// The app's `relay-service` placed on nodes b and c (`lifecycle.nodes: [b, c]`), with
/// each relay's workers on its own node.
fn echo_placed_on_b_and_c() -> tempfile::TempDir {
    echo_app(|r| {
        r.replace(
            "    host: app:processes\n    lifecycle:\n      auto_start: true\n",
            "    host: app:processes\n    lifecycle:\n      auto_start: true\n      nodes: [b, c]\n",
        )
    })
}

/// The pid of the worker that answered the last line the client echoed.
fn answered_by(a: &mut Node) -> String {
    worker_pid(&a.out.wait_for("from worker: ")).to_string()
}

#[test]
fn a_placed_service_moves_to_the_next_node_when_its_node_is_killed_or_leaves() {
    let nats = Nats::start();
    let app = echo_placed_on_b_and_c();
    let mut b = Node::relay(app.path(), &nats, "b");
    let mut c = Node::start(app.path(), &nats, "c", &["--services", "relay-service"]);
    let standby = c.log.wait_for("standing by");
    assert!(standby.contains("on=b"), "{standby}");
    let ps = wasmhost()
        .current_dir(app.path())
        .args(["ps", "--node", "c"])
        .output()
        .expect("running wasmhost ps");
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("standby") && ps.contains("(runs on b)"), "{ps}");

    let mut a = Node::start(app.path(), &nats, "a", &["--services", "none", "app:cli"]);
    a.out.wait_for("Echo Client");
    a.echo_until_answered("on b");
    let pid = answered_by(&mut a);
    assert!(pid.starts_with("{b."), "{pid}");

    // Killed: c sees b down, takes the relay, and the client's next lines reach it there.
    b.kill();
    let down = c.log.wait_for("node down");
    assert!(down.contains("peer=\"b\""), "{down}");
    c.log.wait_for("placed on this node");
    c.log.wait_for("service ready service=app:relay-service");
    a.echo_until_answered("on c");
    let pid = answered_by(&mut a);
    assert!(pid.starts_with("{c."), "{pid}");

    // b back: c keeps the relay (no takeover by a node that comes back) until it leaves;
    // then b takes it at once, without waiting for c's record to expire.
    let mut b = Node::start(app.path(), &nats, "b", &["--services", "relay-service"]);
    let standby = b.log.wait_for("standing by");
    assert!(standby.contains("on=c"), "{standby}");
    c.signal("TERM");
    assert_eq!(c.exit_code(), Some(0), "{}", c.log.seen.join("\n"));
    b.log.wait_for("placed on this node");
    b.log.wait_for("service ready service=app:relay-service");
    a.echo_until_answered("on b again");
    let pid = answered_by(&mut a);
    assert!(pid.starts_with("{b."), "{pid}");
    a.type_line("");
    a.out.wait_for("Goodbye!");
    assert_eq!(a.exit_code(), Some(0));
}

/// `node` running the test child as `sink`: it takes numbered messages and fails on one out
/// of order.
/// A node's flags to place no services and run the watcher on its terminal in `mode` with
/// `arg`.
fn watcher_args<'a>(mode: &'a str, arg: &'a str) -> [&'a str; 6] {
    ["--services", "none", "app:watcher", "--", mode, arg]
}

fn sink(app: &Path, nats: &Nats, node: &str) -> Node {
    let args = watcher_args("count-in", "sink");
    Node::start(app, nats, node, &args)
}

#[test]
fn numbered_messages_arrive_in_order_and_a_stalled_receiver_loses_them_only_after_no_connection() {
    let nats = Nats::start();
    let app = echo_app_with_watcher();

    // 100 000 from a to b: each arrives, once, in order (the sink fails at the first that is
    // not the one due, and at the end if the count differs).
    let mut b = sink(app.path(), &nats, "b");
    let args = watcher_args("count-out", "\"100000\"");
    let mut a = Node::start(app.path(), &nats, "a", &args);
    // A few seconds alone; the bound is for a machine busy with the other tests.
    let within = Duration::from_secs(180);
    let code = b.exit_code_within(within);
    assert_eq!(code, Some(0), "{}", b.log.all());
    assert_eq!(a.exit_code(), Some(0), "{}", a.log.all());
    a.log.find("numbers sent count=100000");

    // The sink's node stopped once it has 20 000: the sender hears `no-connection`; what it
    // sends next (the next epoch) is dropped while the node is down and delivered once it is
    // back. The sink has the 20 000 whole and in order, and no gap but where the epoch moved.
    let mut d = sink(app.path(), &nats, "d");
    let args = watcher_args("count-stall", "\"20000\"");
    let mut e = Node::start(app.path(), &nats, "e", &args);
    e.log.wait_for("numbers sent count=20000");
    d.signal("STOP");
    let lost = e.log.wait_for("sink lost");
    assert!(lost.contains("no connection to node d."), "{lost}");
    d.signal("CONT");
    assert_eq!(d.exit_code(), Some(0), "{}", d.log.all());
    assert_eq!(e.exit_code(), Some(0), "{}", e.log.all());
}

#[test]
fn a_receiver_stalled_for_less_than_down_after_loses_nothing_and_its_sender_sees_refusals() {
    // Node loss out of the way: a minute of silence before a node is down.
    let timing = ["--heartbeat", "200ms", "--down-after", "60s"];
    let nats = Nats::start();
    let app = echo_app_with_watcher();
    let sink = watcher_args("count-in", "sink");
    let mut d = Node::start_timed(app.path(), &nats, "d", &timing, &sink);
    d.log.wait_for("sink registered");
    d.signal("STOP");

    // 20 000 numbers are more than the sink's node lets the sender have in flight and its
    // outbox holds together: sends are refused, the sender tries each again, and once the
    // node goes on every number arrives, once, in order.
    let count = watcher_args("count-out", "\"20000\"");
    let mut e = Node::start_timed(app.path(), &nats, "e", &timing, &count);
    let refused = e.log.wait_for("a send refused");
    d.signal("CONT");
    assert_eq!(d.exit_code(), Some(0), "{}", d.log.all());
    assert_eq!(e.exit_code(), Some(0), "{}", e.log.all());
    let sent = e.log.find("numbers sent count=20000");
    assert!(!sent.contains("refused=0"), "{refused}\n{sent}");
}
