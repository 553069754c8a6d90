//! `wasmhost build`: runs the app's build command, in the app's folder.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wasmhost::app::{self, AppRoot};

pub fn build(app: Option<&Path>) -> Result<ExitCode> {
    build_app(&AppRoot::locate(app)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `[build] command`; an error if there is none or it fails.
pub fn build_app(root: &AppRoot) -> Result<()> {
    let Some(build) = &root.file.build else {
        bail!(
            "{} has no [build] command\n  hint: add [build] command = \"cargo build --release --target wasm32-wasip2\"",
            root.dir.join(app::ROOT_FILE).display()
        );
    };
    eprintln!("building {}: {}", root.dir.display(), build.command);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&root.dir)
        .status()
        .with_context(|| format!("running `{}`", build.command))?;
    if !status.success() {
        bail!("the build command `{}` failed ({status})", build.command);
    }
    Ok(())
}
