#!/usr/bin/env bash
# set and shopt options carry from step to step.
shopt -s nullglob
for f in *.nothing; do echo "never $f"; done
echo "nullglob on"
set -o noglob
echo *
set +o noglob
shopt -s extglob
touch a.txt b.log c.txt
echo !(*.log)
set -u
echo "${unset_var:-default}"
set -o pipefail
false | true
echo "pipefail status $?"
shopt -p nullglob extglob
set -o | grep -E '^(nounset|pipefail|noglob) '
echo "$undefined_variable"
echo never
