//! The scenarios of the benchmark suite, each run on wasmhost (guests/testing/bench) and on
//! Erlang/OTP (bench/erlang/suite.erl), and the table that sets them side by side. Shared by
//! the suite (`bench/run`) and its smoke test (tests/it/bench_suite.rs), which runs each with
//! tiny counts.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use wasmhost::app::{self, AppRoot};
use wasmhost::payload;
use wasmhost::runtime::{ExitReason, Node, NodeConfig, Pid, SpawnOptions};
use wasmhost::services::Services;

pub const HOST: &str = "app:processes";

/// One scenario and its counts: `n` operations (for `ring`, `n` processes and `m` rounds).
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    pub n: u32,
    pub m: u32,
}

/// Every scenario, with the counts of a full run.
pub const FULL: &[Scenario] = &[
    Scenario {
        name: "spawn-monitor",
        what: "spawn_monitored → EXIT",
        n: 20_000,
        m: 0,
    },
    Scenario {
        name: "ping-pong",
        what: "ping-pong, 32 B round trip",
        n: 100_000,
        m: 0,
    },
    Scenario {
        name: "flood",
        what: "one-way flood of 32 B, one receiver",
        n: 1_000_000,
        m: 0,
    },
    Scenario {
        name: "ring",
        what: "ring of 1 000, token 100 times round",
        n: 1_000,
        m: 100,
    },
    Scenario {
        name: "echo",
        what: "echo: client → relay → new worker → client",
        n: 20_000,
        m: 0,
    },
    Scenario {
        name: "echo-64",
        what: "echo, 64 clients at once",
        n: 500,
        m: 0,
    },
    Scenario {
        name: "burst",
        what: "burst: spawn at once, all exit",
        n: 10_000,
        m: 0,
    },
    Scenario {
        name: "live",
        what: "live processes, blocked in receive",
        n: 100_000,
        m: 0,
    },
    Scenario {
        name: "hibernated",
        what: "hibernated processes; message → woken → answer",
        n: 100_000,
        m: 0,
    },
];

impl Scenario {
    /// What the Erlang script takes: `NAME:N:M`.
    pub fn erlang_arg(&self) -> String {
        format!("{}:{}:{}", self.name, self.n, self.m)
    }
}

/// What one run of a scenario measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Operations done: round trips, messages, hops, processes.
    pub ops: u64,
    pub wall: Duration,
    /// CPU time of the whole runtime (every thread) during the run.
    pub cpu: Duration,
    /// Each operation timed on its own, sorted, where the scenario does so (wasmhost's side).
    pub times: Vec<Duration>,
    /// The median and 99th percentile of those times (Erlang's side reports only these).
    pub p50: Option<Duration>,
    pub p99: Option<Duration>,
    /// Memory per process, where the scenario measures it.
    pub bytes_per_process: Option<u64>,
}

impl Measured {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn rate_per_cpu_second(&self) -> Option<f64> {
        (!self.cpu.is_zero()).then(|| self.ops as f64 / self.cpu.as_secs_f64())
    }
}

/// CPU time of this OS process so far, all threads.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// The bench app's node, sized for `max_processes`.
/// A node for the bench app with a pool of `max_processes`, and a memory budget for as many
/// live processes and `hibernated` hibernated ones (each charged its state and 1 KiB).
pub fn bench_node(max_processes: u32, hibernated: u32) -> Arc<Node> {
    let root = AppRoot::locate(Some(&repo().join("guests/testing/bench"))).expect("the bench app");
    let app = app::load(&root).unwrap_or_else(|p| panic!("{p}"));
    let config = NodeConfig {
        max_processes,
        // Every live process may touch its initial memory; half the machine (the default)
        // may refuse that for 100 000 of them.
        memory_budget: Some((u64::from(max_processes) << 20) + (u64::from(hibernated) << 11)),
        workers: std::env::var("BENCH_WORKERS")
            .ok()
            .and_then(|n| n.parse().ok()),
        ..NodeConfig::default()
    };
    Node::builder(app)
        .config(config)
        .interfaces(wasmhost::abi::INTERFACES)
        .build()
        .unwrap_or_else(|err| panic!("{err}"))
}

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// Runs `scenario` on `node`; the relay service must be running for the echo scenarios.
pub async fn run_wasmhost(node: &Arc<Node>, scenario: Scenario) -> Measured {
    run_wasmhost_on(node, scenario, None).await
}

