//! docs/architecture.md's tables, checked against the code: every module of the host crate
//! has a row, and every module a file uses (a sibling through `super::`, a part of the crate
//! through `crate::`) is in its row's "may call" cell; a file of a runtime subsystem
//! (`runtime/<folder>/`) uses another subsystem only if its folder's row says so. The tables
//! say what may call what; this keeps them from drifting. Tests inside a file (`mod tests`)
//! are not counted: they may build what they need from anywhere.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common;

/// One row: the file (from `host/src/`), and the names its "may call" cell mentions.
struct Row {
    file: String,
    may_call: String,
}

/// The rows of the tables under `## \`host/src/…\`` headings (and "The rest of `host/src/`").
fn rows(doc: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut folder: Option<String> = None;
    for line in doc.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            folder = heading
                .split('`')
                .nth(1)
                .and_then(|path| path.strip_prefix("host/src/"))
                .map(|rest| rest.trim_end_matches('/').to_string());
            continue;
        }
        let Some(folder) = &folder else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, name, _, may_call, ..] = cells.as_slice() else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        if !name.ends_with(".rs") && !name.ends_with('/') {
            continue;
        }
        let file = if folder.is_empty() {
            name.to_string()
        } else {
            format!("{folder}/{name}")
        };
        rows.push(Row {
            file,
            may_call: may_call.to_string(),
        });
    }
    rows
}

/// What `source` uses, leaving out its `#[cfg(test)] mod tests`.
struct Uses {
    /// Siblings (`super::x`, `use super::{x, Y}`).
    siblings: BTreeSet<String>,
    /// Parts of the crate (`crate::x`).
    parts: BTreeSet<String>,
    /// Parts of the runtime (`crate::runtime::x`).
    runtime: BTreeSet<String>,
}

/// The modules `source` uses. Names that start with a capital are items, not modules.
fn uses(source: &str) -> Uses {
    let source = match source.find("#[cfg(test)]\nmod tests") {
        Some(at) => &source[..at],
        None => source,
    };
    let (mut siblings, mut parts, mut runtime) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (prefix, into) in [
            ("super::", &mut siblings),
            ("crate::", &mut parts),
            ("crate::runtime::", &mut runtime),
        ] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                rest = &rest[at + prefix.len()..];
                let names: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or_default()
                        .split(',')
                        .map(|n| word(n.trim()))
                        .collect(),
                    None => vec![word(rest)],
                };
                for name in names {
                    if name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "super" {
                        into.insert(name);
                    }
                }
            }
        }
    }
    Uses {
        siblings,
        parts,
        runtime,
    }
}

#[test]
fn every_module_uses_only_what_its_row_says_it_may_call() {
    let repo = common::repo();
    let doc = std::fs::read_to_string(repo.join("docs/architecture.md")).expect("the doc");
    let src = repo.join("host/src");
    let rows = rows(&doc);
    let mut problems = Vec::new();

    // Every module file has a row.
    let mut files = Vec::new();
    collect(&src, &src, &mut files);
    for file in &files {
        // A folder's row stands for its files only where it says it is one row (`bin/`).
        let listed = rows.iter().any(|row| {
            &row.file == file
                || (row.file.ends_with('/')
                    && row.may_call.contains("everything above")
                    && file.starts_with(&row.file))
        });
        if !listed && file != "lib.rs" && !file.ends_with("mod.rs") {
            problems.push(format!("{file} has no row"));
        }
    }

    for row in &rows {
        if row.file.ends_with('/') || row.may_call.contains("everything above") {
            continue;
        }
        let Ok(source) = std::fs::read_to_string(src.join(&row.file)) else {
            problems.push(format!("{} is in the table but not in host/src", row.file));
            continue;
        };
        let path = Path::new(&row.file);
        let folder = path.parent().map(|p| p.to_string_lossy().into_owned());
        let own = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let door = row.file.ends_with("mod.rs");
        let mentions = |name: &str| {
            row.may_call.contains(&format!("`{name}`"))
                || row.may_call.contains(&format!("`{name}::"))
                || row.may_call.contains(&format!("`{name}.rs`"))
                || row.may_call.contains(&format!("`{name}/"))
        };
        let Uses {
            siblings,
            parts,
            runtime,
        } = uses(&source);
        if !door && !row.may_call.contains("the files below") {
            let dir = src.join(folder.as_deref().unwrap_or_default());
            let is_module =
                |name: &str| dir.join(format!("{name}.rs")).exists() || dir.join(name).is_dir();
            for sibling in siblings.iter().filter(|s| is_module(s)) {
                if Some(sibling) != own.as_ref() && !mentions(sibling) {
                    problems.push(format!("{} uses `{sibling}`, not in its row", row.file));
                }
            }
        }
        // A file of a runtime subsystem: other subsystems through its folder's row.
        if let Some(folder) = subsystem(&row.file) {
            let folder_row = rows
                .iter()
                .find(|r| r.file == format!("runtime/{folder}/"))
                .map(|r| r.may_call.as_str());
            let Some(folder_row) = folder_row else {
                problems.push(format!("runtime/{folder}/ has no row"));
                continue;
            };
            let runtime_dir = src.join("runtime");
            for other in &runtime {
                let is_subsystem = runtime_dir.join(other).is_dir()
                    || runtime_dir.join(format!("{other}.rs")).exists();
                let named = folder_row.contains(&format!("`{other}/`"))
                    || folder_row.contains(&format!("`{other}.rs`"));
                if is_subsystem && other != folder && !named {
                    problems.push(format!(
                        "{} uses `runtime::{other}`, not in runtime/{folder}/'s row",
                        row.file
                    ));
                }
            }
        }
        let top = row.file.split('/').next().unwrap_or_default();
        for part in &parts {
            let own_folder = row.file.contains('/') && top == part;
            if !own_folder && !mentions(part) {
                problems.push(format!("{} uses `crate::{part}`, not in its row", row.file));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/architecture.md and the code disagree:\n{}",
        problems.join("\n")
    );
}

/// The runtime subsystem (`runtime/<folder>/…`) a file belongs to, if any.
fn subsystem(file: &str) -> Option<&str> {
    let mut parts = file.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("runtime"), Some(folder), Some(_)) => Some(folder),
        _ => None,
    }
}

/// Every `.rs` file under `dir`, as a path from `root`; the binary's folder is one row.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if path.is_dir() {
            if relative == "bin" {
                files.push("bin/wasmhost/".into());
            } else {
                collect(root, &path, files);
            }
        } else if relative.ends_with(".rs") {
            files.push(relative);
        }
    }
}
