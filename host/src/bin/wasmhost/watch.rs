//! `wasmhost run --watch`: while the node runs, watches the app's folder (and its guests'
//! sources) for changes; after a quiet moment, builds the app (`wasmhost build`, which skips
//! what did not change) and upgrades each entry whose component changed, as `wasmhost
//! upgrade` does. A failed build or upgrade is reported and the node runs on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use wasmhost::app::{AppRoot, registry_digest};
use wasmhost::runtime::{Node, sha256_of};
use wasmhost::services::Tree;

use crate::build;

/// How long the sources must stay still before a build: an editor's save is several writes.
const QUIET: Duration = Duration::from_millis(300);
/// How long each process has to hand over.
const GRACE: Duration = Duration::from_secs(5);

/// Watches until the task is dropped. Says why, once, if it cannot watch at all.
pub async fn watch(root: AppRoot, node: Arc<Node>, tree: Tree) {
    let (tx, mut changes) = mpsc::unbounded_channel();
    let folders = folders(&root);
    let watched = folders.clone();
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && event.paths.iter().any(|path| is_source(&watched, path))
            {
                let _ = tx.send(());
            }
        }) {
            Ok(watcher) => watcher,
            Err(err) => return eprintln!("warning: --watch: cannot watch files: {err}"),
        };
    for folder in &folders {
        if let Err(err) = watcher.watch(folder, RecursiveMode::Recursive) {
            eprintln!("warning: --watch: cannot watch {}: {err}", folder.display());
        }
    }
    eprintln!("watching {} for changes", root.dir.display());
    let mut built = components(&node);
    let registry = || registry_digest(&root.registry_dir()).ok();
    let mut registry_seen = registry();
    while changes.recv().await.is_some() {
        // Until the sources are still.
        while let Ok(Some(())) = tokio::time::timeout(QUIET, changes.recv()).await {}
        let building = root.clone();
        match tokio::task::spawn_blocking(move || build::build_app(&building)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                eprintln!("error: the build failed: {err:#}; the node runs on as it was");
                continue;
            }
            Err(err) => {
                eprintln!("error: the build did not finish: {err}");
                continue;
            }
        }
        let now = components(&node);
        for (entry, digest) in &now {
            if built.get(entry) == Some(digest) {
                continue;
            }
            match wasmhost::lifecycle::upgrade(&node, &tree, entry, GRACE).await {
                Ok(answer) => eprint!("{}", answer.render()),
                Err(err) => eprintln!("error: upgrading {entry}: {err:#}"),
            }
        }
        // What the build made is what the next change is compared with, upgraded or not.
        built = now;
        // An upgrade reads an entry's `source` and `hash` again, nothing else of the registry.
        let registry_now = registry();
        if registry_now != registry_seen {
            eprintln!(
                "note: the registry changed: upgrades take an entry's new `source` and `hash`; restart wasmhost for the rest"
            );
            registry_seen = registry_now;
        }
        // What the build itself wrote is not a change of the sources.
        while changes.try_recv().is_ok() {}
    }
}

/// The app's folder and each guest's source folder outside it.
fn folders(root: &AppRoot) -> Vec<PathBuf> {
    let mut folders = vec![root.dir.clone()];
    let guests = root.file.build.iter().flat_map(|build| &build.guest);
    for guest in guests {
        let source = root.dir.join(&guest.source);
        if !source.starts_with(&root.dir) && !folders.contains(&source) {
            folders.push(source);
        }
    }
    folders
}

/// Whether a change of `path` (in one of the `watched` folders) can change a component: not
/// one of the build's own outputs (components, what they were built from), nor in a hidden,
/// `target`, `node_modules` or `__pycache__` folder, as `wasmhost build` hashes a guest's
/// inputs.
fn is_source(watched: &[PathBuf], path: &Path) -> bool {
    let inside = watched
        .iter()
        .find_map(|folder| path.strip_prefix(folder).ok())
        .unwrap_or(path);
    let skipped = inside.components().any(|part| {
        let part = part.as_os_str().to_string_lossy();
        part.starts_with('.') || ["target", "node_modules", "__pycache__"].contains(&&*part)
    });
    let output = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("wasm" | "inputs")
    );
    !skipped && !output
}

/// Each process entry's component, by its digest: what a build may change. A component
/// several entries share is read once.
fn components(node: &Node) -> HashMap<String, String> {
    let mut digests: HashMap<&Path, Option<String>> = HashMap::new();
    let app = node.app();
    app.processes
        .values()
        .filter_map(|entry| {
            let digest = digests.entry(&entry.source).or_insert_with(|| {
                std::fs::read(&entry.source)
                    .ok()
                    .map(|bytes| sha256_of(&bytes))
            });
            Some((entry.id.clone(), digest.clone()?))
        })
        .collect()
}
