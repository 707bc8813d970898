#!/usr/bin/env bash
# Set-up for the undo tests on real snapshotting filesystems: btrfs-progs for a btrfs loop
# device, and zfs-fuse (ZFS without a kernel module) with its daemon running. Idempotent and
# quick when done; as a non-root user it only says what the tests will skip.
set -uo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/setup/undo.sh: not root: the btrfs and ZFS undo tests will be skipped" >&2
  exit 0
fi

missing=()
for p in btrfs-progs zfs-fuse; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/setup/undo.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  # The package's init script is not what starts the daemon here (see below).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || {
    echo "tests/setup/undo.sh: cannot install ${missing[*]}: those tests will be skipped" >&2
    exit 0
  }
fi

if ! zpool list >/dev/null 2>&1; then
  if [ ! -e /dev/fuse ]; then
    echo "tests/setup/undo.sh: no /dev/fuse: the ZFS tests will be skipped" >&2
    exit 0
  fi
  zfs-fuse --pidfile /run/zfs-fuse.pid
  for _ in $(seq 50); do
    zpool list >/dev/null 2>&1 && break
    sleep 0.1
  done
  zpool list >/dev/null 2>&1 || echo "tests/setup/undo.sh: zfs-fuse did not start: the ZFS tests will be skipped" >&2
fi
exit 0
