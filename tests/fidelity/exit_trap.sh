#!/usr/bin/env bash
# exit in the middle of a script: the EXIT trap sees the status; nothing after runs.
trap 'echo "exiting with $?"' EXIT
echo before
check() { [[ $1 == ok ]] || { echo "bad: $1" >&2; exit 3; }; }
check ok
check broken
echo never
