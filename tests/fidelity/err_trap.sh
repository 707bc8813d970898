#!/usr/bin/env bash
# ERR traps and set -E.
set -E
trap 'echo "ERR at line $LINENO: status $?"' ERR
false
f() { false; echo "f continues"; }
f
trap - ERR
false
echo done
