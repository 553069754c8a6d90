#!/usr/bin/env bash
# Builds the Python guests (each guests/python/<name>/app.py) into components with
# componentize-py: guests/target/python/<name>.wasm. On first use it installs the pinned
# toolchain (guests/python/toolchain.txt) and libraries (requirements.txt) into
# .tools/python. A component whose sources have not changed since it was built is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=.tools/python
out=guests/target/python
pins="$(cat guests/python/toolchain.txt guests/python/requirements.txt)"

# One build at a time (test binaries may start it together).
mkdir -p .tools
exec 9>.tools/python.lock
flock 9

if [ ! -x "$tools/venv/bin/componentize-py" ] || [ "$(cat "$tools/pins" 2>/dev/null)" != "$pins" ]; then
    echo "installing the Python guest toolchain into $tools (componentize-py, cbor2)" >&2
    rm -rf "$tools"
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
        -r guests/python/toolchain.txt
    CBOR2_BUILD_C_EXTENSION=0 "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
        --no-binary cbor2 --target "$tools/vendor" -r guests/python/requirements.txt
    printf '%s' "$pins" > "$tools/pins"
fi

mkdir -p "$out"
for app in guests/python/*/app.py; do
    dir="$(dirname "$app")"
    name="$(basename "$dir")"
    [ "$name" = wasmhost ] && continue
    target="$out/$name.wasm"
    # Up to date if nothing it is made of is newer than it.
    if [ -f "$target" ] && [ -z "$(find wit guests/python/wasmhost "$dir" "$tools/pins" \
            -newer "$target" -type f -print -quit)" ]; then
        continue
    fi
    echo "building $dir → $target (componentize-py, about 10 s)" >&2
    "$tools/venv/bin/componentize-py" -q -d wit -w wasmhost:abi/guest componentize \
        -p guests/python -p "$tools/vendor" -p "$dir" app -o "$target.tmp"
    mv "$target.tmp" "$target"
done
