//! Registries, each paired with exactly what the user sees (`wasmhost check`): for a bad one
//! the problems, for a good one the report.
//!
//! Every folder in tests/ui/ is an app's registry folder (`_index.yaml` and any files it
//! names, with `.wat` files turned into `.wasm`) plus `expected.stderr` (a bad registry) or
//! `expected.stdout` (a good one, checked without the compile cache), and optionally the
//! app's `wasmhost.toml`. `{artifacts}` in the YAML stands for the folder of the
//! built guest components. Run with `BLESS=1` to rewrite the expected files after an
//! intended change of wording, and review the diff.

use crate::common;

use std::path::Path;

fn check_case(case: &str) {
    let ui = common::repo().join("tests/ui").join(case);
    let app = tempfile::tempdir().expect("a temporary folder");
    let src = app.path().join("src");
    std::fs::create_dir_all(&src).expect("creating src/");
    // A case may bring its own root file (to test `[node]`); the default names the registry.
    let root_file = std::fs::read_to_string(ui.join("wasmhost.toml"))
        .unwrap_or_else(|_| "[app]\nregistry = \"src\"\n".to_string());
    std::fs::write(app.path().join("wasmhost.toml"), root_file).expect("writing wasmhost.toml");
    let artifacts = common::guest_artifacts();
    for item in std::fs::read_dir(&ui).expect("reading the case") {
        let path = item.expect("a case file").path();
        let name = path.file_name().expect("a file name").to_owned();
        if name == "expected.stderr" || name == "expected.stdout" || name == "wasmhost.toml" {
            continue;
        }
        if path.extension().is_some_and(|e| e == "wat") {
            // A component written as text, for shapes no toolchain makes.
            let wasm = wat::parse_file(&path).expect("the case's .wat parses");
            std::fs::write(src.join(name).with_extension("wasm"), wasm).expect("writing the .wasm");
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("reading the registry");
            let text = text.replace("{artifacts}", &artifacts.display().to_string());
            std::fs::write(src.join(&name), text).expect("writing the registry");
        } else {
            std::fs::copy(&path, src.join(&name)).expect("copying a case file");
        }
    }

    if ui.join("expected.stdout").exists() {
        return check_report(case, &ui, app.path(), &artifacts);
    }
    let out = common::wasmhost()
        .args(["--app", ".", "check"])
        .current_dir(app.path())
        .output()
        .expect("running wasmhost check");
    assert_eq!(out.status.code(), Some(1), "a bad registry fails the check");
    assert!(out.stdout.is_empty(), "nothing is reported as found");
    let stderr = normalize(
        &String::from_utf8_lossy(&out.stderr)
            .replace(&artifacts.display().to_string(), "{artifacts}"),
    );
    let expected_path = ui.join("expected.stderr");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&expected_path, stderr.as_bytes()).expect("writing expected.stderr");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|_| panic!("{} is missing; run with BLESS=1", show(&expected_path)));
    assert_eq!(stderr, expected, "case {case}");
}

/// A good registry's case: `check` passes and reports exactly `expected.stdout`, with the
/// app's folder shown as `{app}`.
fn check_report(case: &str, ui: &Path, app: &Path, artifacts: &Path) {
    let out = common::wasmhost()
        .args(["--app", ".", "--no-compile-cache", "check"])
        .current_dir(app)
        .output()
        .expect("running wasmhost check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "case {case} passes the check: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app = app.canonicalize().expect("the app folder");
    let stdout = normalize(
        &String::from_utf8_lossy(&out.stdout)
            .replace(&artifacts.display().to_string(), "{artifacts}")
            .replace(&app.display().to_string(), "{app}"),
    );
    let expected_path = ui.join("expected.stdout");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&expected_path, stdout.as_bytes()).expect("writing expected.stdout");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).expect("reading expected.stdout");
    assert_eq!(stdout, expected, "case {case}");
}

/// Replaces computed sha256 digests with `{sha256}`: a component's digest depends on where
/// it was built (paths end up in panic messages).
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("sha256:") {
        let (before, after) = rest.split_at(at + "sha256:".len());
        out.push_str(before);
        let hex = after.chars().take_while(char::is_ascii_hexdigit).count();
        if hex == 64 && !after[..hex].chars().all(|c| c == '0') {
            out.push_str("{sha256}");
        } else {
            out.push_str(&after[..hex]);
        }
        rest = &after[hex..];
    }
    out.push_str(rest);
    out
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

