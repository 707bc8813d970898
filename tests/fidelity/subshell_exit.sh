#!/usr/bin/env bash
# exit in a subshell or a pipeline does not end the script; exit in a function does.
( exit 4 )
echo "after subshell exit: $?"
echo x | exit 5
echo "after pipeline exit: $?"
v=$(exit 6)
echo "after substitution exit: $?"
quit() { echo "quitting"; exit "$1"; }
quit 7
echo never
