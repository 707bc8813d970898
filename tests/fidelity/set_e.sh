#!/usr/bin/env bash
# set -e and pipefail: the first failure ends the script with its status.
set -euo pipefail
echo start
false || echo "handled failure"
if ! grep -q x /dev/null; then echo "no x"; fi
check() {
    local v=$1
    [[ $v -gt 0 ]]
    echo "checked $v"
}
check 1
count=$(printf 'a\nb\n' | wc -l)
echo "count=$count"
cat missing-file.txt | sort
echo never
