//! `wasmhost ps`: asks the app's running node for a snapshot and shows it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wasmhost::app::AppRoot;

pub fn ps(app: Option<&Path>, node: Option<&str>, json: bool) -> Result<ExitCode> {
    let root = AppRoot::locate(app)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let snapshot = runtime.block_on(wasmhost::control::ps(&root.dir, node))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        print!("{}", snapshot.render());
    }
    Ok(ExitCode::SUCCESS)
}
