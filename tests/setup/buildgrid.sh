#!/usr/bin/env bash
# Installs BuildGrid (a Remote Execution API server) into a Python virtual environment for the
# remote cache tests (tests/remote.rs), which start `bgd` themselves. Idempotent: quick when the
# environment is already there. Never fails the test run: when BuildGrid cannot be installed
# (no Python venv support and not root, no access to PyPI), it says why and the tests skip.
#
# BuildGrid 0.4.4 is the newest release that runs on Python 3.11 (Debian 12's python3).
set -uo pipefail

version=0.4.4
dir="${SHARK_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/shark-test}/buildgrid-$version"
# Written last: a venv without it is a partial install (killed, or PyPI failed) and is redone.
[ -e "$dir/.complete" ] && exit 0
say() { echo "tests/setup/buildgrid.sh: $*" >&2; }

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "python3 has no venv module (Debian: apt-get install python3-venv); the remote cache tests will skip"
    exit 0
  fi
fi

say "installing BuildGrid $version into $dir"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
if python3 -m venv "$dir" \
  && "$dir/bin/pip" install -q --disable-pip-version-check "buildgrid==$version" >"$dir.log" 2>&1 \
  && "$dir/bin/bgd" --help >/dev/null 2>&1; then
  touch "$dir/.complete"
else
  rm -rf "$dir"
  say "cannot install BuildGrid from PyPI (see $dir.log); the remote cache tests will skip"
fi
exit 0
