#!/usr/bin/env bash
# Set-up for the tests of `shark serve`, `shark export --ro-crate` and `shark lineage --prov`:
# headless Chromium and its WebDriver, Graphviz, and a Python venv holding the RO-Crate
# validator (`roc-validator`, with `rocrate` for the JSON-LD context it cannot download
# offline) and the W3C PROV library (`prov`). Idempotent and quick once done; as a non-root
# user without sudo it says what it skipped, and the tests that need a missing tool skip with
# a reason.
set -uo pipefail
venv="${SHARK_TEST_VENV:-/var/tmp/shark-test-venv}"

packages=(chromium chromium-driver graphviz python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "tests/setup/web.sh: not root: skipping the install of ${missing[*]}" >&2
      missing=()
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "tests/setup/web.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "tests/setup/web.sh: could not install ${missing[*]}" >&2
  fi
fi

if [ ! -x "$venv/bin/rocrate-validator" ] || ! "$venv/bin/python" -c 'import prov, rocrate' 2>/dev/null; then
  if /usr/bin/python3 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"; then
    echo "tests/setup/web.sh: installing roc-validator, prov and rocrate into $venv" >&2
    "$venv/bin/pip" install -q roc-validator prov rocrate >/dev/null \
      || echo "tests/setup/web.sh: could not install roc-validator, prov and rocrate" >&2
  else
    echo "tests/setup/web.sh: cannot create a Python venv at $venv" >&2
  fi
fi
exit 0
