//! `wasmhost init --lang` and `wasmhost build` on an app outside the repository, as a new user
//! makes one: for Rust, Python, JavaScript and C the app runs its hello guest right after
//! `init`, an unchanged guest is not rebuilt, a changed one is, and `init` never overwrites.
//! The toolchains are installed by wasmhost itself (once, into the folder the tests share).

use std::process::{Command, Output, Stdio};

use crate::common;

/// `wasmhost` with the tests' toolchains folder, as a user's shell would call it: without
/// the variables the test build gives cargo's children.
fn wasmhost() -> Command {
    let mut command = common::wasmhost();
    command
        .env("WASMHOST_TOOLCHAINS", common::toolchains())
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ran(command: &mut Command) -> Output {
    command.output().expect("running wasmhost")
}

/// `init --lang LANG` in a new folder outside the repository, then `run --build app:hello`:
/// the guest says hello in `language` with its pid; then a build with nothing changed builds
/// nothing. Returns the app's folder.
fn init_and_run(lang: &str, language: &str, files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let app = dir.path().join("hello-app");
    let init = ran(wasmhost().args(["init", "--lang", lang]).arg(&app));
    assert_eq!(init.status.code(), Some(0), "{}", text(&init.stderr));
    let stdout = text(&init.stdout);
    for file in ["wasmhost.toml", "src/app.yaml", ".gitignore"]
        .iter()
        .chain(files)
    {
        assert!(
            stdout.contains(&format!("created {}", app.join(file).display())),
            "{file} not created:\n{stdout}"
        );
    }

    let run = ran(wasmhost()
        .arg("--app")
        .arg(&app)
        .args(["run", "--build", "app:hello"]));
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("building hello ({lang}) → build/hello.wasm")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("Hello from {language}! I am {{app:terminal|0x")),
        "{stdout}\n{stderr}"
    );

    let again = ran(wasmhost().arg("--app").arg(&app).arg("build"));
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stderr),
        format!("hello ({lang}) is up to date: build/hello.wasm\n")
    );
    dir
}

#[test]
fn init_makes_a_rust_app_that_runs_and_is_not_rebuilt_unchanged() {
    init_and_run("rust", "Rust", &["hello/Cargo.toml", "hello/src/lib.rs"]);
}

#[test]
fn init_makes_a_python_app_that_runs_and_is_not_rebuilt_unchanged() {
    init_and_run("python", "Python", &["hello/app.py"]);
}

#[test]
fn init_makes_a_javascript_app_that_runs_and_is_not_rebuilt_unchanged() {
    init_and_run("js", "JavaScript", &["hello/app.js"]);
}

#[test]
fn init_makes_a_c_app_that_runs_and_a_changed_guest_is_rebuilt() {
    let dir = init_and_run("c", "C", &["hello/app.c"]);
    let app = dir.path().join("hello-app");
    let source = app.join("hello/app.c");
    let code = std::fs::read_to_string(&source).expect("reading app.c");
    std::fs::write(
        &source,
        code.replace("Hello from C!", "Hello again from C!"),
    )
    .expect("changing app.c");
    let run = ran(wasmhost()
        .arg("--app")
        .arg(&app)
        .args(["run", "--build", "app:hello"]));
    let (stdout, stderr) = (text(&run.stdout), text(&run.stderr));
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("building hello (c)"), "{stderr}");
    assert!(
        stdout.contains("Hello again from C! I am {app:terminal|0x"),
        "{stdout}"
    );
}

#[test]
fn init_writes_nothing_when_one_of_its_files_is_there() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("hello")).expect("creating hello/");
    std::fs::write(dir.path().join("hello/app.py"), "# mine\n").expect("writing app.py");
    let init = ran(wasmhost()
        .args(["init", "--lang", "python", "."])
        .current_dir(dir.path()));
    assert_eq!(init.status.code(), Some(1));
    assert_eq!(
        text(&init.stderr),
        "error: ./hello/app.py already exists; init writes nothing over a file\n"
    );
    assert!(!dir.path().join("wasmhost.toml").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello/app.py")).expect("reading app.py"),
        "# mine\n"
    );
}

/// `wasmhost build` in a new app whose root file is `root_file`.
fn build_in(root_file: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("src")).expect("creating src/");
    std::fs::write(dir.path().join("wasmhost.toml"), root_file).expect("writing wasmhost.toml");
    let build = ran(wasmhost().arg("build").current_dir(dir.path()));
    (dir, build)
}

#[test]
fn a_guest_of_an_unknown_language_is_named_at_its_line() {
    let (_dir, build) = build_in(
        "[app]\nregistry = \"src\"\n\n[[build.guest]]\nlang = \"cobol\"\nsource = \"hello\"\n",
    );
    assert_eq!(build.status.code(), Some(1));
    let stderr = text(&build.stderr);
    assert!(
        stderr.contains("wasmhost.toml:5") && stderr.contains("unknown variant `cobol`"),
        "{stderr}"
    );
}

#[test]
fn two_guests_built_into_one_component_are_refused_before_anything_builds() {
    let (dir, build) = build_in(
        "[build]\ncommand = \"touch built\"\n\n\
         [[build.guest]]\nlang = \"python\"\nsource = \"a/hello\"\n\n\
         [[build.guest]]\nlang = \"js\"\nsource = \"b/hello\"\n",
    );
    assert_eq!(build.status.code(), Some(1));
    let stderr = text(&build.stderr);
    assert!(
        stderr.contains(
            "the guests in a/hello and b/hello are both built into build/hello.wasm\n  hint: give one an `output`"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("built").exists(), "the command ran");
}

#[test]
fn a_toolchains_folder_others_may_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::create_dir_all(dir.path().join("hello")).expect("creating hello/");
    std::fs::write(
        dir.path().join("wasmhost.toml"),
        "[[build.guest]]\nlang = \"python\"\nsource = \"hello\"\n",
    )
    .expect("writing wasmhost.toml");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("creating shared/");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777))
        .expect("opening shared/ to everyone");
    let build = ran(wasmhost()
        .arg("build")
        .env("WASMHOST_TOOLCHAINS", shared.join("toolchains"))
        .current_dir(dir.path()));
    assert_eq!(build.status.code(), Some(1));
    let stderr = text(&build.stderr);
    assert!(
        stderr.contains(&format!(
            "the toolchains folder {}: others may write {} (mode 777)",
            shared.join("toolchains").display(),
            shared.display()
        )),
        "{stderr}"
    );
    assert!(!shared.join("toolchains").exists());
}