/// As [`run_wasmhost`], with the partners the client spawns (the child, `pong`, the flood's
/// sink, the ring) on `partners` (`b@app:processes`: another node of a cluster).
pub async fn run_wasmhost_on(
    node: &Arc<Node>,
    scenario: Scenario,
    partners: Option<&str>,
) -> Measured {
    let Scenario { name, n, m, .. } = scenario;
    let mode = match partners {
        Some(host) => format!("{name} on {host}"),
        None => name.to_string(),
    };
    let cpu = cpu_time();
    let start = Instant::now();
    let mut measured = match name {
        "spawn-monitor" | "ping-pong" | "echo" => {
            let times = in_guest(node, &mode, n, 0).await;
            Measured {
                ops: n.into(),
                times,
                ..Measured::default()
            }
        }
        "flood" | "ring" => {
            let elapsed = in_guest(node, &mode, n, m).await;
            let ops = if name == "ring" {
                u64::from(n) * u64::from(m)
            } else {
                n.into()
            };
            let mut measured = Measured {
                ops,
                ..Measured::default()
            };
            // The guest timed the run itself, without spawning its partners.
            measured.wall = elapsed.first().copied().unwrap_or_default();
            measured
        }
        "echo-64" => {
            let clients: Vec<_> = (0..64)
                .map(|_| Box::pin(in_guest(node, "echo", n, 0)))
                .collect();
            let times = futures::future::join_all(clients).await.concat();
            Measured {
                ops: 64 * u64::from(n),
                times,
                ..Measured::default()
            }
        }
        "burst" => {
            let exits: Vec<_> = (0..n)
                .map(|_| {
                    let (tx, exit) = oneshot::channel();
                    node.spawn(child("return").on_exit(tx)).expect("spawning");
                    exit
                })
                .collect();
            for exit in exits {
                let reason = exit.await.expect("an exit");
                assert!(reason.is_normal(), "{reason}");
            }
            Measured {
                ops: n.into(),
                ..Measured::default()
            }
        }
        "live" => live(node, n).await,
        "hibernated" => hibernated(node, n).await,
        other => panic!("no scenario {other}"),
    };
    if measured.wall.is_zero() {
        measured.wall = start.elapsed();
    }
    measured.cpu = cpu_time() - cpu;
    measured.times.sort();
    let percentile = |q: f64| {
        let last = measured.times.len().checked_sub(1)?;
        Some(measured.times[(last as f64 * q) as usize])
    };
    (measured.p50, measured.p99) = (percentile(0.5), percentile(0.99));
    measured
}

/// `n` processes blocked on their events; the time to spawn them and the memory each adds
/// (Pss), once all of them are waiting.
async fn live(node: &Arc<Node>, n: u32) -> Measured {
    give_back_freed();
    let (rss_before, maps_before) = (resident_bytes(), memory_maps());
    let start = Instant::now();
    let mut live = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (tx, exit) = oneshot::channel();
        let pid = node
            .spawn(child("wait-cancel").on_exit(tx))
            .expect("spawning");
        live.push((pid, exit));
    }
    let wall = start.elapsed();
    let rss = settled_resident_bytes().await;
    let bytes_per_process = rss.saturating_sub(rss_before) / u64::from(n.max(1));
    // `BENCH_SMAPS=FILE` keeps the memory map of this moment, to see where the memory is.
    if let Some(file) = std::env::var_os("BENCH_SMAPS") {
        let _ = std::fs::copy("/proc/self/smaps", file);
    }
    eprintln!(
        "  {n} live processes: {:.2} memory mappings each",
        memory_maps().saturating_sub(maps_before) as f64 / f64::from(n.max(1))
    );
    stop_all(node, live).await;
    Measured {
        ops: n.into(),
        wall,
        bytes_per_process: Some(bytes_per_process),
        ..Measured::default()
    }
}

/// How many of the hibernated processes are timed waking, one at a time.
const WAKE_SAMPLE: u32 = 1_000;

