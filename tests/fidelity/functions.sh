#!/usr/bin/env bash
# Functions: recursion, local, return, redefinition, the function keyword.
fact() {
    local n=$1
    if (( n <= 1 )); then echo 1; return; fi
    echo $(( n * $(fact $((n - 1))) ))
}
echo "5! = $(fact 5)"
counter=0
bump() { counter=$((counter + 1)); local hidden=1; }
bump
bump
echo "counter=$counter hidden=${hidden-unset}"
function greet {
    echo "hello, ${1:-nobody}"
}
greet
greet you
greet() { echo "redefined: $1"; }
greet again
type -t greet
declare -F | sed 's/declare -f //'
unset -f bump
bump 2>&1 | sed 's/.*line [0-9]*: //'
local x=1
