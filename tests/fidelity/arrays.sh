#!/usr/bin/env bash
# Arrays and associative arrays built over several steps.
fruits=()
fruits+=(apple)
fruits+=("passion fruit" cherry)
echo "${#fruits[@]}: ${fruits[*]}"
declare -A color
color[apple]=red
color[cherry]=dark
for f in "${fruits[@]}"; do
    printf '%s is %s\n' "$f" "${color[$f]:-unknown}"
done
unset 'fruits[1]'
echo "${!fruits[@]} -> ${fruits[@]}"
sorted=($(printf '%s\n' "${!color[@]}" | sort))
echo "${sorted[@]}"
mapfile -t lines < <(printf 'l1\nl2\nl3\n')
echo "${#lines[@]} ${lines[2]}"
read -ra words <<< "split these words"
echo "${words[1]}"
