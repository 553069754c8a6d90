//! The cluster's figures: `bench/run cluster` (or `cargo bench -p wasmhost --bench cluster`).
//!
//! - The suite's scenarios with the partners on another node: node `a` runs the bench client,
//!   node `b` (in the same OS process, joined over a NATS server on this machine) runs the
//!   relay and the partners the client spawns there; beside each, the same scenario on node
//!   `a` alone, in the same run.
//! - `kill -9` → `no-connection`: a `wasmhost run` node holding the relay is killed, ten times
//!   at each setting; a process on node `a` monitoring the relay says when its
//!   `no-connection` came (min, p50, max of the time from the kill).

#[path = "../../../tests/it/common/mod.rs"]
mod common;
#[path = "../suite/scenarios.rs"]
#[allow(dead_code)]
mod scenarios;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scenarios::{FULL, Measured, Scenario};
use wasmhost::app::{self, AppRoot};
use wasmhost::runtime::{Cluster, ClusterConfig, Node, NodeConfig};
use wasmhost::services::Services;

/// The scenarios measured across nodes, and their counts (lower than the suite's: a round
/// trip through the NATS server costs tens of microseconds).
const ACROSS: &[(&str, u32)] = &[
    ("spawn-monitor", 2_000),
    ("ping-pong", 10_000),
    ("flood", 200_000),
    ("echo", 5_000),
    ("echo-64", 100),
];
const KILLS: usize = 10;

fn main() {
    common::build_guests();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| words.is_empty() || words.iter().any(|w| name.contains(w.as_str()));

    if wanted("scenarios") {
        let nats = Nats::start();
        let rows = runtime.block_on(scenarios_across(nats.url.clone()));
        println!("| scenario | one node p50 | p99 | rate | two nodes p50 | p99 | rate |");
        println!("|---|---|---|---|---|---|---|");
        for (what, alone, across) in rows {
            let alone = alone.map_or("— | — | —".into(), |m| cells(&m));
            println!("| {what} | {alone} | {} |", cells(&across));
        }
    }
    if wanted("kill") {
        for (heartbeat, down_after) in [("1s", "3s"), ("200ms", "1s")] {
            let nats = Nats::start();
            let mut took = runtime.block_on(kills(&nats.url, heartbeat, down_after));
            took.sort();
            let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
            println!(
                "kill -9 → no-connection at the monitor, heartbeat {heartbeat}, down_after {down_after}, {} kills: min {}, p50 {}, max {}",
                took.len(),
                ms(took[0]),
                ms(took[took.len() / 2]),
                ms(took[took.len() - 1]),
            );
        }
    }
    runtime.shutdown_background();
}

fn cells(m: &Measured) -> String {
    use scenarios::{rate, us};
    format!("{} | {} | {}", us(m.p50), us(m.p99), rate(m.rate()))
}

/// The bench app.
fn bench_app() -> (app::App, PathBuf) {
    let root =
        AppRoot::locate(Some(&common::repo().join("guests/testing/bench"))).expect("the bench app");
    let app = app::load(&root).unwrap_or_else(|p| panic!("{p}"));
    (app, root.registry_dir())
}

/// Node `name` of the bench app, joined to the cluster at `url`.
async fn node(url: &str, name: &str, heartbeat: Duration, down_after: Duration) -> Arc<Node> {
    let (app, registry) = bench_app();
    let config = ClusterConfig {
        url: url.to_string(),
        node: name.to_string(),
        heartbeat,
        down_after,
        credentials: None,
        tls_ca: None,
        registry: app::registry_digest(&registry).expect("the registry's digest"),
        runs: Vec::new(),
    };
    let cluster = Cluster::join(config)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    Node::builder(app)
        .config(NodeConfig {
            max_processes: 2_000,
            ..NodeConfig::default()
        })
        .interfaces(wasmhost::abi::INTERFACES)
        .cluster(cluster)
        .build()
        .unwrap_or_else(|err| panic!("{err}"))
}

