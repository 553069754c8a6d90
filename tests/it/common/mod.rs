//! The fixtures of the end-to-end tests (and of the benchmarks, which include this file):
//! the guests built once per binary (Rust for wasm32-wasip2, cargo's lock serializing builds
//! across binaries; Python, JavaScript and C by `wasmhost build`, whose toolchain installs
//! take a lock), so no test depends on a hand-run build step; an app from a registry text, where
//! `{artifacts}`, `{python}`, `{js}` and `{c}` stand for the built guests' folders; a node
//! over an app; one async runtime; a process run to its exit.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmhost::app::{self, App, AppRoot};
use wasmhost::runtime::{ExitReason, Node, NodeConfig, SpawnOptions};

/// How long a process run to its exit may take: a bound, not a measure.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate lives in the repository")
        .to_path_buf()
}

/// The folder where the built guest components are.
pub fn guest_artifacts() -> PathBuf {
    build_guests();
    repo().join("guests/target/wasm32-wasip2/release")
}

/// Builds every guest component (once per test binary).
pub fn build_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(repo().join("guests"))
            .env_remove("CARGO_TARGET_DIR")
            // Built as a user builds them, not linted as the test build is (scripts/test.sh).
            .env_remove("RUSTC_WORKSPACE_WRAPPER")
            .env_remove("CLIPPY_ARGS")
            .output()
            .expect("running cargo to build the guests");
        assert!(
            output.status.success(),
            "building the guests failed (is the target installed? `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The Python, JavaScript and C guests, by `wasmhost build` (guests/wasmhost.toml),
        // with toolchains it installs once.
        let output = wasmhost()
            .arg("--app")
            .arg(repo().join("guests"))
            .arg("build")
            .env("WASMHOST_TOOLCHAINS", toolchains())
            .output()
            .expect("running wasmhost build");
        assert!(
            output.status.success(),
            "building the Python, JavaScript and C guests failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Compile every component of the echo app into the compile cache now, once: a
        // Python component takes seconds to compile, which tests started together would
        // otherwise each spend (and time out on) at once.
        let output = wasmhost()
            .arg("--app")
            .arg(repo().join("guests/echo"))
            .arg("check")
            .output()
            .expect("running wasmhost check");
        assert!(
            output.status.success(),
            "checking the echo app failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// Where `wasmhost build` installs the guest toolchains for the tests and benchmarks (kept
/// across builds, as a user's are).
pub fn toolchains() -> PathBuf {
    repo().join(".tools/toolchains")
}

/// The folder where the built Python guest components are.
pub fn python_artifacts() -> PathBuf {
    build_guests();
    repo().join("guests/target/python")
}

/// The folder where the built C guest components are.
pub fn c_artifacts() -> PathBuf {
    build_guests();
    repo().join("guests/target/c")
}

/// The folder where the built JavaScript guest components are.
pub fn js_artifacts() -> PathBuf {
    build_guests();
    repo().join("guests/target/js")
}

/// The `wasmhost` binary, without colors.
pub fn wasmhost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmhost"));
    command.env("NO_COLOR", "1").env_remove("RUST_LOG");
    command
}

/// A copy of the echo app in a temporary folder, with its registry text changed by
/// `edit`. Component paths point at the built guests.
pub fn echo_app(edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let artifacts = guest_artifacts();
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("src")).expect("creating src/");
    std::fs::copy(
        repo().join("guests/echo/wasmhost.toml"),
        dir.path().join("wasmhost.toml"),
    )
    .expect("copying wasmhost.toml");
    let registry = std::fs::read_to_string(repo().join("guests/echo/src/_index.yaml"))
        .expect("reading the echo registry");
    let registry = registry
        .replace(
            "file://../../target/wasm32-wasip2/release/",
            &format!("file://{}/", artifacts.display()),
        )
        .replace(
            "file://../../target/python/",
            &format!("file://{}/", python_artifacts().display()),
        )
        .replace(
            "file://../../target/js/",
            &format!("file://{}/", js_artifacts().display()),
        )
        .replace(
            "file://../../target/c/",
            &format!("file://{}/", c_artifacts().display()),
        );
    std::fs::write(dir.path().join("src/_index.yaml"), edit(registry))
        .expect("writing the registry");
    dir
}

/// The registry's header for an app named `app`: a fragment given to `app_with` that starts
/// with its entries (`  - name: …`) comes after it.
const HEADER: &str = "version: \"1.0\"\nnamespace: app\nentries:\n";

/// An app in a temporary folder whose registry is `registry` (a whole file, or the entries of
/// the app `app` alone), with `{artifacts}` standing for the folder of the built guests.
pub fn app_with(registry: &str) -> tempfile::TempDir {
    let artifacts = guest_artifacts();
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("src")).expect("creating src/");
    std::fs::write(dir.path().join("wasmhost.toml"), "").expect("writing wasmhost.toml");
    let registry = match registry.trim_start().starts_with("- name:") {
        true => format!("{HEADER}{registry}"),
        false => registry.to_string(),
    };
    let registry = registry
        .replace("{artifacts}", &artifacts.display().to_string())
        .replace("{python}", &python_artifacts().display().to_string())
        .replace("{js}", &js_artifacts().display().to_string())
        .replace("{c}", &c_artifacts().display().to_string());
    std::fs::write(dir.path().join("src/_index.yaml"), registry).expect("writing the registry");
    dir
}

/// The app in `dir` (its registry loaded and checked), or the test fails with its problems.
pub fn load(dir: &Path) -> App {
    let root = AppRoot::locate(Some(dir)).expect("an app folder");
    app::load(&root).unwrap_or_else(|problems| panic!("{problems}"))
}

/// A node over `app` with the standard host interfaces, in the current runtime (a test's
/// own, e.g. with a paused clock), or else in `runtime()`.
pub fn node_of(app: App, config: NodeConfig) -> Arc<Node> {
    let _guard = tokio::runtime::Handle::try_current()
        .is_err()
        .then(|| runtime().enter());
    Node::builder(app)
        .config(config)
        .interfaces(wasmhost::abi::INTERFACES)
        .build()
        .unwrap_or_else(|err| panic!("{err}"))
}

/// A node over the app of `registry` (see `app_with`); the folder lives as long as it is kept.
pub fn node_with(registry: &str, config: NodeConfig) -> (tempfile::TempDir, Arc<Node>) {
    let dir = app_with(registry);
    let node = node_of(load(dir.path()), config);
    (dir, node)
}

/// One multi-threaded runtime for the binary's nodes that outlive a test.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Spawns a process as `options` says and waits (at most `PATIENCE`) for how it ended.
pub async fn run_to_exit(node: &Arc<Node>, options: SpawnOptions) -> ExitReason {
    let (tx, exit) = tokio::sync::oneshot::channel();
    node.spawn(options.on_exit(tx)).expect("spawning");
    tokio::time::timeout(PATIENCE, exit)
        .await
        .expect("the process ends in time")
        .expect("an exit reason")
}
