//! The guest libraries and the WIT, built into `wasmhost` so that it installs the very ones
//! it speaks with into its toolchains: an app outside this repository needs no checkout.

use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

use super::toolchain::KitFile;

static WIT: Dir = include_dir!("$CARGO_MANIFEST_DIR/../wit");
static RUST_SDK: Dir = include_dir!("$CARGO_MANIFEST_DIR/../guest-sdk");
static RUST_TYPES: Dir = include_dir!("$CARGO_MANIFEST_DIR/../types");

/// The WIT, as `wit/…`.
pub fn wit() -> Vec<KitFile> {
    files_of(&WIT, Path::new("wit"))
}

/// The Rust SDK and the crate of types it uses, beside the WIT as in this repository (the
/// SDK reads `../wit`): `guest-sdk/…`, `types/…`, `wit/…`.
pub fn rust() -> Vec<KitFile> {
    let mut kit = files_of(&RUST_SDK, Path::new("guest-sdk"));
    kit.extend(files_of(&RUST_TYPES, Path::new("types")));
    with_wit(kit)
}

/// The Python library as the package `wasmhost`, with the pinned toolchain and libraries.
pub fn python() -> Vec<KitFile> {
    with_wit(vec![
        file(
            "lib/wasmhost/__init__.py",
            include_bytes!("../../../../../guests/python/wasmhost/__init__.py"),
        ),
        file(
            "toolchain.txt",
            include_bytes!("../../../../../guests/python/toolchain.txt"),
        ),
        file(
            "requirements.txt",
            include_bytes!("../../../../../guests/python/requirements.txt"),
        ),
    ])
}

/// The JavaScript library (imported as `wasmhost`) and the npm packages its toolchain pins.
pub fn js() -> Vec<KitFile> {
    with_wit(vec![
        file(
            "wasmhost/index.js",
            include_bytes!("../../../../../guests/js/wasmhost/index.js"),
        ),
        file(
            "package.json",
            include_bytes!("../../../../../guests/js/package.json"),
        ),
        file(
            "package-lock.json",
            include_bytes!("../../../../../guests/js/package-lock.json"),
        ),
        file("rolldown.config.js", JS_BUNDLE_CONFIG.as_bytes()),
    ])
}

/// How rolldown bundles one guest (`GUEST` its app.js, `BUNDLE` the output) with the
/// library and cbor-x; the WIT imports stay imports.
const JS_BUNDLE_CONFIG: &str = r#"import { fileURLToPath } from "node:url";

export default {
  input: process.env.GUEST,
  external: [/^wasmhost:/, /^wasi:/],
  resolve: { alias: { wasmhost: fileURLToPath(new URL("./wasmhost/index.js", import.meta.url)) } },
  platform: "neutral",
  output: { file: process.env.BUNDLE, format: "esm" },
};
"#;

/// The C library.
pub fn c() -> Vec<KitFile> {
    with_wit(vec![
        file(
            "wasmhost/wasmhost.c",
            include_bytes!("../../../../../guests/c/wasmhost/wasmhost.c"),
        ),
        file(
            "wasmhost/wasmhost.h",
            include_bytes!("../../../../../guests/c/wasmhost/wasmhost.h"),
        ),
    ])
}

/// A library's files and the WIT, which every toolchain builds against.
fn with_wit(mut kit: Vec<KitFile>) -> Vec<KitFile> {
    kit.extend(wit());
    kit
}

fn file(path: &str, bytes: &'static [u8]) -> KitFile {
    KitFile {
        path: PathBuf::from(path),
        bytes,
    }
}

/// Every file of `dir`, under `prefix`, in a stable order.
fn files_of(dir: &'static Dir<'static>, prefix: &Path) -> Vec<KitFile> {
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(sub) => stack.push(sub),
                DirEntry::File(file) => files.push(KitFile {
                    path: prefix.join(file.path()),
                    bytes: file.contents(),
                }),
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// The Rust SDK's version, as its manifest says.
pub fn rust_sdk_version() -> String {
    let manifest = RUST_SDK
        .get_file("Cargo.toml")
        .and_then(|file| file.contents_utf8())
        .and_then(|text| text.parse::<toml::Table>().ok());
    manifest
        .as_ref()
        .and_then(|manifest| manifest.get("package")?.get("version")?.as_str())
        .unwrap_or("0.1")
        .to_string()
}