/// `n` processes that hibernate as they start (`counter`); the time to spawn them and the
/// memory each adds once all hibernate (Pss): the growth from half of them to all of them,
/// divided by the second half, so what the first spawns leave resident (the pool's slots
/// they touched, memory an earlier run freed) counts in neither. Then, timed inside a guest
/// as the other scenarios are (`wake`), a message to each of 1 000 other hibernated counters
/// until its answer.
async fn hibernated(node: &Arc<Node>, n: u32) -> Measured {
    let start = Instant::now();
    let half = n / 2;
    let mut sleeping = Vec::with_capacity(n as usize);
    let mut pss_at_half = 0;
    for i in 0..n {
        if i == half {
            pss_at_half = all_hibernated(node, sleeping.len()).await;
        }
        // While the pool is full of counters not yet hibernated, wait for them.
        let spawned = loop {
            let (tx, exit) = oneshot::channel();
            match node.spawn(child("counter").on_exit(tx)) {
                Ok(pid) => break (pid, exit),
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        };
        sleeping.push(spawned);
    }
    let wall = start.elapsed();
    let pss = all_hibernated(node, sleeping.len()).await;
    let bytes_per_process = pss.saturating_sub(pss_at_half) / u64::from((n - half).max(1));
    for (pid, _) in &sleeping {
        node.terminate(pid, ExitReason::Killed("done".into()));
    }
    for (_, exit) in sleeping {
        exit.await.expect("an exit");
    }
    let times = in_guest(node, "wake", WAKE_SAMPLE.min(n), 0).await;
    Measured {
        ops: n.into(),
        wall,
        times,
        bytes_per_process: Some(bytes_per_process),
        ..Measured::default()
    }
}

/// Waits until `count` processes hibernate, then for the memory to settle; its Pss.
async fn all_hibernated(node: &Node, count: usize) -> u64 {
    while node.hibernated_count() < count {
        assert!(
            node.process_count() >= count,
            "a counter ended before it hibernated (refused by the node's memory budget?)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    settled_resident_bytes().await
}

async fn stop_all(node: &Arc<Node>, live: Vec<(Pid, oneshot::Receiver<ExitReason>)>) {
    // Time enough for every process to hear its cancel and return, however many there are.
    let grace = Duration::from_secs(5 + live.len() as u64 / 10_000);
    for (pid, _) in &live {
        node.cancel(pid, "done".into(), grace);
    }
    for (_, exit) in live {
        let reason = exit.await.expect("an exit");
        assert_eq!(
            reason,
            ExitReason::Normal(payload::encode("done")),
            "{reason}"
        );
    }
}

fn child(mode: &str) -> SpawnOptions {
    SpawnOptions::new("app:child", HOST).args(vec![payload::encode(mode), payload::encode("")])
}

/// Resident memory (`resident_bytes`) once it stops growing: each new process touches its
/// memory as it starts, so then all of them wait. (A benchmark may poll; a test may not.)
pub async fn settled_resident_bytes() -> u64 {
    give_back_freed();
    let mut rss = resident_bytes();
    for _ in 0..500 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = resident_bytes();
        if now == rss {
            break;
        }
        rss = now;
    }
    rss
}

/// Hands the memory the allocator holds free back to the system, so what a scenario measures
/// is what its processes hold, not what an earlier scenario freed and this one reused (the
/// hibernated scenario after `live`, at 100 000, measured nothing at all).
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free memory to the system; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs the bench client in `mode`; what it returns: nanoseconds, one per operation or one
/// for the whole run.
pub async fn in_guest(node: &Arc<Node>, mode: &str, n: u32, m: u32) -> Vec<Duration> {
    let (tx, exit) = oneshot::channel();
    let args = vec![
        payload::encode(mode),
        payload::encode(&n),
        payload::encode(&m),
    ];
    node.spawn(SpawnOptions::new("app:client", HOST).args(args).on_exit(tx))
        .expect("spawning the client");
    let nanos: Vec<u64> = match exit.await.expect("an exit") {
        ExitReason::Normal(bytes) => payload::decode(&bytes).expect("a list of nanoseconds"),
        other => panic!("the {mode} client ended with {other}"),
    };
    nanos.into_iter().map(Duration::from_nanos).collect()
}

/// Starts the echo relay, and waits until it is ready (has registered `relay`).
pub async fn start_relay(node: &Arc<Node>) -> Services {
    let services = Services::start(node, None);
    services.running().await.expect("the relay starts");
    services
}

fn memory_maps() -> u64 {
    wasmhost::runtime::mappings().map_or(0, |(_, in_use)| in_use)
}

/// Proportional resident memory (Pss): unlike RSS, a page shared by many mappings (every
/// instance maps its component's memory image) counts once.
pub fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Runs the scenarios on Erlang (`escript` must be on the PATH); one result per scenario.
pub fn run_erlang(scenarios: &[Scenario]) -> Result<Vec<Measured>, String> {
    let script = repo().join("bench/erlang/suite.erl");
    // Erlang's default process limit is 262 144: room for every live process and more.
    let most = scenarios.iter().map(|s| s.n).max().unwrap_or(0);
    let limit = (u64::from(most) * 2).max(1 << 20);
    let flags = match std::env::var("ERL_FLAGS") {
        Ok(flags) => format!("+P {limit} {flags}"),
        Err(_) => format!("+P {limit}"),
    };
    let out = Command::new("escript")
        .arg(&script)
        .env("ERL_FLAGS", flags)
        .args(scenarios.iter().map(Scenario::erlang_arg))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run escript: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let results: Vec<Measured> = text
        .lines()
        .map(parse_erlang_line)
        .collect::<Result<_, _>>()?;
    if results.len() != scenarios.len() {
        return Err(format!(
            "{} results for {} scenarios:\n{text}",
            results.len(),
            scenarios.len()
        ));
    }
    Ok(results)
}

/// `scenario=ping-pong ops=100000 wall_ns=… cpu_ns=… p50_ns=… p99_ns=…`
fn parse_erlang_line(line: &str) -> Result<Measured, String> {
    let mut measured = Measured::default();
    for pair in line.split_whitespace() {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("bad line: {line}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("bad {key} in: {line}"))
        };
        match key {
            "scenario" => {}
            "ops" => measured.ops = number()?,
            "wall_ns" => measured.wall = Duration::from_nanos(number()?),
            "cpu_ns" => measured.cpu = Duration::from_nanos(number()?),
            "p50_ns" => measured.p50 = Some(Duration::from_nanos(number()?)),
            "p99_ns" => measured.p99 = Some(Duration::from_nanos(number()?)),
            "bytes_per_process" => measured.bytes_per_process = Some(number()?),
            _ => return Err(format!("unknown key {key} in: {line}")),
        }
    }
    Ok(measured)
}

/// Time from starting `wasmhost run app:cli` to its first prompt, with a warm compile cache.
pub fn first_prompt(binary: &Path) -> Result<Duration, String> {
    let app = repo().join("guests/echo");
    let once = || -> Result<Duration, String> {
        let start = Instant::now();
        let mut child = Command::new(binary)
            .arg("--app")
            .arg(&app)
            .args(["run", "app:cli"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = [0u8; 1];
        stdout
            .read_exact(&mut first)
            .map_err(|err| format!("no prompt: {err}"))?;
        let took = start.elapsed();
        drop(child.stdin.take());
        let _ = stdout.fill_buf();
        let _ = child.kill();
        let _ = child.wait();
        Ok(took)
    };
    once()?; // fills the compile cache
    let mut times: Vec<Duration> = (0..5).map(|_| once()).collect::<Result<_, _>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// The table: each scenario on both, with the ratio of their rates per CPU-second.
/// A time in microseconds, or `—`.
pub fn us(d: Option<Duration>) -> String {
    d.map_or("—".into(), |d| format!("{:.2} µs", d.as_secs_f64() * 1e6))
}

/// Operations per second, in k/s or M/s.
pub fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.1} k/s", r / 1e3)
    }
}

pub fn table(rows: &[(Scenario, Measured, Option<Measured>)]) -> String {
    let mut out = String::from(
        "| scenario | wasmhost p50 | p99 | rate | per CPU-s | Erlang p50 | p99 | rate | per CPU-s | wasmhost / Erlang |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (scenario, ours, theirs) in rows {
        let side = |m: &Measured| match m.bytes_per_process {
            Some(bytes) => format!(
                "{} | {} | {} spawned | {:.2} KiB each | ",
                us(m.p50),
                us(m.p99),
                rate(m.rate()),
                bytes as f64 / 1024.0
            ),
            None => format!(
                "{} | {} | {} | {} | ",
                us(m.p50),
                us(m.p99),
                rate(m.rate()),
                m.rate_per_cpu_second().map_or("—".into(), rate)
            ),
        };
        let ratio = match theirs {
            Some(theirs) => match (ours.bytes_per_process, theirs.bytes_per_process) {
                (Some(a), Some(b)) if b > 0 => format!("{:.1}× the memory", a as f64 / b as f64),
                _ => match (ours.rate_per_cpu_second(), theirs.rate_per_cpu_second()) {
                    (Some(a), Some(b)) => format!("{:.3}× per CPU-s", a / b),
                    _ => format!("{:.3}× per s", ours.rate() / theirs.rate()),
                },
            },
            None => "—".into(),
        };
        let theirs = theirs.as_ref().map_or("— | — | — | — | ".into(), side);
        out.push_str(&format!(
            "| {} | {}{}{} |\n",
            scenario.what,
            side(ours),
            theirs,
            ratio
        ));
    }
    out
}
