#!/usr/bin/env bash
# set -x traces: exactly bash's, nothing more.
greet() { echo "hi $1"; }
set -x
name=you
greet "$name"
for i in 1 2; do echo "$i"; done
set +x
echo "quiet again"
PS4='+ line $LINENO: '
set -x
echo traced
set +x
