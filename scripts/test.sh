#!/usr/bin/env bash
# Runs every check and every test, as CI does. Installs what it needs (the wasm32-wasip2
# target, Erlang); the tests build the guest components themselves, the Python and
# JavaScript ones with toolchains their build scripts install (scripts/build-*-guests.sh).
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

step "clippy (host workspace)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "clippy (guests, for wasm32-wasip2)"
(cd guests && cargo clippy --all-targets --locked -- -D warnings)

step "tests"
cargo test --workspace --locked --no-fail-fast