async fn scenarios_across(url: String) -> Vec<(&'static str, Option<Measured>, Measured)> {
    let (heartbeat, down_after) = (ClusterConfig::HEARTBEAT, ClusterConfig::DOWN_AFTER);
    let a = node(&url, "a", heartbeat, down_after).await;
    let b = node(&url, "b", heartbeat, down_after).await;
    // The relay on b: a's echo clients reach it by name, across.
    let relay = Services::start(&b, None);
    relay.running().await.expect("the relay starts");
    let mut rows = Vec::new();
    for &(name, n) in ACROSS {
        let Some(&scenario) = FULL.iter().find(|s| s.name == name) else {
            continue;
        };
        let scenario = Scenario { n, ..scenario };
        let warmup = Scenario {
            n: (n / 10).max(1),
            ..scenario
        };
        eprintln!("{} …", scenario.what);
        // Alone: partners on a; the echo's relay is b's either way, so its single-node
        // figure is the suite's.
        scenarios::run_wasmhost_on(&a, warmup, None).await;
        let alone = scenarios::run_wasmhost_on(&a, scenario, None).await;
        scenarios::run_wasmhost_on(&a, warmup, Some("b@app:processes")).await;
        let across = scenarios::run_wasmhost_on(&a, scenario, Some("b@app:processes")).await;
        let alone = (!name.starts_with("echo")).then_some(alone);
        rows.push((scenario.what, alone, across));
    }
    relay.stop().await;
    for node in [&a, &b] {
        if let Some(cluster) = node.cluster() {
            cluster.leave().await;
        }
    }
    rows
}

/// `KILLS` times: a `wasmhost run` node holding the relay, monitored from node `a`, killed;
/// the time from each kill to the monitor's `no-connection`.
async fn kills(url: &str, heartbeat: &str, down_after: &str) -> Vec<Duration> {
    let parse = |text: &str| humantime::parse_duration(text).expect("a duration");
    let a = node(url, "a", parse(heartbeat), parse(down_after)).await;
    let mut took = Vec::new();
    for round in 0..KILLS {
        let name = format!("k{round}");
        let mut relay = relay_node(url, &name, heartbeat, down_after);
        let watch = tokio::spawn({
            let a = a.clone();
            async move { scenarios::in_guest(&a, "watch", 0, 0).await }
        });
        // The watcher says when its monitor was made; the kill comes well after that (it
        // is checked below).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let killed = unix_now();
        let _ = relay.kill();
        let _ = relay.wait();
        let times = watch.await.expect("the watcher");
        let (monitored, heard) = (times[0], times[1]);
        assert!(
            monitored.as_nanos() < killed.as_nanos(),
            "the monitor came after the kill"
        );
        took.push(heard.saturating_sub(killed));
    }
    if let Some(cluster) = a.cluster() {
        cluster.leave().await;
    }
    took
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `wasmhost run` of the bench app as node `name`, once its relay holds its name.
fn relay_node(url: &str, name: &str, heartbeat: &str, down_after: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhost"))
        .current_dir(common::repo().join("guests/testing/bench"))
        .args(["run", "--cluster", url, "--node", name])
        .args(["--heartbeat", heartbeat, "--down-after", down_after])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasmhost");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("service ready") => break,
            Some(Ok(_)) => {}
            _ => panic!("node {name} ended before its relay was ready"),
        }
    }
    // The rest of its log is not read: it goes nowhere.
    std::thread::spawn(move || for _ in lines {});
    child
}

/// A nats-server of this run's own (the pinned one), on a port of its choosing.
struct Nats {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let install = common::repo().join("scripts/install-nats.sh");
        let output = Command::new(&install).output().expect("installing nats");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let server = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let store = tempfile::tempdir().expect("a store folder");
        let mut child = Command::new(&server)
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nats-server");
        let stderr = child.stderr.take().expect("piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut port = None;
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(at) = line.find("Listening for client connections on ") {
                port = line[at..].rsplit(':').next().map(|p| p.trim().to_string());
            }
            if line.contains("Server is ready") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let port = port.expect("the server's port");
        Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _store: store,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
