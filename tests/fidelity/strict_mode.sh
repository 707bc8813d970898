#!/usr/bin/env bash
# The "strict mode" preamble, then an unbound variable.
set -euo pipefail
IFS=$'\n\t'
items="a b
c"
for item in $items; do
    echo "item: $item"
done
declare -r LIMIT=2
count=0
bump() { count=$((count + 1)); }
bump
bump
echo "count=$count limit=$LIMIT"
echo "${missing_var}"
echo never
