//! `wasmhost init`: makes a folder an app that runs — the root file, a registry with a
//! terminal host, a process host and a `hello` entry, and the hello guest's source in the
//! language asked for, which `wasmhost build` builds. It never overwrites a file: if any
//! file it would write is there, it writes none.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wasmhost::app::{GuestLang, ROOT_FILE};

use crate::build;

pub fn init(dir: Option<PathBuf>, lang: GuestLang) -> Result<ExitCode> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let files = files(lang);
    let taken: Vec<String> = files
        .iter()
        .map(|(path, _)| dir.join(path))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !taken.is_empty() {
        bail!(
            "{} already exist{}; init writes nothing over a file",
            taken.join(", "),
            if taken.len() == 1 { "s" } else { "" }
        );
    }
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("created {}", path.display());
    }
    let app = if dir == Path::new(".") {
        String::new()
    } else {
        format!("--app {} ", dir.display())
    };
    println!("run it: wasmhost {app}run --build app:hello");
    Ok(ExitCode::SUCCESS)
}

/// The files of a new app in `lang`, by path in its folder.
fn files(lang: GuestLang) -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (
            PathBuf::from(ROOT_FILE),
            include_str!("templates/wasmhost.toml").replace("{lang}", lang.name()),
        ),
        (
            PathBuf::from("src/app.yaml"),
            include_str!("templates/app.yaml").to_string(),
        ),
        (
            PathBuf::from(".gitignore"),
            include_str!("templates/gitignore").to_string(),
        ),
    ];
    let guest: &[(&str, String)] = &match lang {
        GuestLang::Rust => vec![
            (
                "Cargo.toml",
                include_str!("templates/Cargo.toml")
                    .replace("{sdk_version}", &build::rust_sdk_version()),
            ),
            ("src/lib.rs", include_str!("templates/lib.rs").to_string()),
        ],
        GuestLang::Python => vec![("app.py", include_str!("templates/app.py").to_string())],
        GuestLang::Js => vec![("app.js", include_str!("templates/app.js").to_string())],
        GuestLang::C => vec![("app.c", include_str!("templates/app.c").to_string())],
    };
    files.extend(
        guest
            .iter()
            .map(|(path, text)| (Path::new("hello").join(path), text.clone())),
    );
    files
}
