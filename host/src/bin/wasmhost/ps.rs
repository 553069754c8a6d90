//! `wasmhost ps`: asks the app's running node for a snapshot and shows it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use wasmhost::app::AppRoot;

/// `names` (services, supervisors or entries) keep only those and what descends from them;
/// each is resolved against the app's registry first, so a mistyped one is an error.
pub fn ps(
    app: Option<&Path>,
    node: Option<&str>,
    names: &[String],
    json: bool,
) -> Result<ExitCode> {
    let root = AppRoot::locate(app)?;
    let only = match names.is_empty() {
        true => None,
        false => {
            let Some(app) = crate::start::load(&root) else {
                return Ok(ExitCode::FAILURE);
            };
            Some(wasmhost::lifecycle::resolve_names(&app, names)?)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut snapshot = runtime.block_on(wasmhost::control::ps(&root.dir, node))?;
    if let Some(names) = &only {
        snapshot = snapshot.only(names);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&snapshot)?);
    } else {
        print!("{}", snapshot.render());
    }
    Ok(ExitCode::SUCCESS)
}
