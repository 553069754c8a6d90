//! What one guest language's processes cost, measured on the languages app
//! (guests/testing/languages): the component's size, a node's start with an empty compile
//! cache and with a warm one, spawn_monitored → EXIT, memory per live idle process, and the
//! echo round trip (client → Rust relay → a new worker in the language → client). Shared by
//! the benchmark (`bench/run languages`) and its smoke test (tests/it/bench_suite.rs), beside
//! the suite's `scenarios` module, whose helpers it uses.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wasmhost::app::{self, App, AppRoot};
use wasmhost::payload;
use wasmhost::runtime::{Node, NodeConfig, SpawnOptions};

use crate::scenarios::{in_guest, resident_bytes, settled_resident_bytes};
use wasmhost::services::Services;

const HOST: &str = "app:processes";

/// A guest language and its entries in the languages app.
#[derive(Debug, Clone, Copy)]
pub struct Language {
    pub name: &'static str,
    /// A process that returns at once (`return`) or waits until cancelled (`wait`).
    pub child: &'static str,
    pub wait_mode: &'static str,
    /// The echo worker that answers at once.
    pub worker: &'static str,
}

pub const LANGUAGES: &[Language] = &[
    Language {
        name: "Rust",
        child: "app:child",
        wait_mode: "wait-cancel",
        worker: "app:worker",
    },
    Language {
        name: "Python",
        child: "app:child-py",
        wait_mode: "wait",
        worker: "app:worker-py",
    },
    Language {
        name: "JavaScript",
        child: "app:child-js",
        wait_mode: "wait",
        worker: "app:worker-js",
    },
    Language {
        name: "C",
        child: "app:child-c",
        wait_mode: "wait",
        worker: "app:worker-c",
    },
];

/// How many of each operation.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub spawns: u32,
    pub live: u32,
    pub echoes: u32,
    /// Start with an empty compile cache (to time the compile); else the user's cache.
    pub cold: bool,
}

/// What was measured for one language.
#[derive(Debug, Clone)]
pub struct Row {
    pub language: &'static str,
    pub size: u64,
    pub cold_start: Duration,
    pub cached_start: Duration,
    pub spawn_p50: Duration,
    pub bytes_per_process: u64,
    pub echo_p50: Duration,
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

fn languages_app() -> App {
    let root =
        AppRoot::locate(Some(&repo().join("guests/testing/languages"))).expect("the languages app");
    app::load(&root).unwrap_or_else(|p| panic!("{p}"))
}

fn node(app: App, cache: &Path, max_processes: u32) -> Arc<Node> {
    let config = NodeConfig {
        max_processes,
        memory_budget: Some(u64::from(max_processes) << 24),
        compile_cache: Some(cache.to_path_buf()),
        ..NodeConfig::default()
    };
    Node::builder(app)
        .config(config)
        .interfaces(wasmhost::abi::INTERFACES)
        .build()
        .unwrap_or_else(|err| panic!("{err}"))
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Measures `language`; runs on the current tokio runtime.
pub async fn measure(language: Language, counts: Counts) -> Row {
    let empty = tempfile::tempdir().expect("a compile cache folder");
    let users = NodeConfig::default().compile_cache;
    let cache = match (&users, counts.cold) {
        (Some(dir), false) => dir.as_path(),
        _ => empty.path(),
    };
    // A node of the language's child alone: its start is the component's compile (cold) or
    // load (warm).
    let alone = |app: &App| {
        let mut app = app.clone();
        app.processes.retain(|id, _| id == language.child);
        app.services.clear();
        app.top.clear();
        app
    };
    let full = languages_app();
    let source = &full.processes[language.child].source;
    let size = std::fs::metadata(source).map_or(0, |m| m.len());
    let start = Instant::now();
    drop(node(alone(&full), cache, 16));
    let cold_start = start.elapsed();
    let start = Instant::now();
    drop(node(alone(&full), cache, 16));
    let cached_start = start.elapsed();

    let mut app = full.clone();
    for service in &mut app.services {
        service.args = vec![payload::encode(language.worker)];
    }
    // A Python component takes 14 core instances where the pool counts 4 per process on
    // average: room for all of them.
    let pool = (counts.live + 100) * 4;
    let node = node(app, cache, pool);

    let mut spawns = Vec::new();
    for _ in 0..counts.spawns {
        let (tx, exit) = oneshot::channel();
        let start = Instant::now();
        node.spawn(child(language, "return").on_exit(tx))
            .expect("spawning");
        let reason = exit.await.expect("an exit");
        spawns.push(start.elapsed());
        assert!(reason.is_normal(), "{reason}");
    }

    let before = resident_bytes();
    let mut live = Vec::new();
    for _ in 0..counts.live {
        let (tx, exit) = oneshot::channel();
        let pid = node
            .spawn(child(language, language.wait_mode).on_exit(tx))
            .expect("spawning");
        live.push((pid, exit));
    }
    let rss = settled_resident_bytes().await;
    let bytes_per_process = rss.saturating_sub(before) / u64::from(counts.live.max(1));
    for (pid, _) in &live {
        node.cancel(pid, "done".into(), Duration::from_secs(5));
    }
    for (_, exit) in live {
        let reason = exit.await.expect("an exit");
        assert!(reason.is_normal(), "{reason}");
    }

    let services = Services::start(&node, None);
    services.running().await.expect("the relay runs");
    let echo_p50 = median(in_guest(&node, "echo", counts.echoes, 0).await);
    services.stop().await;

    Row {
        language: language.name,
        size,
        cold_start,
        cached_start,
        spawn_p50: median(spawns),
        bytes_per_process,
        echo_p50,
    }
}

fn child(language: Language, mode: &str) -> SpawnOptions {
    SpawnOptions::new(language.child, HOST).args(vec![payload::encode(mode), payload::encode("")])
}

/// The rows as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| language | component | first start (compile) | cached start | spawn → EXIT p50 | memory per live process (Pss) | echo p50 |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {:.1} MiB | {:.2} s | {:.0} ms | {:.1} µs | {:.0} KiB | {:.1} µs |\n",
            r.language,
            r.size as f64 / (1 << 20) as f64,
            r.cold_start.as_secs_f64(),
            r.cached_start.as_secs_f64() * 1e3,
            r.spawn_p50.as_secs_f64() * 1e6,
            r.bytes_per_process as f64 / 1024.0,
            r.echo_p50.as_secs_f64() * 1e6,
        ));
    }
    out
}
