#!/usr/bin/env bash
# Subshells, groups and command substitutions.
x=outer
( x=inner; echo "in subshell: $x"; cd /; pwd )
echo "after subshell: $x $([ "$PWD" = / ] && echo root || echo here)"
{ x=group; echo "in group: $x"; }
echo "after group: $x"
result=$(echo computed; exit 4)
echo "result=$result status=$?"
( exit 7 ); echo "subshell status $?"
echo "$BASH_SUBSHELL $(echo $BASH_SUBSHELL) $( (echo $BASH_SUBSHELL) )"
echo "lines: $(printf 'a\nb\n' | wc -l)"
