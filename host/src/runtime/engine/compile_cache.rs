//! The compile cache: a component is compiled once and its machine code kept on disk, keyed
//! by the component's content and the engine's configuration, so later starts load it in
//! milliseconds instead of compiling for seconds.
//!
//! Why not wasmtime's own cache (its `cache` feature): it maps any entry that decompresses as
//! executable code, without checking it against what was written, so a damaged file runs as
//! damaged code; it also brings a C library (zstd), a configuration file and a background
//! worker of its own. Here every entry carries the BLAKE3 digest of its artifact, checked
//! before wasmtime sees a byte of it; an entry that fails the check, or that wasmtime refuses
//! (made by another version or with other settings), is compiled again and replaced. Writes go
//! to a temporary file that is renamed into place, so a crash or a concurrent start never
//! leaves half an entry under a valid name, and an entry's file is never changed once it has
//! its name, which is what lets a start map it instead of copying it.
//!
//! An entry is the artifact exactly as `Component::serialize` wrote it, then a footer (the
//! format's tag and the artifact's digest), so wasmtime maps the file as it is
//! (`Component::deserialize_file`): a 40 MiB Python component loads without being copied.
//! BLAKE3 rather than SHA-256 for the keys and checksums: the digests were a third of a start
//! with a Python and a JavaScript worker in the app.
//!
//! The folder is trusted like the `wasmhost` binary itself (whoever can write it can run
//! code as the host), so it is created owner-only (SECURITY.md).

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Component;

/// What an entry ends with, before its digest: the format, so another layout is never
/// misread.
const MAGIC: &[u8; 16] = b"wasmhost-cwasm/2";
/// The footer: the format's tag and the artifact's BLAKE3 digest.
const FOOTER: usize = MAGIC.len() + blake3::OUT_LEN;
/// When the folder outgrows this, the entries used longest ago are removed.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

/// A folder of compiled components.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    max_bytes: u64,
}

/// Where a component's machine code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// Loaded from the cache.
    Loaded,
    /// Compiled: the cache had no entry (or there is no cache).
    Compiled,
    /// Compiled again: the cache's entry could not be used, for this reason.
    Replaced(String),
}

/// Told when a component must be compiled (a cache miss), which may take seconds.
pub trait CompileProgress: Send + Sync {
    fn compiling(&self, source: &Path, bytes: usize);
    fn compiled(&self, source: &Path, took: Duration);
}

/// The digest a component is known by in the cache (BLAKE3 of its bytes).
pub fn digest(wasm: &[u8]) -> [u8; 32] {
    *blake3::hash(wasm).as_bytes()
}

