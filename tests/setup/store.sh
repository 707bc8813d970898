#!/usr/bin/env bash
# Set-up for the store's tests: bindfs, a FUSE filesystem without O_TMPFILE or
# RENAME_EXCHANGE, on which restores must fall back to journaled temporary names.
# Idempotent and quick when already installed; skips, saying why, when not root.
set -euo pipefail
if command -v bindfs >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "tests/setup/store.sh: not root, not installing bindfs (the FUSE restore test will skip)" >&2
  exit 0
fi
echo "tests/setup/store.sh: installing bindfs" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bindfs >/dev/null
