#!/usr/bin/env bash
# Builds the JavaScript guests (each guests/js/<name>/app.js) into components: bundled with
# the wasmhost library and cbor-x by rolldown, then made a component by componentize-js
# (StarlingMonkey): guests/target/js/<name>.wasm. On first use it installs the toolchain
# pinned by guests/js/package-lock.json. A component whose sources have not
# changed since it was built is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

js=guests/js
out=guests/target/js

# One build at a time (test binaries may start it together).
mkdir -p .tools
exec 9>.tools/js.lock
flock 9

if [ ! -f "$js/node_modules/.installed" ] || ! cmp -s "$js/package-lock.json" "$js/node_modules/.installed"; then
    echo "installing the JavaScript guest toolchain into $js/node_modules" >&2
    # `npm install` takes the versions package-lock.json pins. (`npm ci` refuses this lock:
    # npm leaves cbor-x's optional per-platform native parts out of it, which we never use.)
    (cd "$js" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error)
    cp "$js/package-lock.json" "$js/node_modules/.installed"
fi

mkdir -p "$out"
for app in "$js"/*/app.js; do
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    [ "$name" = wasmhost ] && continue
    target="$out/$name.wasm"
    # Up to date if nothing it is made of is newer than it.
    if [ -f "$target" ] && [ -z "$(find wit "$js/wasmhost" "$dir" "$js/node_modules/.installed" \
            "$js/rolldown.config.js" -newer "$target" -type f -print -quit)" ]; then
        continue
    fi
    echo "building $dir → $target (rolldown, componentize-js)" >&2
    bundle="$(realpath "$out")/$name.bundle.js"
    (cd "$js" && GUEST="$name" BUNDLE="$bundle" node node_modules/.bin/rolldown -c rolldown.config.js \
        --logLevel silent)
    # No HTTP and no fetch-event handler: a process imports only wasmhost and basic WASI.
    (cd "$js" && node node_modules/.bin/componentize-js "$bundle" --wit ../../wit \
        --world-name wasmhost:abi/guest --disable http fetch-event -o "$(realpath ../target/js)/$name.wasm.tmp")
    mv "$target.tmp" "$target"
done
