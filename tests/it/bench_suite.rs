//! The benchmark suite (`bench/run`), each scenario run once with tiny counts on wasmhost and
//! on Erlang: they work and report what they did. Nothing here is timed.

use crate::common;

use crate::measure;
use crate::scenarios::{self, FULL, Scenario};

/// Tiny counts: each scenario runs, none is measured.
fn smoke(scenario: Scenario) -> Scenario {
    let (n, m) = match scenario.name {
        "ring" => (5, 3),
        "echo-64" => (2, 0),
        _ => (20, 0),
    };
    Scenario { n, m, ..scenario }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_on_wasmhost() {
    common::build_guests();
    let node = scenarios::bench_node(200, 20);
    let relay = scenarios::start_relay(&node).await;
    let mut rows = Vec::new();
    for scenario in FULL.iter().copied().map(smoke) {
        let measured = scenarios::run_wasmhost(&node, scenario).await;
        let expected_ops = match scenario.name {
            "ring" => 15,
            "echo-64" => 128,
            _ => 20,
        };
        assert_eq!(measured.ops, expected_ops, "{}", scenario.name);
        match scenario.name {
            // Timed one by one, inside the guest.
            "spawn-monitor" | "ping-pong" | "echo" | "echo-64" => {
                assert_eq!(
                    measured.times.len() as u64,
                    expected_ops,
                    "{}",
                    scenario.name
                );
                assert!(
                    measured.times.iter().all(|t| !t.is_zero()),
                    "{}",
                    scenario.name
                );
            }
            "live" => assert!(measured.bytes_per_process.is_some()),
            // Every one of the 20 is woken and timed.
            "hibernated" => {
                assert!(measured.bytes_per_process.is_some());
                assert_eq!(measured.times.len(), 20);
            }
            _ => assert!(measured.times.is_empty(), "{}", scenario.name),
        }
        assert!(!measured.wall.is_zero(), "{}", scenario.name);
        rows.push((scenario, measured, None));
    }
    relay.stop().await;
    let table = scenarios::table(&rows);
    for scenario in FULL {
        assert!(table.contains(scenario.what), "{table}");
    }
}

#[test]
fn every_scenario_runs_on_erlang() {
    let chosen: Vec<Scenario> = FULL.iter().copied().map(smoke).collect();
    let results = scenarios::run_erlang(&chosen).unwrap_or_else(|err| {
        panic!("{err}\n(scripts/test.sh installs Erlang: scripts/install-erlang.sh)")
    });
    for (scenario, measured) in chosen.iter().zip(&results) {
        let expected_ops = u64::from(if scenario.name == "ring" {
            scenario.n * scenario.m
        } else if scenario.name == "echo-64" {
            64 * scenario.n
        } else {
            scenario.n
        });
        assert_eq!(measured.ops, expected_ops, "{}", scenario.name);
        assert!(!measured.wall.is_zero(), "{}", scenario.name);
    }
    for (scenario, measured) in chosen.iter().zip(&results) {
        // Measured, but with 20 processes the VM's own allocations drown them out.
        if matches!(scenario.name, "live" | "hibernated") {
            assert!(
                measured.bytes_per_process.is_some(),
                "{}: {measured:?}",
                scenario.name
            );
        }
    }
    let hibernated = results.last().expect("the hibernated scenario");
    assert!(
        hibernated.p50.is_some(),
        "its wake-ups are timed: {hibernated:?}"
    );
}

#[test]
fn wasmhost_run_reaches_its_first_prompt() {
    common::build_guests();
    let took = scenarios::first_prompt(std::path::Path::new(env!("CARGO_BIN_EXE_wasmhost")))
        .expect("the echo client prompts");
    assert!(!took.is_zero());
}

/// The languages benchmark, with tiny counts: each language's processes spawn, live, are
/// cancelled and answer echoes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_is_measured() {
    common::build_guests();
    let counts = measure::Counts {
        spawns: 3,
        live: 3,
        echoes: 3,
        cold: false,
    };
    let mut rows = Vec::new();
    for &language in measure::LANGUAGES {
        let row = measure::measure(language, counts).await;
        assert!(row.size > 0, "{row:?}");
        assert!(
            !row.spawn_p50.is_zero() && !row.echo_p50.is_zero(),
            "{row:?}"
        );
        rows.push(row);
    }
    let table = measure::table(&rows);
    assert!(
        table.contains("| Rust |") && table.contains("| Python |"),
        "{table}"
    );
}
