//! `wasmhost check`: loads the registry and builds the node (compiling and checking every
//! component) without running anything, then shows what was found (`CheckReport`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use wasmhost::app::AppRoot;
use wasmhost::check_report::CheckReport;

use crate::flags::NodeFlags;
use crate::start;

pub fn check(app: Option<&Path>, flags: &NodeFlags) -> Result<ExitCode> {
    let root = AppRoot::locate(app)?;
    let Some(app) = start::load(&root) else {
        return Ok(ExitCode::FAILURE);
    };
    // Every component must be there for a check to pass.
    let all: Vec<&str> = app.unbuilt.keys().map(String::as_str).collect();
    if !start::built(&app, &all) {
        return Ok(ExitCode::FAILURE);
    }
    let Some(node) = start::node(app, flags.config(&root), None)? else {
        return Ok(ExitCode::FAILURE);
    };
    print!("{}", CheckReport::of(&node));
    Ok(ExitCode::SUCCESS)
}
