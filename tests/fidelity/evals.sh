#!/usr/bin/env bash
# eval and indirect expansion.
name=target
target="the value"
echo "${!name}"
eval "dyn_$name=assigned"
echo "$dyn_target"
declare -n ref=target
ref="changed by ref"
echo "$target"
cmd='echo "from eval: $name"'
eval "$cmd"
printf -v formatted '%05d' 42
echo "$formatted"
eval 'if true; then echo multi-line; fi'