macro_rules! cases {
    ($($test:ident => $case:literal,)+) => {$(
        #[test]
        fn $test() {
            check_case($case);
        }
    )+};
}

cases! {
    unknown_kind_is_reported_at_its_line => "unknown-kind",
    unknown_field_is_reported_at_its_line => "unknown-field",
    missing_source_file_is_reported => "missing-source",
    reference_to_a_missing_entry_is_reported => "missing-entry",
    reference_to_a_missing_host_is_reported => "missing-host",
    a_file_that_is_not_a_component_is_reported => "not-a-component",
    a_core_module_is_not_a_component => "core-module",
    invalid_yaml_is_reported_at_its_line => "invalid-yaml",
    a_hash_mismatch_is_reported => "hash-mismatch",
    a_field_of_another_kind_is_reported => "field-of-another-kind",
    an_unknown_module_is_reported => "unknown-module",
    a_misspelt_limit_lists_the_limits => "unknown-nested-field",
    start_timeout_must_be_a_duration => "start-timeout-not-a-duration",
    a_host_cannot_be_kept_from_starting => "host-auto-start-false",
    a_host_needs_at_least_one_worker => "workers-zero",
    a_limit_above_the_pool_is_reported_at_its_line => "limit-over-pool",
    a_node_setting_that_is_not_a_size_is_reported_at_its_line => "node-setting-not-a-size",
    a_node_limit_above_the_pool_is_refused => "node-limit-over-pool",
    an_unknown_node_setting_is_reported_at_its_line => "unknown-node-setting",
    an_unknown_log_format_names_the_two_there_are => "log-format-unknown",
    a_component_with_more_memories_than_its_share_is_refused => "many-memories",
    an_authority_naming_a_missing_entry_is_reported => "authority-missing-entry",
    a_reserved_name_must_be_a_name => "reserved-name-too-long",
    requiring_a_missing_service_names_both => "requires-missing",
    a_requires_cycle_names_every_service_in_it => "requires-cycle",
    a_supervisors_children_exist_have_one_supervisor_and_no_cycle => "supervisor-children",
    a_supervisors_child_leaves_starting_and_restarting_to_it => "supervisor-child-lifecycle",
    the_report_shows_hosts_entries_services_and_supervisors => "report-app",
    the_report_shows_authority_and_modules_not_granted => "report-authority",
}

#[test]
fn check_says_a_new_apps_guest_is_not_built_yet() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = common::wasmhost()
        .args(["init", "."])
        .current_dir(dir.path())
        .output()
        .expect("running wasmhost init");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .ends_with("created ./hello/src/lib.rs\nrun it: wasmhost run --build app:hello\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The app is found from the current folder, without --app.
    let check = common::wasmhost()
        .arg("check")
        .current_dir(dir.path())
        .output()
        .expect("running wasmhost check");
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains(
            "src/app.yaml:23: entry app:hello: source `file://../build/hello.wasm` not found"
        ) && stderr.contains("hint: build the components with `wasmhost build`"),
        "{stderr}"
    );
}

#[test]
fn run_outside_an_app_explains_how_to_make_one() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = common::wasmhost()
        .args(["run", "app:cli"])
        .current_dir(dir.path())
        .output()
        .expect("running wasmhost");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: no wasmhost.toml in "),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: pass --app DIR, or run `wasmhost init`"),
        "{stderr}"
    );
}

/// `wasmhost check` of `app` with its compile cache in `cache`, which must pass: its stdout
/// and its log.
fn check_with_cache(app: &Path, cache: &Path) -> (String, String) {
    let out = common::wasmhost()
        .arg("--app")
        .arg(app)
        .arg("--compile-cache")
        .arg(cache)
        .arg("check")
        .output()
        .expect("running wasmhost check");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), log)
}

