//! Rust guests: a cargo package with a `cdylib` that depends on `wasmhost-guest` by version;
//! the build patches in the SDK wasmhost installed, so the guest speaks this host's ABI.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use wasmhost::app::GuestLang;

use super::{kit, toolchain};

const TARGET: &str = "wasm32-wasip2";

/// The SDK's sources, installed.
pub fn toolchain() -> Result<PathBuf> {
    toolchain::ensure(GuestLang::Rust, &kit::rust(), |_| Ok(()))
}

/// Builds the package in `source` into the component `out`.
pub fn build(toolchain: &Path, source: &Path, out: &Path) -> Result<()> {
    let manifest = source.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} is not a cargo package (no Cargo.toml)",
            source.display()
        );
    }
    add_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let sdk = toolchain.join("guest-sdk");
    let mut child = Command::new(&cargo)
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--config")
        .arg(format!(
            "patch.crates-io.wasmhost-guest.path={}",
            toml_string(&sdk)
        ))
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo (is Rust installed?)")?;
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let mut built = None;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.context("reading cargo's output")?;
            if let Some(wasm) = cdylib_of(&line, &manifest) {
                built = Some(wasm);
            }
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build of {} failed ({status})", manifest.display());
    }
    let Some(wasm) = built else {
        bail!(
            "{} builds no WebAssembly library\n  hint: add [lib] crate-type = [\"cdylib\"]",
            manifest.display()
        );
    };
    std::fs::copy(&wasm, out)
        .with_context(|| format!("copying {} to {}", wasm.display(), out.display()))?;
    Ok(())
}

/// The `.wasm` a line of cargo's JSON output says the package of `manifest` built as a
/// `cdylib`, if it says so.
fn cdylib_of(line: &str, manifest: &Path) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    // Compared as real paths: cargo names it as it found it, maybe through a symlink.
    let built = Path::new(message["manifest_path"].as_str()?);
    if built.canonicalize().ok()? != manifest {
        return None;
    }
    let kinds = message["target"]["kind"].as_array()?;
    if !kinds.iter().any(|kind| kind == "cdylib") {
        return None;
    }
    message["filenames"]
        .as_array()?
        .iter()
        .filter_map(|name| name.as_str())
        .find(|name| name.ends_with(".wasm"))
        .map(PathBuf::from)
}

/// Installs the target with rustup if it is missing (and rustup is there to ask).
fn add_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output();
    match installed {
        Ok(output) if output.status.success() => {
            if String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|line| line.trim() == TARGET)
            {
                return Ok(());
            }
            eprintln!("adding the Rust target {TARGET} (rustup target add {TARGET})");
            toolchain::run(Command::new("rustup").args(["target", "add", TARGET]))
        }
        // No rustup: cargo says what is missing, if anything is.
        _ => Ok(()),
    }
}

/// A path as a TOML string for `cargo --config`.
fn toml_string(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}
