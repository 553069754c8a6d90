//! The engine's share of a process: what it holds on the host's heap, a WASI context, an instance's cycle (on this node's
//! engine and on wasmtime's defaults), a spawn through the node, and an echo beside spinning
//! processes. The scenarios compared with Erlang are in `suite/` (`bench/run`).
//!
//! Run: `cargo bench -p wasmhost --bench engine` (a plain binary: it prints medians and
//! percentiles of many runs). It uses the app in guests/testing/bench: the echo relay with
//! a worker that answers at once.

#[path = "../../tests/it/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wasmhost::app::{self, AppRoot};
use wasmhost::payload;
use wasmhost::runtime::{
    Compiler, ExitReason, Node, NodeConfig, Pid, Process, Program, SpawnOptions, compile_all,
    new_store,
};
use wasmhost::services::Services;
use wasmtime::Engine;

const HOST: &str = "app:processes";

fn main() {
    common::build_guests();
    // `BENCH_WORKERS=1` runs processes on one worker thread (like Erlang with one scheduler):
    // no process hops to another thread. The default is one per core. The benchmarks drive
    // them from one tokio thread, as `wasmhost run`'s services do.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let bench = runtime.spawn(async {
        let root = AppRoot::locate(Some(&common::repo().join("guests/testing/bench")))
            .expect("the bench app");
        let app = app::load(&root).unwrap_or_else(|p| panic!("{p}"));
        // `BENCH_EPOCH_TICK=2ms` runs the node with another epoch tick (default 10ms).
        let mut config = NodeConfig {
            workers: std::env::var("BENCH_WORKERS")
                .ok()
                .and_then(|n| n.parse().ok()),
            ..NodeConfig::default()
        };
        if let Some(tick) = std::env::var("BENCH_EPOCH_TICK")
            .ok()
            .and_then(|t| wasmhost::app::values::parse_duration(&t).ok())
        {
            config.epoch_tick = tick;
        }
        let node = Node::builder(app)
            .config(config)
            .interfaces(wasmhost::abi::INTERFACES)
            .build()
            .unwrap_or_else(|err| panic!("{err}"));

        // `cargo bench --bench engine -- NAME` runs only the benchmarks whose name contains NAME.
        let only = std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .unwrap_or_default();
        if "heap".contains(&only) {
            heap_per_process(&node).await;
        }
        if "wasi-ctx".contains(&only) {
            wasi_ctx(20_000);
        }
        if "instantiate".contains(&only) {
            // `nop` is the raw bindings without the SDK: the floor of a std guest.
            for entry in ["app:nop", "app:child"] {
                let program = node.program(entry).expect("the entry");
                instantiate_call_drop(&node, node.engine(), &program, 2_000, 20_000).await;
            }
        }
        if "instantiate-defaults".contains(&only) {
            // The same cycle on an engine with wasmtime's defaults (on-demand memories,
            // concurrency support on): what the configuration in engine.rs saves.
            let mut config = wasmtime::Config::new();
            config.epoch_interruption(true);
            let engine = Engine::new(&config).expect("an engine");
            let programs = compile_all(
                &engine,
                node.app(),
                wasmhost::abi::INTERFACES,
                Compiler::default(),
            )
            .unwrap_or_else(|p| panic!("{p}"));
            let program = &programs["app:child"];
            instantiate_call_drop(&node, &engine, program, 200, 5_000).await;
        }
        if "spawn-cycle".contains(&only) {
            spawn_cycle(&node, 2_000, 20_000).await;
        }
        if "spinners".contains(&only) {
            // Eight spinning processes per core, beside the echo service.
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            echo_beside_spinners(&node, 8 * cores, 20, 200).await;
        }
    });
    runtime.block_on(bench).expect("the benchmarks ran");
}

/// Bytes the host's allocator has handed out and not been given back.
fn heap_in_use() -> i64 {
    // SAFETY: `mallinfo2` only reads the allocator's counters.
    unsafe { libc::mallinfo2().uordblks as i64 }
}

/// What a process holds on the host's heap, part by part, for a few guests: its `Process`, its
/// store, its instance (wasmtime's contexts: one function reference per function the guest's
/// tables and exports can reach, so it grows with the guest's code), an empty WASI context.
/// Each part is made for 1 000 processes and held, and the heap's growth divided.
async fn heap_per_process(node: &Arc<Node>) {
    const N: i64 = 1_000;
    let limits = node.config().default_limits();
    for entry in ["app:nop", "app:worker", "app:client", "app:child"] {
        let Some(program) = node.program(entry) else {
            continue;
        };
        let start = heap_in_use();
        let processes: Vec<_> = (0..N)
            .map(|i| {
                let pid = Pid::new(HOST, 1_000_000 + i as u64);
                Arc::new(Process::detached(pid, program.identity(), limits.clone()))
            })
            .collect();
        let processed = heap_in_use();
        let mut stores: Vec<_> = processes
            .iter()
            .map(|p| new_store(node.engine(), node, p))
            .collect();
        let stored = heap_in_use();
        let mut instances = Vec::with_capacity(stores.len());
        for store in &mut stores {
            instances.push(
                program
                    .pre
                    .instantiate_async(&mut *store)
                    .await
                    .expect("instantiating"),
            );
        }
        let instantiated = heap_in_use();
        println!(
            "heap per process ({entry}): Process {} B, store {} B, instance {} B",
            (processed - start) / N,
            (stored - processed) / N,
            (instantiated - stored) / N
        );
    }
}

