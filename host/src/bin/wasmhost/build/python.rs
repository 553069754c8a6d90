//! Python guests: a folder with `app.py`, made a component by componentize-py with the
//! wasmhost library and the pure-Python cbor2 (a C extension cannot load in a component).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};
use wasmhost::app::GuestLang;

use super::{kit, toolchain};

/// A virtual environment with the pinned componentize-py, and the libraries guests bundle.
pub fn toolchain() -> Result<PathBuf> {
    toolchain::ensure(GuestLang::Python, &kit::python(), |dir| {
        toolchain::run(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join("venv")),
        )?;
        let pip = dir.join("venv/bin/pip");
        let quiet = ["install", "--quiet", "--disable-pip-version-check"];
        toolchain::run(
            Command::new(&pip)
                .args(quiet)
                .arg("-r")
                .arg(dir.join("toolchain.txt")),
        )?;
        toolchain::run(
            Command::new(&pip)
                .args(quiet)
                .env("CBOR2_BUILD_C_EXTENSION", "0")
                .args(["--no-binary", "cbor2", "--target"])
                .arg(dir.join("vendor"))
                .arg("-r")
                .arg(dir.join("requirements.txt")),
        )
    })
}

/// Builds `source`'s `app.py` into the component `out`.
pub fn build(toolchain: &Path, source: &Path, out: &Path) -> Result<()> {
    if !source.join("app.py").is_file() {
        bail!("{} has no app.py", source.display());
    }
    toolchain::run(
        Command::new(toolchain.join("venv/bin/componentize-py"))
            .arg("-q")
            .arg("-d")
            .arg(toolchain.join("wit"))
            .args(["-w", "wasmhost:abi/guest", "componentize"])
            .arg("-p")
            .arg(toolchain.join("lib"))
            .arg("-p")
            .arg(toolchain.join("vendor"))
            .arg("-p")
            .arg(source)
            .arg("app")
            .arg("-o")
            .arg(out),
    )
}
