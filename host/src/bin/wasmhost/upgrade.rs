//! `wasmhost upgrade`: asks the app's running node to move an entry's processes to its
//! component as it is now, and shows what each did.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmhost::app::AppRoot;

/// Exit 0 if the entry now runs its new component, 1 if the upgrade was refused or rolled
/// back.
pub fn upgrade(
    app: Option<&Path>,
    node: Option<&str>,
    entry: &str,
    grace: Duration,
    json: bool,
) -> Result<ExitCode> {
    let root = AppRoot::locate(app)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if !json {
        eprintln!(
            "upgrading {entry} (each process has {} to hand over)…",
            humantime::format_duration(grace)
        );
    }
    let answer = runtime.block_on(wasmhost::control::upgrade(&root.dir, node, entry, grace))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", answer.render());
    }
    Ok(match answer.rolled_back {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}
