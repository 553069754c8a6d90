//! Folders only this user may write: the compile cache (what is in it runs as code) and the
//! control socket's runtime folder (whoever can reach the socket can inspect the node).

use std::fs;
use std::path::Path;

/// Whether only this user could have written the folder's entries: it is theirs and no one
/// else may write it. A folder that does not exist yet is made so.
pub(crate) fn trusted(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(format!("cannot read it: {err}")),
    };
    if !meta.is_dir() {
        return Err("it is not a folder".into());
    }
    if meta.uid() != rustix::process::getuid().as_raw() {
        return Err("it belongs to another user".into());
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "others may write it (mode {:o}); `chmod go-w` it",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// Creates `dir` (and missing parents) readable only by this user.
pub(crate) fn create(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
