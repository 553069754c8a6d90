//! Folders only this user may write: the compile cache (what is in it runs as code), the
//! guest toolchains `wasmhost build` installs (they run too) and the control socket's
//! runtime folder (whoever can reach the socket can inspect the node).
//!
//! A folder is as private as the path to it: if anyone else may write any folder on the
//! way, they can put a symlink or a folder of their own where ours should be. So the whole
//! path is checked, as OpenSSH checks a key's path: it is resolved once (symlinks followed
//! while every folder they sit in is checked in turn), every folder from the root down must
//! belong to root or to this user and be writable by no one else — a sticky folder like
//! `/tmp` excepted, where others may add entries but never replace ours — and the folder
//! itself must be this user's. Callers then use the resolved path, so no symlink is followed
//! again; missing folders are made one at a time, owner-only, and checked once made.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// This user's `wasmhost` folder of one XDG kind: `$VAR/wasmhost` when `VAR` holds an
/// absolute path (the XDG rule), else `~/<under_home>/wasmhost`; `None` without a home.
pub fn user_dir(var: &str, under_home: &str) -> Option<PathBuf> {
    let from_env = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env(var)
        .filter(|p| p.is_absolute())
        .or_else(|| from_env("HOME").map(|home| home.join(under_home)))
        .map(|base| base.join("wasmhost"))
}

/// Writable by its group or by others.
const SHARED_WRITE: u32 = 0o022;
/// Others may add entries but not rename or remove those of others (like `/tmp`).
const STICKY: u32 = 0o1000;

fn me() -> u32 {
    rustix::process::getuid().as_raw()
}

/// `dir`, resolved, if only this user (or root) could have made anything along it; else
/// why not. A folder that does not exist yet is fine: `create` makes it.
pub fn private(dir: &Path) -> Result<PathBuf, String> {
    let dir = std::path::absolute(dir).map_err(|err| format!("cannot resolve it: {err}"))?;
    // The longest part that exists, resolved; the rest is made later.
    let mut existing = dir.as_path();
    let mut missing = Vec::new();
    while fs::symlink_metadata(existing).is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return Err("no part of its path exists".into()),
        }
    }
    let real = existing
        .canonicalize()
        .map_err(|err| format!("cannot resolve {}: {err}", existing.display()))?;
    let mut at = PathBuf::new();
    let parts: Vec<Component> = real.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let last = i + 1 == parts.len() && missing.is_empty();
        check(&at, last)?;
    }
    Ok(missing
        .into_iter()
        .rev()
        .fold(real, |path, name| path.join(name)))
}

/// One folder of a resolved path: `last` is the private folder itself.
fn check(folder: &Path, last: bool) -> Result<(), String> {
    let meta = fs::symlink_metadata(folder)
        .map_err(|err| format!("cannot read {}: {err}", folder.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a folder", folder.display()));
    }
    let (owner, mode) = (meta.uid(), meta.mode());
    if last {
        if owner != me() {
            return Err(format!("{} belongs to another user", folder.display()));
        }
    } else if owner != me() && owner != 0 {
        return Err(format!(
            "{} belongs to another user, who could replace what is in it",
            folder.display()
        ));
    }
    if mode & SHARED_WRITE != 0 && (last || mode & STICKY == 0) {
        return Err(format!(
            "others may write {} (mode {:o}); `chmod go-w` it",
            folder.display(),
            mode & 0o7777
        ));
    }
    Ok(())
}

/// Makes `dir` — a path [`private`] returned — and its missing parents, one at a time,
/// readable only by this user, and checks each once made.
pub fn create(dir: &Path) -> std::io::Result<()> {
    let mut at = PathBuf::new();
    for part in dir.components() {
        at.push(part);
        if fs::symlink_metadata(&at).is_ok() {
            continue;
        }
        match fs::DirBuilder::new().mode(0o700).create(&at) {
            Ok(()) => {}
            // Made by another start of ours meanwhile: checked below as any other.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        check(&at, true).map_err(std::io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_folder_under_a_folder_others_may_write_is_not_private() {
        let base = tempfile::tempdir().expect("a temporary folder");
        let open = base.path().join("open");
        fs::create_dir(&open).expect("mkdir");
        mode(&open, 0o777);
        let why = private(&open.join("cache")).expect_err("not private");
        assert!(
            why.starts_with("others may write") && why.contains("open"),
            "{why}"
        );
        // A sticky one is fine for what is ours in it, but not as the folder itself.
        mode(&open, 0o1777);
        let cache = private(&open.join("cache")).expect("private below a sticky folder");
        create(&cache).expect("made");
        assert_eq!(fs::metadata(&cache).expect("made").mode() & 0o777, 0o700);
        assert!(private(&open).is_err(), "a sticky folder is not ours");
    }

    #[test]
    fn a_symlink_is_resolved_once_and_its_target_checked() {
        let base = tempfile::tempdir().expect("a temporary folder");
        let real = base.path().join("real");
        fs::create_dir(&real).expect("mkdir");
        mode(&real, 0o700);
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let resolved = private(&link.join("cache")).expect("private");
        assert_eq!(
            resolved,
            real.canonicalize().expect("resolved").join("cache")
        );
        // A link into a folder others may write leads somewhere that is not private.
        let open = base.path().join("open");
        fs::create_dir(&open).expect("mkdir");
        mode(&open, 0o777);
        let into_open = base.path().join("into-open");
        std::os::unix::fs::symlink(&open, &into_open).expect("symlink");
        assert!(private(&into_open.join("cache")).is_err());
    }
}
