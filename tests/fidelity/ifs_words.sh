#!/usr/bin/env bash
# IFS and word splitting carried across commands.
line="a:b::c"
IFS=:
set -- $line
echo "$# fields"
IFS=$' \t\n'
for w in $line; do echo "[$w]"; done
unset IFS
words="x y  z"
echo $words
printf '<%s>' $words; echo
