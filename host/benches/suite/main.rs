//! The benchmark suite: every scenario on wasmhost and on Erlang/OTP, on this machine, in one
//! go, printed as one table. Run it with `bench/run` (which installs Erlang if it is missing);
//! `bench/run ping-pong flood` runs only the scenarios whose names contain a word.
//!
//! Rates per CPU-second and p50 latencies are the stable figures on a shared, noisy machine;
//! wall-clock rates are printed too.

#[path = "../../../tests/it/common/mod.rs"]
mod common;
mod scenarios;

use scenarios::{FULL, Measured, Scenario};

fn main() {
    common::build_guests();
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<Scenario> = FULL
        .iter()
        .copied()
        .filter(|s| words.is_empty() || words.iter().any(|w| s.name.contains(w.as_str())))
        .map(fit_live_processes)
        .map(hibernated_count)
        .collect();

    // Processes alive at once: the live, burst and ring scenarios hold `n`; the others a few.
    let pool = chosen
        .iter()
        .filter(|s| matches!(s.name, "live" | "burst" | "ring"))
        .map(|s| s.n)
        .max()
        .unwrap_or(0)
        + 1_000;
    // The scenarios run on one tokio thread, as `wasmhost run`'s services do; processes run on
    // the node's own threads (`BENCH_WORKERS=1`: one, compare `ERL_FLAGS="+S 1"` for Erlang).
    let hibernated = chosen
        .iter()
        .filter(|s| s.name == "hibernated")
        .map(|s| s.n)
        .max()
        .unwrap_or(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let ours = runtime
        .block_on(runtime.spawn({
            let chosen = chosen.clone();
            async move {
                let node = scenarios::bench_node(pool, hibernated);
                let relay = scenarios::start_relay(&node).await;
                let mut results = Vec::new();
                for scenario in chosen {
                    eprintln!("wasmhost: {} …", scenario.what);
                    // A tenth first, to warm pool slots and caches.
                    let warmup = Scenario {
                        n: (scenario.n / 10).max(1),
                        ..scenario
                    };
                    scenarios::run_wasmhost(&node, warmup).await;
                    results.push(scenarios::run_wasmhost(&node, scenario).await);
                }
                relay.stop().await;
                results
            }
        }))
        .expect("the wasmhost scenarios ran");
    runtime.shutdown_background();

    eprintln!("Erlang: the same scenarios …");
    let theirs: Vec<Option<Measured>> = match scenarios::run_erlang(&chosen) {
        Ok(results) => results.into_iter().map(Some).collect(),
        Err(err) => {
            eprintln!("Erlang did not run: {err}");
            vec![None; chosen.len()]
        }
    };

    let rows: Vec<_> = chosen
        .into_iter()
        .zip(ours)
        .zip(theirs)
        .map(|((s, o), t)| (s, o, t))
        .collect();
    println!("{}", scenarios::table(&rows));
    if words.is_empty() || words.iter().any(|w| "first-prompt".contains(w.as_str())) {
        match scenarios::first_prompt(std::path::Path::new(env!("CARGO_BIN_EXE_wasmhost"))) {
            Ok(took) => println!(
                "`wasmhost run app:cli` to its first prompt (compile cache warm), median of 5: {:.0} ms",
                took.as_secs_f64() * 1e3
            ),
            Err(err) => println!("first prompt not measured: {err}"),
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n{cores} cores; wasmhost {} (bench profile); Erlang: `escript bench/erlang/suite.erl`. \
         `per CPU-s`: operations per second of CPU time of the whole runtime.",
        env!("CARGO_PKG_VERSION")
    );
}

/// The `live` scenario's count, lowered to what `vm.max_map_count` allows if it cannot be
/// raised (raising it needs root; the suite says what it did).
/// `BENCH_LIVE=N` asks for another count (to see how far a machine goes).
/// `BENCH_HIBERNATED=N` parks N processes in the hibernated scenario (they hold no instance,
/// so no memory mapping: the machine's memory is their only bound).
fn hibernated_count(scenario: Scenario) -> Scenario {
    match std::env::var("BENCH_HIBERNATED")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) if scenario.name == "hibernated" => Scenario { n, ..scenario },
        _ => scenario,
    }
}

fn fit_live_processes(scenario: Scenario) -> Scenario {
    if scenario.name != "live" {
        return scenario;
    }
    let scenario = match std::env::var("BENCH_LIVE")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(n) => Scenario { n, ..scenario },
        None => scenario,
    };
    let Some((allowed, in_use)) = wasmhost::runtime::mappings() else {
        return scenario;
    };
    // The suite's pool: the live processes and a thousand more (`main`).
    let needed = wasmhost::runtime::mappings_needed(scenario.n + 1_000, in_use);
    if allowed >= needed {
        return scenario;
    }
    let path = "/proc/sys/vm/max_map_count";
    match std::fs::write(path, needed.to_string()) {
        Ok(()) => {
            eprintln!("raised vm.max_map_count from {allowed} to {needed} (running as root)");
            scenario
        }
        Err(err) => {
            let fit = wasmhost::runtime::processes_that_fit(allowed, in_use).saturating_sub(1_000);
            let fit = u32::try_from(fit).unwrap_or(u32::MAX);
            eprintln!(
                "vm.max_map_count is {allowed} and cannot be raised ({err}): the live scenario \
                 runs {fit} processes, not {}; `sudo sysctl -w vm.max_map_count={needed}` allows all",
                scenario.n
            );
            Scenario {
                n: fit.max(1),
                ..scenario
            }
        }
    }
}
