//! Hibernation: a process hands the host its state and its instance ends; the process lives
//! on (pid, mailbox, names, monitors), shows `hibernated` in `ps` holding no memory and no
//! place in the pool, and the next message, event or wake-up time resumes it from its state.
//! The processes are guests/testing/child's `counter`, `hibernate-for` and `hibernate-large`.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use wasmhost::payload;
use wasmhost::runtime::{
    Destination, ExitReason, Moved, Node, NodeConfig, Pid, ProcessInfo, SpawnOptions,
};

use common::{PATIENCE, runtime};

const HOST: &str = "test:procs";

fn node(config: NodeConfig) -> Arc<Node> {
    common::build_guests();
    let app = common::load(&common::repo().join("guests/testing/app"));
    common::node_of(app, config)
}

/// Spawns `entry` with string arguments; its pid and its exit to come.
fn spawn(node: &Arc<Node>, entry: &str, args: &[&str]) -> (Pid, oneshot::Receiver<ExitReason>) {
    let (tx, exit) = oneshot::channel();
    let args = args.iter().map(payload::encode).collect();
    let pid = node
        .spawn(SpawnOptions::new(entry, HOST).args(args).on_exit(tx))
        .expect("spawned");
    (pid, exit)
}

async fn exit_of(exit: oneshot::Receiver<ExitReason>) -> ExitReason {
    tokio::time::timeout(PATIENCE, exit)
        .await
        .expect("it ends in time")
        .expect("an exit reason")
}

