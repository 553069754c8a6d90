//! docs/architecture.md's tables, checked against the code: every module of the host crate
//! has a row, and every module a file uses (a sibling through `super::`, a part of the crate
//! through `crate::`) is in its row's "may call" cell. The table says what may call what;
//! this keeps it from drifting.

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

/// The modules `source` uses: siblings (`super::x`, `use super::{x, Y}`) and parts of the
/// crate (`crate::x`). Names that start with a capital are items, not modules.
fn uses(source: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut siblings, mut parts) = (BTreeSet::new(), BTreeSet::new());
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for (prefix, into) in [("super::", &mut siblings), ("crate::", &mut parts)] {
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
    (siblings, parts)
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
        let listed = rows.iter().any(|row| {
            &row.file == file || (row.file.ends_with('/') && file.starts_with(&row.file))
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
        let nested = row.file.matches('/').count() > 1 || row.file.ends_with("mod.rs");
        let mentions = |name: &str| {
            row.may_call.contains(&format!("`{name}`"))
                || row.may_call.contains(&format!("`{name}::"))
                || row.may_call.contains(&format!("`{name}.rs`"))
                || row.may_call.contains(&format!("`{name}/"))
        };
        let (siblings, parts) = uses(&source);
        if !nested && !row.may_call.contains("the files below") {
            let dir = src.join(folder.as_deref().unwrap_or_default());
            let is_module =
                |name: &str| dir.join(format!("{name}.rs")).exists() || dir.join(name).is_dir();
            for sibling in siblings.iter().filter(|s| is_module(s)) {
                if Some(sibling) != own.as_ref() && !mentions(sibling) {
                    problems.push(format!("{} uses `{sibling}`, not in its row", row.file));
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
