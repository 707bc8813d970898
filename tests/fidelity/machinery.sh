#!/usr/bin/env bash
# Nothing of the machinery that runs the script shows through.
x=1
f() { echo f; }
declare -p | grep -ci shark
declare -f | grep -ci shark
set | grep -ci shark
compgen -v | grep -ci shark
compgen -A function
trap -p
env | grep -ci shark
echo "vars counted"
set -x
y=2
f
set +x
echo end
