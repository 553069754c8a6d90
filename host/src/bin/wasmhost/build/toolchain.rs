//! Where the guest toolchains live, and how one is installed: each language's toolchain is a
//! folder named by the hash of everything wasmhost puts in it (its guest library, the WIT,
//! the pinned tool versions), so a wasmhost with another library or pin installs beside it
//! and never builds with a stale one. Installs are serialized by a lock file and marked
//! complete only when they finished, so an interrupted one starts over.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasmhost::app::GuestLang;
use wasmhost::private_dir;

/// A file wasmhost writes into a toolchain folder: its path there and its bytes.
pub struct KitFile {
    pub path: PathBuf,
    pub bytes: &'static [u8],
}

/// The toolchains' folder: `$WASMHOST_TOOLCHAINS`, else `$XDG_DATA_HOME/wasmhost/toolchains`,
/// else `~/.local/share/wasmhost/toolchains`. What is in it runs as this user, so, like the
/// compile cache, it must be a folder no one else could have written (`private_dir`).
pub fn root() -> Result<PathBuf> {
    let dir = match std::env::var_os("WASMHOST_TOOLCHAINS").filter(|value| !value.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match private_dir::user_dir("XDG_DATA_HOME", ".local/share") {
            Some(dir) => dir.join("toolchains"),
            None => bail!("no folder for the guest toolchains: set WASMHOST_TOOLCHAINS or HOME"),
        },
    };
    let private = private_dir::private(&dir)
        .map_err(|why| anyhow::anyhow!("the toolchains folder {}: {why}", dir.display()))?;
    private_dir::create(&private).with_context(|| format!("creating {}", private.display()))?;
    Ok(private)
}

/// The hash naming a toolchain made of `kit`: 12 hex digits of its BLAKE3.
pub fn kit_hash(lang: GuestLang, kit: &[KitFile]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(lang.name().as_bytes());
    for file in kit {
        hasher.update(file.path.to_string_lossy().as_bytes());
        hasher.update(&(file.bytes.len() as u64).to_le_bytes());
        hasher.update(file.bytes);
    }
    hasher.finalize().to_hex()[..12].to_string()
}

/// The toolchain of `lang` made of `kit`, installed by `install` (run in the new folder
/// after the kit is written) unless an earlier install completed.
pub fn ensure(
    lang: GuestLang,
    kit: &[KitFile],
    install: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = root()?;
    let dir = root.join(format!("{}-{}", lang.name(), kit_hash(lang, kit)));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    let lock_path = root.join(format!("{}.lock", lang.name()));
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    // Another build may have installed it while this one waited.
    if done.exists() {
        return Ok(dir);
    }
    eprintln!(
        "installing the {} guest toolchain into {} (once)",
        lang.name(),
        dir.display()
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the unfinished {}", dir.display()))?;
    }
    for file in kit {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, file.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    install(&dir).with_context(|| format!("installing the {} guest toolchain", lang.name()))?;
    std::fs::write(&done, b"").with_context(|| format!("writing {}", done.display()))?;
    Ok(dir)
}

/// Runs `command`, its output on ours; an error naming it if it cannot start or fails.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("running {shown} (is it installed?)"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}
