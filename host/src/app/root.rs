//! The app root: the folder holding `wasmhost.toml`, found by walking up from where the
//! user stands (as cargo finds `Cargo.toml`). `wasmhost init` writes the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use toml::Spanned;

use super::limits::{Size, Time, TomlLimits, read_one};
use super::model::{ClusterSettings, NodeSettings};

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
    /// How the node is sized; read into [`AppRoot::node`].
    #[serde(default)]
    node: NodeSection,
    /// How the node joins a cluster; read into [`AppRoot::cluster`].
    #[serde(default)]
    cluster: ClusterSection,
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

/// How `wasmhost build` builds the app's components: a command of the app's own, and the
/// guests wasmhost builds itself (`[[build.guest]]`), in that order.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// A shell command run in the app root.
    pub command: Option<String>,
    /// The guests wasmhost builds with toolchains of its own.
    #[serde(default)]
    pub guest: Vec<GuestBuild>,
}

/// `[[build.guest]]`: a guest's language and source folder (relative to the root), and the
/// component it becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestBuild {
    pub lang: GuestLang,
    /// The guest's folder: a cargo package, `app.py`, `app.js`, or the `*.c` files.
    pub source: PathBuf,
    /// Where the component is written; default `build/<source folder's name>.wasm`.
    pub output: Option<PathBuf>,
    /// More flags for clang (C guests only): `-Werror`, `-DNAME=VALUE`.
    #[serde(default)]
    pub cflags: Vec<String>,
}

impl GuestBuild {
    /// The component's path, relative to the root.
    pub fn output(&self) -> PathBuf {
        self.output.clone().unwrap_or_else(|| {
            let name = self.source.file_name().unwrap_or("guest".as_ref());
            Path::new("build").join(name).with_extension("wasm")
        })
    }
}

/// The languages `wasmhost build` builds guests of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GuestLang {
    Rust,
    Python,
    Js,
    C,
}

impl GuestLang {
    /// The name `[[build.guest]] lang` and `init --lang` take.
    pub fn name(self) -> &'static str {
        match self {
            GuestLang::Rust => "rust",
            GuestLang::Python => "python",
            GuestLang::Js => "js",
            GuestLang::C => "c",
        }
    }
}

/// `[node]`: sizes as written (`"64MiB"`, `"10ms"`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    max_processes: Option<u32>,
    reserved_processes: Option<u32>,
    max_memory: Option<Spanned<String>>,
    memory_budget: Option<Spanned<String>>,
    epoch_tick: Option<Spanned<String>>,
    workers: Option<usize>,
    zero_stacks: Option<bool>,
    /// `text` or `json`.
    log_format: Option<crate::logs::LogFormat>,
    /// `[node.limits]`: defaults for every process of the app.
    limits: Option<TomlLimits>,
}

/// `[cluster]`: durations as written (`"1s"`); paths relative to the app root.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSection {
    url: Option<String>,
    node: Option<String>,
    heartbeat: Option<Spanned<String>>,
    down_after: Option<Spanned<String>>,
    services: Option<Vec<String>>,
    credentials: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
}

/// A located app: its root folder, its root file, and the node and cluster settings read
/// from it.
#[derive(Debug, Clone)]
pub struct AppRoot {
    pub dir: PathBuf,
    pub file: RootFile,
    pub node: NodeSettings,
    pub cluster: ClusterSettings,
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
        AppRoot::from_text(dir, &text)
    }

    /// The app at `dir` whose root file says `text`.
    pub fn from_text(dir: PathBuf, text: &str) -> Result<AppRoot> {
        let path = dir.join(ROOT_FILE);
        let file: RootFile = toml::from_str(text).map_err(|err| {
            let at = err.span().map(|span| line_of(text, span.start));
            anyhow::anyhow!("{}: {}", located(&path, at), err.message().trim_end())
        })?;
        let problem = |(message, at, hint): NodeProblem| {
            let at = at.map(|offset| line_of(text, offset));
            anyhow::anyhow!("{}: {message}\n  hint: {hint}", located(&path, at))
        };
        let node = node_settings(&file.node).map_err(problem)?;
        let cluster = cluster_settings(&file.cluster, &dir).map_err(problem)?;
        Ok(AppRoot {
            dir,
            file,
            node,
            cluster,
        })
    }

    /// The folder with the registry files.
    pub fn registry_dir(&self) -> PathBuf {
        self.dir.join(&self.file.app.registry)
    }
}

/// A problem in `[node]`: message, byte offset, hint.
type NodeProblem = (String, Option<usize>, &'static str);

/// Reads `[node]` into settings, parsing its sizes and durations.
fn node_settings(section: &NodeSection) -> Result<NodeSettings, NodeProblem> {
    let mut problems = Vec::new();
    let max_memory =
        read_one::<Size, _>("max_memory", "", &section.max_memory, None, &mut problems);
    let memory_budget = read_one::<Size, _>(
        "memory_budget",
        "",
        &section.memory_budget,
        None,
        &mut problems,
    );
    let epoch_tick =
        read_one::<Time, _>("epoch_tick", "", &section.epoch_tick, None, &mut problems);
    let limits = section
        .limits
        .as_ref()
        .map(|limits| limits.read(&mut problems))
        .unwrap_or_default();
    if let Some(problem) = problems.into_iter().next() {
        return Err((problem.message, Some(problem.at), problem.hint));
    }
    Ok(NodeSettings {
        max_processes: section.max_processes,
        reserved_processes: section.reserved_processes,
        max_memory,
        memory_budget,
        epoch_tick,
        workers: section.workers,
        zero_stacks: section.zero_stacks,
        log_format: section.log_format,
        limits,
    })
}

/// Reads `[cluster]`, parsing its durations and placing its paths in the app root.
fn cluster_settings(section: &ClusterSection, dir: &Path) -> Result<ClusterSettings, NodeProblem> {
    let mut problems = Vec::new();
    let heartbeat = read_one::<Time, _>("heartbeat", "", &section.heartbeat, None, &mut problems);
    let down_after =
        read_one::<Time, _>("down_after", "", &section.down_after, None, &mut problems);
    if let Some(problem) = problems.into_iter().next() {
        return Err((problem.message, Some(problem.at), problem.hint));
    }
    Ok(ClusterSettings {
        url: section.url.clone(),
        node: section.node.clone(),
        heartbeat,
        down_after,
        services: section.services.clone(),
        credentials: section.credentials.as_ref().map(|path| dir.join(path)),
        tls_ca: section.tls_ca.as_ref().map(|path| dir.join(path)),
    })
}

/// `path:line`, or `path` when the line is not known.
fn located(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}:{line}", path.display()),
        None => path.display().to_string(),
    }
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
