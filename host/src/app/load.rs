//! Loading: every `*.yaml` under the registry folder → one validated `App`. Finding the
//! files is `discover`'s job, reading each one `parse`'s, and turning raw entries into the
//! model `resolve`'s. All problems are collected in one pass, so a user fixes them in one go.

use std::path::Path;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::discover::yaml_files;
use super::model::App;
use super::parse;
use super::resolve::Resolver;
use super::root::AppRoot;

/// Loads and validates the app at `root`. Components are checked later, by the node that
/// compiles them.
pub fn load(root: &AppRoot) -> Result<App, Diagnostics> {
    let mut problems = Diagnostics::default();
    let registry = root.registry_dir();
    let files = match yaml_files(&registry) {
        Ok(files) => files,
        Err(err) => {
            problems.push(
                Diagnostic::new(&registry, format!("cannot read the registry folder: {err}"))
                    .hint("the folder is set by `registry` in wasmhost.toml"),
            );
            return Err(problems);
        }
    };
    if files.is_empty() {
        problems.push(
            Diagnostic::new(&registry, "no *.yaml registry files here")
                .hint("add an _index.yaml with `version`, `namespace` and `entries`"),
        );
        return Err(problems);
    }

    let mut resolver = Resolver::new(root.dir.clone(), problems);
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => match parse::parse(file, &text) {
                Ok(raw) => resolver.file(file, raw),
                Err(diagnostic) => resolver.problem(diagnostic),
            },
            Err(err) => resolver.problem(Diagnostic::new(file, format!("cannot read: {err}"))),
        }
    }
    resolver.finish()
}

/// Loads an app whose registry is the one file `file` with the text `text` (the file need not
/// exist; paths in it are relative to its folder). For tests and fuzzing: the same parsing and
/// checks as [`load`], without reading a folder.
pub fn load_text(root: &Path, file: &Path, text: &str) -> Result<App, Diagnostics> {
    let mut resolver = Resolver::new(root.to_path_buf(), Diagnostics::default());
    match parse::parse(file, text) {
        Ok(raw) => resolver.file(file, raw),
        Err(diagnostic) => resolver.problem(diagnostic),
    }
    resolver.finish()
}
