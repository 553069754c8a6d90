//! The host-call fuzzer's harness: a node with small budgets that runs one script at a time
//! in `guests/testing/host-calls` — a process that reads its script as host calls with
//! adversarial arguments and makes them — and checks what must hold for any script: the
//! host does not panic, every process the script made ends and is gone, what the host holds
//! goes back to nothing, and the host's memory stays within the node's budget and a fixed
//! slack. Shared by the fuzz target (`fuzz_targets/host_calls.rs`, which also bounds each
//! call's time) and `tests/it/properties.rs` (the corpus and random scripts, on stable).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use wasmhost::runtime::{ExitReason, Node, NodeConfig, SpawnOptions};
use wasmhost::types::payload;

/// Linear memory and what the host holds, all processes together.
pub const BUDGET: u64 = 256 << 20;
/// What the host's memory may grow by beyond `BUDGET`: the engine's own, compiled code,
/// the log's queue, the allocator's slack.
pub const SLACK: u64 = 192 << 20;
/// The longest any script may take: a script is at most a few thousand calls, each bounded.
pub const PATIENCE: Duration = Duration::from_secs(60);

const REGISTRY: &str = r#"
version: "1.0"
namespace: fuzz
entries:
  - name: procs
    kind: process.host
  - name: script
    kind: process.host
    workers: 1
  - name: other
    kind: process.host
  - name: host-calls
    kind: process.wasm
    source: "{component}"
    modules: [process, time, logger]
    names: [reserved]
    authority:
      hosts: [fuzz:procs]
    limits:
      memory: 16MiB
      cpu: 5s
      message_size: 64KiB
      mailbox: 100
      mailbox_bytes: 1MiB
      host_memory: 2MiB
      events: 100
      names: 4
      handles: 256
      children: 8
"#;

/// A node that runs scripts, and the runtime it lives in.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    node: Arc<Node>,
    /// The host's resident memory once the node was built.
    baseline: u64,
    _app: tempfile::TempDir,
}

/// How one script ended.
#[derive(Debug)]
pub struct Outcome {
    pub reason: ExitReason,
    /// Host calls the script made, and the slowest (nanoseconds, opcode); `None` if the
    /// process did not return normally (a limit, a trap: it stopped part way).
    pub calls: Option<(u64, u64, u64)>,
}

/// The host's resident memory now, in bytes.
pub fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib << 10)
}

impl Harness {
    /// A node for `component` (the built `test_host_calls.wasm`), logging into a sink so
    /// that every line is rendered and queued as `wasmhost run` does.
    pub fn new(component: &Path) -> Harness {
        let (queue, flush) = wasmhost::logs::LogQueue::to(std::io::sink());
        std::mem::forget(flush);
        let _ = tracing_subscriber::fmt()
            .with_writer(queue)
            .with_max_level(tracing::Level::TRACE)
            .try_init();
        let app = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir_all(app.path().join("src")).expect("creating src/");
        std::fs::write(app.path().join("wasmhost.toml"), "").expect("writing wasmhost.toml");
        let registry = REGISTRY.replace("{component}", &component.display().to_string());
        std::fs::write(app.path().join("src/_index.yaml"), registry).expect("the registry");
        let root = wasmhost::app::AppRoot::locate(Some(app.path())).expect("the app");
        let loaded = wasmhost::app::load(&root).expect("the registry loads");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let config = NodeConfig {
            max_processes: 64,
            max_memory: 16 << 20,
            memory_budget: Some(BUDGET),
            workers: Some(2),
            compile_cache: None,
            ..NodeConfig::default()
        };
        let node = runtime
            .block_on(async {
                Node::builder(loaded)
                    .config(config)
                    .interfaces(wasmhost::abi::INTERFACES)
                    .build()
            })
            .expect("the node builds");
        Harness {
            runtime,
            node,
            baseline: resident(),
            _app: app,
        }
    }

    /// Runs `script` and checks what must hold after it, whatever it was.
    pub fn run(&self, script: &[u8]) -> Outcome {
        let node = self.node.clone();
        let shown: String = script.iter().map(|b| format!("{b:02x}")).collect();
        let script = script.to_vec();
        let outcome = self.runtime.block_on(async move {
            let (tx, exit) = tokio::sync::oneshot::channel();
            let options = SpawnOptions::new("fuzz:host-calls", "fuzz:script")
                .args(vec![script])
                .on_exit(tx);
            node.spawn(options).expect("a script process starts");
            let reason = tokio::time::timeout(PATIENCE, exit)
                .await
                .unwrap_or_else(|_| panic!("the script {shown} did not end in time"))
                .expect("its exit is reported");
            // Whatever it left running (children waiting, say) is ended; all of it goes.
            for process in node.processes() {
                node.terminate(&process.pid, ExitReason::Killed("fuzz".into()));
            }
            let deadline = tokio::time::Instant::now() + PATIENCE;
            while node.process_count() > 0 || node.held() > 0 || node.memory_used() > 0 {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "left behind: {} processes, {} bytes held, {} of memory",
                    node.process_count(),
                    node.held(),
                    node.memory_used()
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            reason
        });
        if let ExitReason::Trap(message) = &outcome {
            assert!(!message.starts_with("host panic"), "{message}");
        }
        let rss = resident();
        assert!(
            rss <= self.baseline + BUDGET + SLACK,
            "the host holds {} MiB, {} MiB at the start",
            rss >> 20,
            self.baseline >> 20
        );
        let calls = match &outcome {
            ExitReason::Normal(bytes) => payload::decode::<(u64, u64, u64)>(bytes).ok(),
            _ => None,
        };
        Outcome {
            reason: outcome,
            calls,
        }
    }
}
