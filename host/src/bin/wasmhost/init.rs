//! `wasmhost init`: makes a folder a wasmhost app.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

pub fn init(dir: Option<PathBuf>) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let path = wasmhost::app::init(&dir)?;
    println!("created {}", path.display());
    Ok(ExitCode::SUCCESS)
}
