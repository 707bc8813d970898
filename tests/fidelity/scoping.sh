#!/usr/bin/env bash
# Dynamic scoping, declare -g, local -r, unset of locals.
x=global
show() { echo "show sees $x"; }
wrapper() {
    local x=local
    show
    declare -g from_function=yes
    local -r fixed=1
    fixed=2 2>/dev/null || echo "local readonly refused"
}
wrapper
echo "x=$x from_function=$from_function"
counter() {
    local -i n=${1:-0}
    n+=1
    echo "$n"
}
counter 41
declare -i total=0
for v in 1 2 3; do total+=v; done
echo "total=$total"
