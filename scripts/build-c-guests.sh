#!/usr/bin/env bash
# Builds the C guests (each guests/c/<name>/app.c, with the library in guests/c/wasmhost/)
# into components: guests/target/c/<name>.wasm. Compiled by Debian's clang against Debian's
# wasi-libc as a WASI preview1 reactor, with TinyCBOR for payloads and the bindings of
# wit/wasmhost.wit; then wrapped into a component with the preview1 adapter of the host's
# wasmtime (tools/c-guest-tools does the bindings and the wrapping). On first use it installs
# clang, lld and wasi-libc from Debian's packages (as root, or with sudo) and fetches
# TinyCBOR's sources (npm: tinycbor@0.2.1 bundles TinyCBOR 0.4.2). A component whose
# sources have not changed since it was built is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.tools/c
out=guests/target/c
mkdir -p .tools "$out"
# One build at a time (test binaries may start it together).
exec 9>.tools/c.lock
flock 9

packages="clang lld wasi-libc libclang-rt-14-dev-wasm32"
if [ ! -f /usr/lib/wasm32-wasi/libc.a ] || ! command -v clang > /dev/null; then
    echo "installing $packages from Debian's packages" >&2
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages > /dev/null
    elif command -v sudo > /dev/null; then
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages > /dev/null
    else
        echo "error: the C guests need Debian's $packages; install them as root" >&2
        exit 1
    fi
fi

cbor="$tools/tinycbor/src"
if [ ! -f "$cbor/cbor.h" ]; then
    echo "fetching TinyCBOR's sources (npm: tinycbor@0.2.1)" >&2
    rm -rf "$tools/tinycbor" "$tools/pack"
    mkdir -p "$tools/pack"
    (cd "$tools/pack" && npm pack --silent tinycbor@0.2.1 > /dev/null && tar xzf tinycbor-0.2.1.tgz)
    mv "$tools/pack/package/src/tinycbor" "$tools/tinycbor"
    rm -rf "$tools/pack"
fi

cargo build --quiet -p c-guest-tools
cgt=target/debug/c-guest-tools
bindings="$out/bindings"
if [ ! -f "$bindings/guest.h" ] || [ -n "$(find wit "$cgt" -newer "$bindings/guest.h" -type f -print -quit)" ]; then
    "$cgt" bindgen wit wasmhost:abi/guest "$bindings"
fi

for app in guests/c/*/app.c; do
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    target="$out/$name.wasm"
    if [ -f "$target" ] && [ -z "$(find guests/c/wasmhost "$dir" "$bindings" -newer "$target" -type f -print -quit)" ]; then
        continue
    fi
    echo "building $dir → $target (clang, wasi-libc, TinyCBOR)" >&2
    clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wall -Werror \
        -I "$bindings" -I guests/c/wasmhost -I "$cbor" \
        "$app" guests/c/wasmhost/wasmhost.c "$bindings/guest.c" \
        "$cbor/cborencoder.c" "$cbor/cborencoder_close_container_checked.c" \
        "$cbor/cborparser.c" "$cbor/cborparser_dup_string.c" "$cbor/cborerrorstrings.c" \
        "$bindings/guest_component_type.o" -o "$out/$name.core.wasm"
    "$cgt" component "$out/$name.core.wasm" "$target.tmp"
    mv "$target.tmp" "$target"
done
