#!/usr/bin/env bash
# Runs shark's whole test suite. On a fresh Debian machine, run as root (or with sudo available),
# it first installs the system packages the tests use.
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages the tests drive for real: filesystems for reflink and snapshot tests, and the
# programs the sandbox and pipeline tests run.
packages=(btrfs-progs xfsprogs e2fsprogs util-linux gcc python3 procps gdal-bin curl tmux less)
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

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
