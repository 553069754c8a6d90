//! `c-guest-tools`: the C guests' toolchain as a command, for `scripts/build-c-guests.sh`.
//!
//!     c-guest-tools bindgen WIT_DIR WORLD OUT_DIR
//!     c-guest-tools component CORE.wasm OUT.wasm

use std::path::Path;

use anyhow::{Result, bail};
use c_guest_tools::{bindgen, component};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bindgen", wit, world, out] => bindgen(Path::new(wit), world, Path::new(out)),
        ["component", core, out] => component(Path::new(core), Path::new(out)),
        _ => bail!(
            "usage: c-guest-tools bindgen WIT_DIR WORLD OUT_DIR | c-guest-tools component CORE.wasm OUT.wasm"
        ),
    }
}
