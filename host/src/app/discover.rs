//! Finding the registry's files: every `*.yaml` and `*.yml` under the registry folder.

use std::path::{Path, PathBuf};

/// `*.yaml` and `*.yml` files under `dir` and its subfolders, sorted, so loading is
/// deterministic.
pub fn yaml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir)? {
            let path = item?.path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The digest of the registry in `dir`: SHA-256 over each file's path (relative to `dir`)
/// and contents, so two nodes of a cluster can tell whether they run the same registry.
pub fn digest(dir: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for file in yaml_files(dir)? {
        let relative = file.strip_prefix(dir).unwrap_or(&file);
        let text = std::fs::read(&file)?;
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(&text);
    }
    let digest = hash.finalize();
    Ok(format!("sha256:{}", hex::encode(&digest[..8])))
}
