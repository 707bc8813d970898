#!/usr/bin/env bash
# Line numbers inside functions defined earlier and called later.
report() {
    local what=$1
    cat <<EOF
report on $what at $LINENO
EOF
    not_a_command "$what"
    echo "after the error, line $LINENO"
}

if true; then
    inner() {
        echo "inner at $LINENO, called from ${BASH_LINENO[0]}"
        also_not_a_command
    }
fi

report first
inner
trace() {
    local i
    for ((i = 0; i < ${#FUNCNAME[@]}; i++)); do
        echo "  ${FUNCNAME[$i]} at ${BASH_LINENO[$i]}"
    done
}
outer() { trace; }
outer
