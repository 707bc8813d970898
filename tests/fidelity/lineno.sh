#!/usr/bin/env bash
# $LINENO and the line numbers in bash's own error messages.
echo "at line $LINENO"

no_such_command_here
echo "status $?"
warn() {
    echo "warn called from line ${BASH_LINENO[0]}, inside at $LINENO"
    also_missing "$1"
}

warn first
if true; then
    echo "in if at $LINENO"
    warn second
fi
x=$(missing_in_substitution 2>&1)
echo "$x"
echo "done at line $LINENO"