/// Waits (at most `PATIENCE`) until `pid` hibernates, and returns what `ps` shows of it.
/// The host tells nobody when a process hibernates, so this looks every millisecond.
async fn hibernated(node: &Node, pid: &Pid) -> ProcessInfo {
    let seen = tokio::time::timeout(PATIENCE, async {
        loop {
            let info = node.processes().into_iter().find(|p| &p.pid == pid);
            match info {
                Some(info) if info.hibernated.is_some() => return info,
                Some(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                None => panic!("{pid} ended"),
            }
        }
    });
    seen.await.expect("it hibernates in time")
}

fn send(node: &Node, to: Destination, topic: &str, value: u64) {
    node.send(&to, topic.into(), payload::encode(&value))
        .expect("sent");
}

/// Asks a `counter` to stop: it returns its total and how many times it woke.
fn stop(node: &Node, to: Destination) {
    node.send(&to, "stop".into(), payload::encode(&()))
        .expect("sent");
}

#[test]
fn a_hibernated_process_keeps_its_pid_name_and_mailbox_and_resumes_from_its_state() {
    let node = node(NodeConfig::default());
    runtime().block_on(async {
        let (pid, exit) = spawn(&node, "test:child", &["counter", "hibernating-counter"]);
        let info = hibernated(&node, &pid).await;
        assert_eq!(info.memory, 0, "no instance, no linear memory");
        let state = info.hibernated.expect("hibernated");
        assert!(state > 0, "its state: the spawn arguments and (0, 0)");
        assert!(
            info.held >= state + 1024,
            "its state and the bookkeeping are charged to it: {} held for {state}",
            info.held
        );
        assert_eq!(
            node.lookup("hibernating-counter"),
            Some(pid.clone()),
            "its name stays while it hibernates"
        );
        // Each message wakes a new instance, which takes it and hibernates again; a message
        // that arrives meanwhile waits in the mailbox and wakes the next.
        let by_name = || Destination::Name("hibernating-counter".into());
        send(&node, by_name(), "add", 5);
        send(&node, Destination::Pid(pid.clone()), "add", 7);
        stop(&node, by_name());
        assert_eq!(
            exit_of(exit).await,
            ExitReason::Normal(payload::encode("12 after 3 wakes"))
        );
        assert_eq!(
            node.lookup("hibernating-counter"),
            None,
            "released at its exit"
        );
    });
}

#[test]
fn a_hibernated_process_is_ended_cancelled_and_woken_by_its_timer() {
    let node = node(NodeConfig::default());
    runtime().block_on(async {
        let (pid, exit) = spawn(&node, "test:child", &["counter", ""]);
        hibernated(&node, &pid).await;
        assert!(node.terminate(&pid, ExitReason::Killed("the test".into())));
        assert_eq!(exit_of(exit).await, ExitReason::Killed("the test".into()));

        // A cancel is an event: it wakes the process, which sees it.
        let (pid, exit) = spawn(&node, "test:child", &["counter", ""]);
        hibernated(&node, &pid).await;
        assert!(node.cancel(&pid, "closing".into(), PATIENCE));
        assert_eq!(
            exit_of(exit).await,
            ExitReason::Normal(payload::encode("closing: 0 after 1 wakes"))
        );

        let (_, exit) = spawn(&node, "test:child", &["hibernate-for", "10ms"]);
        assert_eq!(
            exit_of(exit).await,
            ExitReason::Normal(payload::encode("woke with a state"))
        );
    });
}

#[test]
fn a_state_over_the_message_size_is_refused_and_the_process_runs_on() {
    let node = node(NodeConfig::default());
    runtime().block_on(async {
        // `test:modest` takes messages of 1 KiB at most.
        let (_, exit) = spawn(&node, "test:modest", &["hibernate-large", "2000"]);
        let value = match exit_of(exit).await {
            ExitReason::Normal(value) => value,
            other => panic!("it runs on after the refusal, but {other}"),
        };
        let said: String = payload::decode(&value).expect("text");
        assert!(
            said.starts_with("refused: limit: message_size: a state of ")
                && said.ends_with(" bytes, over its message_size of 1024"),
            "{said}"
        );
    });
}

/// Hibernated processes hold no place in the pool: a pool of two runs two other processes
/// while two counters hibernate, and a counter woken while the pool is full waits for a place.
#[test]
fn hibernated_processes_leave_the_pool_and_a_woken_one_waits_for_a_place() {
    let config = NodeConfig {
        max_processes: 2,
        ..NodeConfig::default()
    };
    let node = node(config);
    runtime().block_on(async {
        let (a, a_exit) = spawn(&node, "test:child", &["counter", ""]);
        hibernated(&node, &a).await;
        let (b, b_exit) = spawn(&node, "test:child", &["counter", ""]);
        hibernated(&node, &b).await;
        let (c, c_exit) = spawn(&node, "test:child", &["wait-cancel", ""]);
        let (d, d_exit) = spawn(&node, "test:child", &["wait-cancel", ""]);
        assert_eq!(node.process_count(), 4, "two over the pool's size");

        // `a` is woken while the pool is full: it waits until `c` gives its place back.
        send(&node, Destination::Pid(a.clone()), "add", 1);
        stop(&node, Destination::Pid(a.clone()));
        let mut a_exit = a_exit;
        assert!(
            matches!(a_exit.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
            "it cannot have run: there is no place for it"
        );
        assert!(node.cancel(&c, "make room".into(), PATIENCE));
        assert_eq!(
            exit_of(c_exit).await,
            ExitReason::Normal(payload::encode("make room"))
        );
        assert_eq!(
            exit_of(a_exit).await,
            ExitReason::Normal(payload::encode("1 after 2 wakes"))
        );
        node.terminate(&b, ExitReason::Killed("done".into()));
        node.terminate(&d, ExitReason::Killed("done".into()));
        exit_of(b_exit).await;
        exit_of(d_exit).await;
    });
}

/// The sessions example (guests/examples/sessions): each user's session remembers the user's
/// visits across hibernations, and `wasmhost ps` shows the sessions hibernated between them.
#[test]
fn the_sessions_example_remembers_each_users_visits_while_they_hibernate() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    common::build_guests();
    let app = common::repo().join("guests/examples/sessions");
    let runtime_dir = tempfile::tempdir().expect("a runtime folder");
    let wasmhost = || {
        let mut command = common::wasmhost();
        command
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .arg("--app")
            .arg(&app);
        command
    };
    let mut node = wasmhost()
        .args(["run", "app:cli"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting wasmhost run");
    let mut input = node.stdin.take().expect("its stdin");
    let stdout = node.stdout.take().expect("its stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut visit = |line: &str, answer: &str| {
        writeln!(input, "{line}").expect("typed");
        loop {
            let seen = lines
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no answer `{answer}` to `{line}`"));
            if seen.contains(answer) {
                break;
            }
        }
    };
    visit("ada home", "ada: first visit (home)");
    visit("bob cart", "bob: first visit (cart)");
    visit("ada checkout", "ada: visit 2 (checkout), after home");

    // Each session hibernates once it has answered: wait (at most `PATIENCE`) for `ps` to
    // show both so.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let out = wasmhost().args(["ps", "--json"]).output().expect("ps");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let sessions: Vec<&serde_json::Value> = snapshot["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter(|p| p["entry"] == "app:session")
            .collect();
        assert_eq!(sessions.len(), 2, "{snapshot}");
        let hibernated = sessions.iter().all(|p| {
            p["state"] == "hibernated" && p["memory"] == 0 && p["state_bytes"].as_u64() > Some(0)
        });
        if hibernated {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not hibernated: {snapshot}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(input);
    let status = node.wait().expect("it ends at the end of input");
    assert!(status.success(), "{status}");
}

/// Two processes of `test:child` for an upgrade: one that reads only a cancel (the upgrade
/// event goes unanswered, and the upgrade waits out its grace), then a counter, hibernated.
async fn deaf_and_asleep(
    node: &Arc<Node>,
) -> (
    (Pid, oneshot::Receiver<ExitReason>),
    (Pid, oneshot::Receiver<ExitReason>),
) {
    let deaf = spawn(node, "test:child", &["wait-cancel", ""]);
    let counter = spawn(node, "test:child", &["counter", ""]);
    hibernated(node, &counter.0).await;
    (deaf, counter)
}

/// In an upgrade, a process that does not hand over within the grace period is killed
/// saying so, and a hibernated one is left to wake into the new component, its state kept.
#[test]
fn an_upgrade_kills_a_process_that_does_not_hand_over_and_leaves_a_hibernated_one_asleep() {
    let node = node(NodeConfig::default());
    runtime().block_on(async {
        let ((deaf, deaf_exit), (counter, counter_exit)) = deaf_and_asleep(&node).await;

        let entry = node.app().processes["test:child"].clone();
        let grace = Duration::from_millis(200);
        let report = node.upgrade(entry, &[], grace).await.expect("upgraded");
        assert!(!report.rolled_back);
        let mut moved = report.processes.clone();
        moved.sort_by_key(|(pid, _)| pid.id);
        assert_eq!(
            moved,
            vec![(deaf, Moved::Killed), (counter.clone(), Moved::Hibernated)]
        );
        assert_eq!(
            exit_of(deaf_exit).await,
            ExitReason::Killed("upgrade: did not hand over within 200ms".into())
        );
        send(&node, Destination::Pid(counter.clone()), "add", 5);
        stop(&node, Destination::Pid(counter));
        assert_eq!(
            exit_of(counter_exit).await,
            ExitReason::Normal(payload::encode("5 after 2 wakes"))
        );
    });
}

/// A process another process spawned leaves the places kept for the node's own spawns
/// (`reserved_processes`) when it wakes, as at its spawn: with one place of three kept and two
/// taken, a woken child waits for a place, where a service would have taken the kept one.
#[test]
fn a_woken_child_leaves_the_places_kept_for_the_node() {
    let config = NodeConfig {
        max_processes: 3,
        reserved_processes: Some(1),
        ..NodeConfig::default()
    };
    let node = node(config);
    runtime().block_on(async {
        let (_parent, spawned) = spawn(
            &node,
            "test:child",
            &["spawn-counter", "test:child test:procs"],
        );
        let ExitReason::Normal(pid) = exit_of(spawned).await else {
            panic!("the parent failed");
        };
        let text: String = payload::decode(&pid).expect("a pid's text");
        let counter: Pid = text.parse().expect("a pid");
        hibernated(&node, &counter).await;
        // The node's own spawns may take every place: two of three are taken.
        let (c, c_exit) = spawn(&node, "test:child", &["wait-cancel", ""]);
        let (d, d_exit) = spawn(&node, "test:child", &["wait-cancel", ""]);

        send(&node, Destination::Pid(counter.clone()), "add", 1);
        let waits = tokio::time::timeout(PATIENCE, async {
            while node.waiting_for_a_place() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        waits
            .await
            .expect("the counter waits for a place beyond the kept one");
        assert!(node.cancel(&c, "make room".into(), PATIENCE));
        exit_of(c_exit).await;
        stop(&node, Destination::Pid(counter.clone()));
        let ended = tokio::time::timeout(PATIENCE, async {
            while node.is_alive(&counter) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        ended
            .await
            .expect("the counter ran once a place was free, and stopped");
        node.terminate(&d, ExitReason::Killed("done".into()));
        exit_of(d_exit).await;
    });
}

/// A hibernated process that wakes into the new component while an upgrade runs is on trial,
/// as one that handed over is: a component that fails at its start sends it back to the old
/// one with its state, and the upgrade is rolled back.
#[test]
fn a_process_woken_into_a_failing_upgrade_goes_back_and_the_upgrade_is_rolled_back() {
    let node = node(NodeConfig::default());
    runtime().block_on(async {
        let ((deaf, deaf_exit), (counter, counter_exit)) = deaf_and_asleep(&node).await;
        let old = node.program("test:child").expect("the entry");
        // The echo worker's component: called with a counter's arguments, it fails at once.
        let mut entry = node.app().processes["test:child"].clone();
        entry.source = common::guest_artifacts().join("echo_worker.wasm");
        entry.hash = None;
        let upgrading = {
            let node = node.clone();
            tokio::spawn(async move { node.upgrade(entry, &[], Duration::from_secs(2)).await })
        };
        let swapped = tokio::time::timeout(PATIENCE, async {
            while node
                .program("test:child")
                .is_some_and(|now| Arc::ptr_eq(&now, &old))
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        swapped.await.expect("the entry's program replaced");
        // Woken now, into the new component.
        send(&node, Destination::Pid(counter.clone()), "add", 1);

        let report = upgrading
            .await
            .expect("the upgrade ran")
            .expect("it started");
        assert!(report.rolled_back, "{report:?}");
        let [(first, killed), (second, failed)] = &report.processes[..] else {
            panic!("{report:?}");
        };
        assert_eq!((first, killed), (&deaf, &Moved::Killed));
        assert_eq!(second, &counter);
        let Moved::Failed(reason) = failed else {
            panic!("{report:?}");
        };
        assert!(
            reason.to_string().starts_with("error: bad arguments"),
            "{reason}"
        );
        assert!(Arc::ptr_eq(
            &node.program("test:child").expect("the entry"),
            &old
        ));
        exit_of(deaf_exit).await;
        // The old component took its state back and read the message.
        stop(&node, Destination::Pid(counter));
        assert_eq!(
            exit_of(counter_exit).await,
            ExitReason::Normal(payload::encode("1 after 2 wakes"))
        );
    });
}
