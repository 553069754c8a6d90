//! A guest's inputs, hashed: every file of its source folder (but what builds leave there:
//! `target/`, `node_modules/`, `__pycache__/`, hidden entries) and the toolchain it is built
//! with. A component whose recorded hash is the inputs' is up to date, so an unchanged guest
//! is never rebuilt (componentize-py and componentize-js do not build the same bytes twice,
//! and each new component is a new entry in the compile cache).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The folders a build leaves in its source.
const SKIPPED: &[&str] = &["target", "node_modules", "__pycache__"];

/// The hash of `source`'s files and of what they are `built_with` (the toolchain folder's
/// name, the flags).
pub fn hash(source: &Path, built_with: &str) -> Result<String> {
    let mut files = Vec::new();
    collect(source, source, &mut files)?;
    files.sort();
    let mut hasher = blake3::Hasher::new();
    hasher.update(built_with.as_bytes());
    for relative in files {
        let path = source.join(&relative);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
            continue;
        }
        let path = entry.path();
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", path.display()))?;
        // A linked file counts as the file it names; a linked folder is not followed (it
        // may lead back up).
        let is_file = kind.is_file() || (kind.is_symlink() && path.is_file());
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if is_file {
            files.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

/// Where the hash of the inputs `output` was built from is kept: beside it.
pub fn record_of(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".inputs");
    output.with_file_name(name)
}

/// Whether `output` exists and was built from inputs of this `hash`.
pub fn up_to_date(output: &Path, hash: &str) -> bool {
    output.is_file() && std::fs::read_to_string(record_of(output)).is_ok_and(|kept| kept == hash)
}
