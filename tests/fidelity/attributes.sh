#!/usr/bin/env bash
# readonly, declare attributes, arrays, exports.
readonly VERSION=1.2
declare -i count=5
declare -l lower=MiXeD
declare -u upper=quiet
declare -a list=(one "two three" four)
declare -A map=([k1]=v1 [k2]="v 2")
export EXPORTED=yes
count+=10
echo "$VERSION $count $lower $upper ${#list[@]} ${list[1]} ${map[k2]}"
VERSION=2.0
echo "status $?, VERSION=$VERSION"
declare -p VERSION count lower upper list
declare -p map | tr ' ' '\n' | sort
bash -c 'echo "child sees $EXPORTED"'
export -n EXPORTED
bash -c 'echo "child sees ${EXPORTED-nothing}"'
unset VERSION
echo "after unset: $?"
