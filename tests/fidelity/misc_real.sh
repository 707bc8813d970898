#!/usr/bin/env bash
# Odds and ends seen in real scripts.
msg="multi
line value"
printf '%q\n' "$msg"
printf -v padded '%-6s|' ab
echo "$padded"
declare -a matrix=()
matrix[3]=three
matrix[1]=one
echo "${!matrix[@]} ${matrix[*]}"
unset 'matrix[1]'
echo "${#matrix[@]}"
outer() {
    inner() { echo "inner defined by outer"; }
    inner
}
outer
inner
trap 'echo "trap sees: $BASH_COMMAND"' ERR
false
trap - ERR
OPTIND=1
set -- -a -b
while getopts ab o; do echo "opt $o"; done
IFS= read -r line <<< "  keeps  spaces  "
echo "[$line]"
exec echo "exec replaces the shell"
echo never
