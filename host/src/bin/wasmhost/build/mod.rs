//! `wasmhost build`: runs the app's build command, then builds each `[[build.guest]]` with a
//! toolchain wasmhost installs for its language (`toolchain.rs`, from the libraries built
//! into it, `kit.rs`), unless its inputs are those it was last built from (`inputs.rs`).

mod c;
mod inputs;
mod js;
mod kit;
mod python;
mod rust;
mod toolchain;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wasmhost::app::{self, AppRoot, GuestBuild, GuestLang};

pub use kit::rust_sdk_version;

pub fn build(app: Option<&Path>) -> Result<ExitCode> {
    build_app(&AppRoot::locate(app)?)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `[build] command`, then builds every `[[build.guest]]`; an error if there is
/// nothing to run or a step fails.
pub fn build_app(root: &AppRoot) -> Result<()> {
    let file = root.dir.join(app::ROOT_FILE);
    let build = root.file.build.clone().unwrap_or_default();
    if build.command.is_none() && build.guest.is_empty() {
        bail!(
            "{} says nothing to build\n  hint: add a [[build.guest]] (lang and source), or [build] command = \"…\"",
            file.display()
        );
    }
    // Two guests written to one file would each overwrite the other's component.
    for (i, guest) in build.guest.iter().enumerate() {
        if let Some(other) = build.guest[..i]
            .iter()
            .find(|o| o.output() == guest.output())
        {
            bail!(
                "{}: the guests in {} and {} are both built into {}\n  hint: give one an `output`",
                file.display(),
                other.source.display(),
                guest.source.display(),
                guest.output().display()
            );
        }
    }
    if let Some(command) = &build.command {
        eprintln!("building {}: {command}", root.dir.display());
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&root.dir)
            .status()
            .with_context(|| format!("running `{command}`"))?;
        if !status.success() {
            bail!("the build command `{command}` failed ({status})");
        }
    }
    for guest in &build.guest {
        build_guest(root, guest).with_context(|| {
            format!(
                "{}: building the {} guest in {}",
                file.display(),
                guest.lang.name(),
                guest.source.display()
            )
        })?;
    }
    Ok(())
}

/// Builds one guest into its component, unless it is up to date.
fn build_guest(root: &AppRoot, guest: &GuestBuild) -> Result<()> {
    let source = root.dir.join(&guest.source);
    if !source.is_dir() {
        bail!("{} is not a folder", source.display());
    }
    if !guest.cflags.is_empty() && guest.lang != GuestLang::C {
        bail!(
            "cflags are for C guests; this one is in {}",
            guest.lang.name()
        );
    }
    let output = root.dir.join(guest.output());
    let toolchain = match guest.lang {
        GuestLang::Rust => rust::toolchain(),
        GuestLang::Python => python::toolchain(),
        GuestLang::Js => js::toolchain(),
        GuestLang::C => c::toolchain(),
    }?;
    // What the inputs are built with: the toolchain, and the flags it is given.
    let built_with = format!(
        "{} {}",
        toolchain.file_name().unwrap_or_default().to_string_lossy(),
        guest.cflags.join(" ")
    );
    let shown = guest.source.display();
    if inputs::up_to_date(&output, &inputs::hash(&source, &built_with)?) {
        eprintln!(
            "{shown} ({}) is up to date: {}",
            guest.lang.name(),
            guest.output().display()
        );
        return Ok(());
    }
    eprintln!(
        "building {shown} ({}) → {}",
        guest.lang.name(),
        guest.output().display()
    );
    if let Some(parent) = output.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // Written whole or not at all: a run never loads half a component, and two builds at
    // once each write a file of their own.
    let partial = output.with_extension(format!("wasm.{}.partial", std::process::id()));
    match guest.lang {
        GuestLang::Rust => rust::build(&toolchain, &source, &partial),
        GuestLang::Python => python::build(&toolchain, &source, &partial),
        GuestLang::Js => js::build(&toolchain, &source, &partial),
        GuestLang::C => c::build(&toolchain, &source, &guest.cflags, &partial),
    }
    .inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::rename(&partial, &output).with_context(|| format!("writing {}", output.display()))?;
    // Hashed after the build, which may have added to the source (cargo's Cargo.lock).
    let hash = inputs::hash(&source, &built_with)?;
    let record = inputs::record_of(&output);
    std::fs::write(&record, hash).with_context(|| format!("writing {}", record.display()))?;
    Ok(())
}