/// With stderr not a terminal (no spinner), a compile that runs for more than a second is
/// logged when it starts and when it ends: a cold start is never silent.
#[test]
fn a_long_compile_is_logged_when_stderr_is_not_a_terminal() {
    let cache = tempfile::tempdir().expect("a temporary folder");
    // The echo app up to its Python worker, whose compile takes seconds.
    let app = common::echo_app(|r| {
        let after = r.find("  - name: relay-py");
        r[..after.expect("the echo registry has a Python relay")].to_string()
    });
    let (_, log) = check_with_cache(app.path(), cache.path());
    let python = common::python_artifacts().join("echo_worker.wasm");
    let python = python.display().to_string();
    assert!(
        log.lines()
            .any(|l| l.contains("INFO compiling ") && l.contains(&python)),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("INFO compiled in ") && l.contains(&python)),
        "{log}"
    );
}

#[test]
fn check_compiles_once_then_loads_from_the_compile_cache() {
    let cache = tempfile::tempdir().expect("a temporary folder");
    // The echo app's Rust components: the entries before the first in another language
    // (a Python or JavaScript component takes seconds to compile).
    let app = common::echo_app(|r| {
        let others = r.find("  - name: worker-py");
        r[..others.expect("the echo registry has a Python worker")].to_string()
    });
    let check = || check_with_cache(app.path(), cache.path());
    let (first, _) = check();
    assert!(
        first.contains(": 0 of 3 components loaded from it"),
        "{first}"
    );
    let (second, log) = check();
    assert!(
        second.contains(": 3 of 3 components loaded from it"),
        "{second}"
    );
    assert!(!log.contains("compiling "), "nothing is compiled: {log}");

    // A damaged entry is noticed, compiled again and replaced.
    let entry = std::fs::read_dir(cache.path())
        .expect("reading the cache")
        .map(|e| e.expect("an entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("an entry in the cache");
    let mut bytes = std::fs::read(&entry).expect("reading the entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, bytes).expect("damaging the entry");
    let (third, warning) = check();
    assert!(
        third.contains(": 2 of 3 components loaded from it"),
        "{third}"
    );
    assert!(
        warning.contains("its content does not match its checksum; compiling again"),
        "{warning}"
    );
    let (fourth, _) = check();
    assert!(
        fourth.contains(": 3 of 3 components loaded from it"),
        "{fourth}"
    );
}

#[test]
fn a_pool_larger_than_the_machine_can_map_says_what_to_raise() {
    let allowed: u64 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("reading vm.max_map_count")
        .trim()
        .parse()
        .expect("a number");
    // Six mappings per process: more processes than the machine allows, yet a valid pool.
    let too_many = allowed / 6 + 1_000;
    if too_many > u64::from(wasmhost::runtime::MAX_PROCESSES) {
        eprintln!("vm.max_map_count is {allowed}: any pool fits; nothing to check");
        return;
    }
    let out = common::wasmhost()
        .arg("--app")
        .arg(common::repo().join("guests/echo"))
        .args(["--max-processes", &too_many.to_string(), "check"])
        .output()
        .expect("running wasmhost check");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: invalid node setting `max_processes`: {too_many} live processes need about "
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "but this machine allows {allowed} per process (vm.max_map_count)\n  hint: raise it with `sudo sysctl -w vm.max_map_count="
        )),
        "{stderr}"
    );
    assert!(stderr.contains(", or set max_processes to "), "{stderr}");
}

#[test]
fn run_passes_the_arguments_after_the_double_dash_as_yaml_values() {
    common::build_guests();
    let app = common::app_with(
        r#"
  - name: terminal
    kind: terminal.host
  - name: child
    kind: process.wasm
    source: "{artifacts}/test_child.wasm"
    modules: [process, time]
"#,
    );
    let run = |args: &[&str]| {
        let out = common::wasmhost()
            .arg("--app")
            .arg(app.path())
            .args(["run", "app:child", "--"])
            .args(args)
            .output()
            .expect("running wasmhost");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The child's entry point takes (mode, text): `error` fails with the text.
    let (code, stderr) = run(&["error", "boom on purpose"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("failed: error: boom on purpose"),
        "{stderr}"
    );
    let (code, stderr) = run(&["return", "fine"]);
    assert_eq!(code, Some(0), "{stderr}");

    // `42` is a number, not the text the child takes.
    let (code, stderr) = run(&["return", "42"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("bad arguments: cannot decode payload: argument 2: Semantic(None, \"invalid type: integer `42`, expected string\")"),
        "{stderr}"
    );

    let (code, stderr) = run(&["return", "[unclosed"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("error: argument 2 (`[unclosed`) is not a YAML value: "),
        "{stderr}"
    );
}
