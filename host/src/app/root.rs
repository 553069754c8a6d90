//! The app root: the folder holding `wasmhost.toml`, found by walking up from where the
//! user stands (as cargo finds `Cargo.toml`). `wasmhost init` writes the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The name of the root file.
pub const ROOT_FILE: &str = "wasmhost.toml";

/// The root file's contents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootFile {
    #[serde(default)]
    pub app: AppSection,
    #[serde(default)]
    pub build: Option<BuildSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// The folder with the registry's `*.yaml` files, relative to the root.
    #[serde(default = "default_registry")]
    pub registry: PathBuf,
}

impl Default for AppSection {
    fn default() -> Self {
        AppSection {
            registry: default_registry(),
        }
    }
}

fn default_registry() -> PathBuf {
    PathBuf::from("src")
}

/// How `wasmhost build` builds the app's components.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// A shell command run in the app root.
    pub command: String,
}

/// A located app: its root folder and root file.
#[derive(Debug, Clone)]
pub struct AppRoot {
    pub dir: PathBuf,
    pub file: RootFile,
}

impl AppRoot {
    /// Finds the app: `dir` itself if given (it must hold the root file), else the nearest
    /// folder at or above the current one that holds it.
    pub fn locate(dir: Option<&Path>) -> Result<AppRoot> {
        let dir = match dir {
            Some(dir) => {
                if !dir.join(ROOT_FILE).is_file() {
                    bail!(
                        "{} has no {ROOT_FILE}\n  hint: run `wasmhost init {}` to make it an app",
                        dir.display(),
                        dir.display()
                    );
                }
                dir.to_path_buf()
            }
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                match cwd.ancestors().find(|d| d.join(ROOT_FILE).is_file()) {
                    Some(dir) => dir.to_path_buf(),
                    None => bail!(
                        "no {ROOT_FILE} in {} or any folder above it\n  hint: pass --app DIR, or run `wasmhost init` to start an app here",
                        cwd.display()
                    ),
                }
            }
        };
        let path = dir.join(ROOT_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let file: RootFile = toml::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{}: {}", path.display(), err.message()))?;
        Ok(AppRoot { dir, file })
    }

    /// The folder with the registry files.
    pub fn registry_dir(&self) -> PathBuf {
        self.dir.join(&self.file.app.registry)
    }
}

/// Writes a root file in `dir` (and the registry folder), unless one is there already.
pub fn init(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(ROOT_FILE);
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        &path,
        "# The root of a wasmhost app: `wasmhost` looks for this file in the current folder and\n\
         # the folders above it.\n\
         [app]\n\
         # The folder with the registry (*.yaml).\n\
         registry = \"src\"\n\n\
         [build]\n\
         # What `wasmhost build` runs, in this folder.\n\
         command = \"cargo build --release --target wasm32-wasip2\"\n",
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
