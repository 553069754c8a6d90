//! C guests: the `*.c` files of a folder, compiled by clang against wasi-libc as a WASI
//! preview1 reactor with the wasmhost library, TinyCBOR and the WIT's bindings, then wrapped
//! into a component with the preview1 adapter of the host's wasmtime.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wasmhost::app::GuestLang;

use super::{kit, toolchain};

/// Debian's packages for clang, its linker and wasi-libc.
const PACKAGES: &[&str] = &["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"];

/// TinyCBOR's files the library needs (npm: tinycbor@0.2.1 bundles TinyCBOR 0.4.2).
const TINYCBOR: &[&str] = &[
    "cborencoder.c",
    "cborencoder_close_container_checked.c",
    "cborparser.c",
    "cborparser_dup_string.c",
    "cborerrorstrings.c",
];

/// The library, the bindings and TinyCBOR's sources.
pub fn toolchain() -> Result<PathBuf> {
    toolchain::ensure(GuestLang::C, &kit::c(), |dir| {
        c_guest_tools::bindgen(
            &dir.join("wit"),
            "wasmhost:abi/guest",
            &dir.join("bindings"),
        )?;
        let pack = dir.join("pack");
        std::fs::create_dir_all(&pack)?;
        toolchain::run(
            Command::new("npm")
                .args(["pack", "--silent", "tinycbor@0.2.1"])
                .current_dir(&pack)
                // The package's file name.
                .stdout(std::process::Stdio::null()),
        )?;
        toolchain::run(
            Command::new("tar")
                .args(["xzf", "tinycbor-0.2.1.tgz"])
                .current_dir(&pack),
        )?;
        std::fs::rename(pack.join("package/src/tinycbor"), dir.join("tinycbor"))
            .context("taking TinyCBOR's sources from its package")?;
        std::fs::remove_dir_all(&pack)?;
        Ok(())
    })
}

/// Builds `source`'s `*.c` into the component `out`, with `cflags` for clang.
pub fn build(toolchain: &Path, source: &Path, cflags: &[String], out: &Path) -> Result<()> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(source)
        .with_context(|| format!("reading {}", source.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    if sources.is_empty() {
        bail!("{} has no .c files", source.display());
    }
    sources.sort();
    install_clang()?;
    let work = tempfile::tempdir().context("a temporary folder for the core module")?;
    let core = work.path().join("core.wasm");
    let cbor = toolchain.join("tinycbor/src");
    let bindings = toolchain.join("bindings");
    let library = toolchain.join("wasmhost");
    toolchain::run(
        Command::new("clang")
            .args([
                "--target=wasm32-wasi",
                "-O2",
                "-mexec-model=reactor",
                "-Wall",
            ])
            .args(cflags)
            .arg("-I")
            .arg(&bindings)
            .arg("-I")
            .arg(&library)
            .arg("-I")
            .arg(&cbor)
            .args(&sources)
            .arg(library.join("wasmhost.c"))
            .arg(bindings.join("guest.c"))
            .args(TINYCBOR.iter().map(|file| cbor.join(file)))
            .arg(bindings.join("guest_component_type.o"))
            .arg("-o")
            .arg(&core),
    )?;
    c_guest_tools::component(&core, out)
}

/// Installs clang and wasi-libc from Debian's packages if they are missing (as root, or
/// with sudo).
fn install_clang() -> Result<()> {
    let has_clang = Command::new("clang").arg("--version").output().is_ok();
    if has_clang && Path::new("/usr/lib/wasm32-wasi/libc.a").is_file() {
        return Ok(());
    }
    eprintln!("installing {} from Debian's packages", PACKAGES.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        toolchain::run(&mut command)
    };
    apt(&["update", "-qq"])
        .and_then(|()| apt(&[&["install", "-y", "-qq"][..], PACKAGES].concat()))
        .context("C guests need clang and wasi-libc: install Debian's clang, lld, wasi-libc and libclang-rt-14-dev-wasm32 as root")
}