/// What building a process's (empty) WASI context costs.
fn wasi_ctx(runs: usize) {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let ctx = wasmtime_wasi::WasiCtx::builder().build();
        times.push(start.elapsed());
        drop(ctx);
    }
    report("WasiCtx::builder().build()", &mut times);
}

/// The engine's share of a spawn: the process's store (as the runtime makes it), an instance
/// from the `InstancePre`, the entry point called, the store dropped; no task, no process
/// table. Each phase is timed apart.
async fn instantiate_call_drop(
    node: &Arc<Node>,
    engine: &Engine,
    program: &Program,
    warmup: usize,
    runs: usize,
) {
    let entry = program.entry.id.as_str();
    let limits = node.config().default_limits();
    let phases = ["store", "instantiate", "lookup", "call", "drop"];
    let mut times = vec![Vec::with_capacity(runs); phases.len() + 1];
    for i in 0..warmup + runs {
        let mut marks = [Instant::now(); 6];
        let pid = Pid::new(HOST, u64::MAX - i as u64);
        let process = Arc::new(Process::detached(pid, program.identity(), limits.clone()));
        let mut store = new_store(engine, node, &process);
        marks[1] = Instant::now();
        let instance = program
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiating");
        marks[2] = Instant::now();
        let main = instance
            .get_typed_func::<(Vec<Vec<u8>>,), (Result<Vec<u8>, String>,)>(
                &mut store,
                &program.method,
            )
            .expect("the entry point");
        marks[3] = Instant::now();
        let (result,) = main
            .call_async(&mut store, (child_args(),))
            .await
            .expect("calling");
        marks[4] = Instant::now();
        assert!(result.is_ok());
        drop(store);
        marks[5] = Instant::now();
        if i >= warmup {
            for (phase, pair) in marks.windows(2).enumerate() {
                times[phase].push(pair[1] - pair[0]);
            }
            times[phases.len()].push(marks[5] - marks[0]);
        }
    }
    for (phase, name) in phases.iter().enumerate() {
        report(&format!("  {name}"), &mut times[phase]);
    }
    let engine = if std::ptr::eq(engine, node.engine()) {
        "engine.rs"
    } else {
        "wasmtime defaults"
    };
    report(
        &format!("instantiate → call → drop ({entry}, {engine})"),
        &mut times[phases.len()],
    );
}

/// Spawns a process that returns at once and waits for its exit, one after another.
async fn spawn_cycle(node: &Arc<Node>, warmup: usize, runs: usize) {
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let start = Instant::now();
        let reason = run_child(node).await;
        if i >= warmup {
            times.push(start.elapsed());
        }
        assert!(reason.is_normal(), "{reason}");
    }
    report("spawn → run → exit, one at a time", &mut times);
}

/// The echo again, while `spinners` processes loop without end: how long an interactive
/// process waits for its turn when the cores are saturated.
async fn echo_beside_spinners(node: &Arc<Node>, spinners: usize, warmup: u32, runs: u32) {
    let spin = || {
        SpawnOptions::new("app:child", HOST)
            .args(vec![payload::encode("spin"), payload::encode("")])
    };
    let pids: Vec<Pid> = (0..spinners)
        .map(|_| node.spawn(spin()).expect("spawning a spinner"))
        .collect();
    let services = Services::start(node, None);
    services.running().await.expect("the relay starts");
    let mut times = measure_in_guest(node, "echo", warmup, runs).await;
    report(
        &format!("echo beside {spinners} spinning processes, no sleep"),
        &mut times,
    );
    services.stop().await;
    for pid in &pids {
        node.terminate(pid, ExitReason::Killed("the benchmark".into()));
    }
}

/// Runs the bench client in `mode` and returns the round trips it timed, minus the warmup.
async fn measure_in_guest(node: &Arc<Node>, mode: &str, warmup: u32, runs: u32) -> Vec<Duration> {
    let (tx, exit) = oneshot::channel();
    let args = vec![
        payload::encode(mode),
        payload::encode(&(warmup + runs)),
        payload::encode(&0u32),
    ];
    node.spawn(SpawnOptions::new("app:client", HOST).args(args).on_exit(tx))
        .expect("spawning the client");
    let round_trips: Vec<u64> = match exit.await.expect("an exit") {
        ExitReason::Normal(bytes) => {
            ciborium::from_reader(bytes.as_slice()).expect("a list of round trips")
        }
        other => panic!("the client ended with {other}"),
    };
    round_trips[warmup as usize..]
        .iter()
        .map(|&ns| Duration::from_nanos(ns))
        .collect()
}

async fn run_child(node: &Arc<Node>) -> ExitReason {
    let (tx, exit) = oneshot::channel();
    node.spawn(child(tx)).expect("spawning");
    exit.await.expect("an exit")
}

/// `app:child`, returning at once.
fn child(exit: oneshot::Sender<ExitReason>) -> SpawnOptions {
    SpawnOptions::new("app:child", HOST)
        .args(child_args())
        .on_exit(exit)
}

fn child_args() -> Vec<Vec<u8>> {
    vec![payload::encode("return"), payload::encode("")]
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{what}: n={} median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs",
        times.len(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.9).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
    );
}
