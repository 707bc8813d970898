#!/usr/bin/env bash
# Runs shark's whole test suite. On a fresh Debian machine, run as root (or with sudo available),
# it first installs the system packages the tests use.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests drive for real: filesystems for reflink and snapshot tests, and the
# programs the sandbox and pipeline tests run.
packages=(btrfs-progs xfsprogs e2fsprogs util-linux gcc python3 procps gdal-bin curl tmux less openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "test.sh: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

tests/setup/store.sh
# Services and tools some tests drive for real; each set-up is quick when already done and,
# when it cannot install (not root, no network), says so, and those tests skip.
bash tests/setup/undo.sh       # btrfs-progs, zfs-fuse and its daemon
tests/setup/web.sh             # Chromium, Graphviz, and a venv with roc-validator and prov
tests/setup/buildgrid.sh       # a Remote Execution API server (BuildGrid) in a venv

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
