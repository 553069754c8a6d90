//! What a process costs in each guest language, side by side: `bench/run languages` (or
//! `cargo bench -p wasmhost --bench languages`). Prints one table.

#[path = "../../../tests/it/common/mod.rs"]
mod common;
mod measure;
#[path = "../suite/scenarios.rs"]
#[allow(dead_code)]
mod scenarios;

use measure::{Counts, LANGUAGES};

fn main() {
    common::build_guests();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let counts = Counts {
        spawns: 500,
        live: 200,
        echoes: 500,
        cold: true,
    };
    let rows: Vec<_> = LANGUAGES
        .iter()
        .map(|&language| {
            eprintln!("measuring {} …", language.name);
            runtime.block_on(runtime.spawn(measure::measure(language, counts)))
        })
        .collect::<Result<_, _>>()
        .expect("measuring");
    println!("{}", measure::table(&rows));
}