/// The cache folder for this user: `$XDG_CACHE_HOME/wasmhost`, else `~/.cache/wasmhost`.
pub fn default_dir() -> Option<PathBuf> {
    crate::private_dir::user_dir("XDG_CACHE_HOME", ".cache")
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CompileCache {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// The same cache, trimmed to `max_bytes`.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for the component whose `digest` this is, compiled by `engine`,
    /// lives.
    pub fn entry_path(&self, engine: &Engine, digest: &[u8; 32]) -> PathBuf {
        entry_path_in(&self.dir, engine, digest)
    }

    /// The component compiled from `wasm` (whose `digest` the caller has): from the cache if
    /// it holds a sound entry, else compiled (telling `progress`) and stored. Failing to read
    /// or write the cache never fails the compile; it is logged.
    pub fn component(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &[u8; 32],
        source: &Path,
        progress: Option<&dyn CompileProgress>,
    ) -> wasmtime::Result<(Component, Compiled)> {
        // The folder is used by its resolved path, checked all the way down.
        let dir = match crate::private_dir::private(&self.dir) {
            Ok(dir) => dir,
            Err(why) => {
                tracing::warn!(dir = %self.dir.display(), "compile cache not used: {why}");
                return Ok((compile(engine, wasm, source, progress)?, Compiled::Compiled));
            }
        };
        let path = entry_path_in(&dir, engine, digest);
        let outcome = match fs::File::open(&path) {
            Ok(file) => match load(engine, &file, &path) {
                Ok(component) => {
                    // Marks the entry as just used, so trimming keeps it.
                    let _ = file.set_modified(SystemTime::now());
                    return Ok((component, Compiled::Loaded));
                }
                Err(why) => {
                    tracing::warn!(entry = %path.display(), source = %source.display(), "compile cache entry not used: {why}; compiling again");
                    Compiled::Replaced(why)
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Compiled::Compiled,
            Err(err) => {
                tracing::warn!(entry = %path.display(), "cannot read the compile cache: {err}");
                Compiled::Replaced(format!("unreadable: {err}"))
            }
        };
        let component = compile(engine, wasm, source, progress)?;
        if let Err(err) = self.store(&dir, &path, &component) {
            tracing::warn!(dir = %self.dir.display(), "cannot write the compile cache: {err:#}");
        }
        Ok((component, outcome))
    }

    /// Writes an entry under a temporary name in `dir` (the cache's resolved folder) and
    /// renames it into place, then trims the folder.
    fn store(&self, dir: &Path, path: &Path, component: &Component) -> anyhow::Result<()> {
        let artifact = component.serialize()?;
        crate::private_dir::create(dir)?;
        let mut file = tempfile::Builder::new().prefix(".wip-").tempfile_in(dir)?;
        file.write_all(&artifact)?;
        file.write_all(MAGIC)?;
        file.write_all(blake3::hash(&artifact).as_bytes())?;
        file.persist(path)?;
        self.trim(dir);
        Ok(())
    }

    /// Removes the entries of `dir` used longest ago until it fits in `max_bytes`.
    fn trim(&self, dir: &Path) {
        let Ok(listing) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let used = meta.modified().ok()?;
                meta.is_file().then(|| (used, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

/// Where the entry for the component whose `digest` this is, compiled by `engine`, lives
/// in `dir`.
fn entry_path_in(dir: &Path, engine: &Engine, digest: &[u8; 32]) -> PathBuf {
    let mut key = KeyHasher(blake3::Hasher::new());
    digest.hash(&mut key);
    engine.precompile_compatibility_hash().hash(&mut key);
    dir.join(format!("{}.cwasm", key.0.finalize().to_hex()))
}

/// Compiles `wasm`, telling `progress` when it starts and ends.
pub fn compile(
    engine: &Engine,
    wasm: &[u8],
    source: &Path,
    progress: Option<&dyn CompileProgress>,
) -> wasmtime::Result<Component> {
    let started = Instant::now();
    if let Some(progress) = progress {
        progress.compiling(source, wasm.len());
    }
    let component = Component::new(engine, wasm);
    if let Some(progress) = progress {
        progress.compiled(source, started.elapsed());
    }
    component
}

/// The component in the cache entry `file` (opened from `path`), or why it cannot be used.
#[allow(unsafe_code)]
fn load(engine: &Engine, file: &fs::File, path: &Path) -> Result<Component, String> {
    {
        // SAFETY: an entry's file is written under a temporary name and renamed into place,
        // never written once it has its name, so the mapping does not change under us.
        let map =
            unsafe { memmap2::Mmap::map(file) }.map_err(|err| format!("unreadable: {err}"))?;
        if map.len() < FOOTER {
            return Err("truncated".into());
        }
        let (artifact, footer) = map.split_at(map.len() - FOOTER);
        let (magic, digest) = footer.split_at(MAGIC.len());
        if magic != MAGIC {
            return Err("not an entry of this cache's format".into());
        }
        if blake3::hash(artifact).as_bytes() != digest {
            return Err("damaged: its content does not match its checksum".into());
        }
    }
    // SAFETY: `Component::deserialize_file` requires a file that `Component::serialize`
    // produced, since it maps it as code without validating it. This one is: this cache wrote
    // it (into an owner-only folder, never changing a file once named), and the checksum
    // above shows it is unchanged since. It is opened again through the descriptor checked
    // above, so a file renamed over the entry in between is not the one mapped. The footer
    // after the artifact lies beyond every section of its ELF image. Whether the artifact
    // suits this engine (version, settings, CPU) wasmtime checks itself.
    unsafe { Component::deserialize_file(engine, same_file(file, path)) }
        .map_err(|err| format!("made for another engine: {err:#}"))
}

/// A path that opens the very file `file` is (through its descriptor, where the system
/// has `/proc`), else `path`.
fn same_file(file: &fs::File, path: &Path) -> PathBuf {
    use std::os::fd::AsRawFd;
    let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if by_descriptor.exists() {
        by_descriptor
    } else {
        path.to_path_buf()
    }
}

/// Feeds `Hash` impls into BLAKE3, for a key that is stable across runs.
struct KeyHasher(blake3::Hasher);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the BLAKE3 digest is read")
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(text: &str) -> Vec<u8> {
        wat::parse_str(text).expect("valid component text")
    }

    const SMALL: &str = "(component)";
    const OTHER: &str = "(component (core module (func (export \"f\"))))";

    fn fetch(cache: &CompileCache, engine: &Engine, wasm: &[u8]) -> Compiled {
        let (_, compiled) = cache
            .component(engine, wasm, &digest(wasm), Path::new("test.wasm"), None)
            .expect("compiles");
        compiled
    }

    #[test]
    fn a_second_start_loads_the_component_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let engine = Engine::default();
        let wasm = component(OTHER);
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Compiled);
        assert!(cache.entry_path(&engine, &digest(&wasm)).is_file());
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Loaded);
    }

    #[test]
    fn a_damaged_entry_is_compiled_again_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = Engine::default();
        let wasm = component(OTHER);
        fetch(&cache, &engine, &wasm);
        let path = cache.entry_path(&engine, &digest(&wasm));
        let mut bytes = fs::read(&path).unwrap();
        // A byte of the machine code, not of the footer.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&path, &bytes).unwrap();

        let Compiled::Replaced(why) = fetch(&cache, &engine, &wasm) else {
            panic!("a damaged entry was used");
        };
        assert!(why.starts_with("damaged"), "{why}");
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Loaded);
    }

    #[test]
    fn a_truncated_or_foreign_file_is_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = Engine::default();
        let wasm = component(SMALL);
        let path = cache.entry_path(&engine, &digest(&wasm));
        for (content, reason) in [
            (&MAGIC[..], "truncated"),
            (
                &b"\x7fELF not ours, and longer than a footer: 0123456789abcdef"[..],
                "not an entry of this cache's format",
            ),
        ] {
            fs::write(&path, content).unwrap();
            assert_eq!(
                fetch(&cache, &engine, &wasm),
                Compiled::Replaced(reason.into())
            );
        }
    }

    #[test]
    fn an_entry_made_by_another_engine_is_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = Engine::default();
        let wasm = component(OTHER);
        // Sound bytes under the right name, but compiled with other settings, as an entry
        // left by another wasmtime version would be.
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let other = Engine::new(&config).unwrap();
        let artifact = Component::new(&other, &wasm).unwrap().serialize().unwrap();
        let mut entry = artifact.to_vec();
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(blake3::hash(&artifact).as_bytes());
        fs::write(cache.entry_path(&engine, &digest(&wasm)), entry).unwrap();

        let Compiled::Replaced(why) = fetch(&cache, &engine, &wasm) else {
            panic!("an entry of another engine was used");
        };
        assert!(why.starts_with("made for another engine"), "{why}");
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Loaded);
    }

    #[test]
    fn a_folder_others_may_write_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let cache = CompileCache::new(dir.path());
        let engine = Engine::default();
        let wasm = component(SMALL);
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Compiled);
        assert_eq!(fetch(&cache, &engine, &wasm), Compiled::Compiled);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn the_folder_is_trimmed_to_its_size_oldest_entries_first() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let (old, new) = (component(SMALL), component(OTHER));
        let sizing = CompileCache::new(dir.path().join("sizing"));
        fetch(&sizing, &engine, &new);
        let new_size = fs::metadata(sizing.entry_path(&engine, &digest(&new)))
            .unwrap()
            .len();

        let cache = CompileCache::new(dir.path().join("cache")).max_bytes(new_size);
        fetch(&cache, &engine, &old);
        // File times are coarse; make the order of use unambiguous.
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let entry = fs::File::options()
            .append(true)
            .open(cache.entry_path(&engine, &digest(&old)));
        entry.unwrap().set_modified(an_hour_ago).unwrap();
        fetch(&cache, &engine, &new);
        assert!(!cache.entry_path(&engine, &digest(&old)).exists());
        assert!(cache.entry_path(&engine, &digest(&new)).is_file());
    }
}
