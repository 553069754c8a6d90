//! JavaScript guests: a folder with `app.js`, bundled with the wasmhost library and cbor-x
//! by rolldown, then made a component by componentize-js (StarlingMonkey).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasmhost::app::GuestLang;

use super::{kit, toolchain};

/// The npm packages the library's package-lock.json pins.
pub fn toolchain() -> Result<PathBuf> {
    toolchain::ensure(GuestLang::Js, &kit::js(), |dir| {
        // `npm install` takes the versions the lock pins (`npm ci` refuses this lock: npm
        // leaves cbor-x's optional per-platform native parts out of it, which we never use).
        toolchain::run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--ignore-scripts"])
                .args(["--loglevel=error"])
                .current_dir(dir),
        )
    })
}

/// Builds `source`'s `app.js` into the component `out`.
pub fn build(toolchain: &Path, source: &Path, out: &Path) -> Result<()> {
    let app = source.join("app.js");
    if !app.is_file() {
        bail!("{} has no app.js", source.display());
    }
    let work = tempfile::tempdir().context("a temporary folder for the bundle")?;
    let bundle = work.path().join("bundle.js");
    toolchain::run(
        Command::new("node")
            .args(["node_modules/.bin/rolldown", "-c", "rolldown.config.js"])
            .args(["--logLevel", "silent"])
            .env("GUEST", std::path::absolute(&app)?)
            .env("BUNDLE", &bundle)
            .current_dir(toolchain)
            // Its summary of the bundle, which says nothing to the user.
            .stdout(std::process::Stdio::null()),
    )?;
    // No HTTP and no fetch-event handler: a process imports only wasmhost and basic WASI.
    toolchain::run(
        Command::new("node")
            .arg("node_modules/.bin/componentize-js")
            .arg(&bundle)
            .args(["--wit", "wit", "--world-name", "wasmhost:abi/guest"])
            .args(["--disable", "http", "fetch-event", "-o"])
            .arg(std::path::absolute(out)?)
            .current_dir(toolchain),
    )
}
