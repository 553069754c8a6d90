#!/usr/bin/env bash
# Installs Erlang/OTP (Debian's erlang-base) if `escript` is missing: the benchmark suite runs
# every scenario on Erlang too, and the test suite smoke-tests that side.
set -euo pipefail
if command -v escript > /dev/null; then
    exit 0
fi
if ! command -v apt-get > /dev/null; then
    echo "escript is missing and this is not a Debian-like system: install Erlang/OTP (25 or later)" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing Erlang/OTP (erlang-base) from the distribution's packages"
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends erlang-base > /dev/null \
    || { $sudo apt-get update > /dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends erlang-base > /dev/null; }
escript -version 2>&1 | head -1 || true
