#!/usr/bin/env bash
# Runs every check and every test, as CI does. Installs what it needs (the wasm32-wasip2
# target, Erlang); the tests build the guest components themselves, the Python, JavaScript
# and C ones by `wasmhost build` (guests/wasmhost.toml), which installs their toolchains.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "installing the wasm32-wasip2 target"
rustup target add wasm32-wasip2

step "installing Erlang (the benchmark suite's other side, smoke-tested)"
./scripts/install-erlang.sh

step "formatting (host workspace and guests)"
cargo fmt --all -- --check
(cd guests && cargo fmt --all -- --check)

step "clippy (guests, for wasm32-wasip2)"
(cd guests && cargo clippy --all-targets --locked -- -D warnings)

# `cargo clippy` checks every dependency again in a build of its own (wasmtime's check alone
# took 5 to 10 minutes here), so the host workspace is linted as it is built for the tests:
# clippy's driver wraps rustc for the workspace's own crates (what `cargo clippy` does), the
# dependencies are compiled once, and a lint fails the build as `-D warnings` would.
export RUSTC_WORKSPACE_WRAPPER="$(rustup which clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

step "clippy (host workspace, every target) and the test build"
cargo test --workspace --all-targets --locked --no-run

step "tests"
cargo test --workspace --locked --no-fail-fast
