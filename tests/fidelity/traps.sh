#!/usr/bin/env bash
# An EXIT trap fires when the script ends, not when the step that sets it ends.
cleanup() { echo "cleanup: removing $tmpfile"; rm -f "$tmpfile"; }
tmpfile=scratch.txt
trap cleanup EXIT
echo data > "$tmpfile"
echo "working"
trap 'echo got USR1' USR1
kill -USR1 $$
trap -p | sed 's/^/trap: /'
cat "$tmpfile"
echo "last line"
