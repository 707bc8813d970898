#!/usr/bin/env bash
# A data-processing script: counts per key, a temporary file, a trap.
tmp=$(mktemp)
trap 'rm -f "$tmp"; echo "temp removed"' EXIT
cat > sales.tsv <<'DATA'
region	product	units
north	apples	10
south	pears	4
north	pears	7
east	apples	3
south	apples	9
DATA
declare -A units_by_region
while IFS=$'\t' read -r region product units; do
    [[ $region == region ]] && continue
    units_by_region[$region]=$(( ${units_by_region[$region]:-0} + units ))
done < sales.tsv
for r in $(printf '%s\n' "${!units_by_region[@]}" | sort); do
    printf '%-6s %3d\n' "$r" "${units_by_region[$r]}"
done > "$tmp"
cat "$tmp"
awk -F'\t' 'NR > 1 { s[$2] += $3 } END { for (p in s) print p, s[p] }' sales.tsv | sort
best=$(sort -t$'\t' -k3 -n -r sales.tsv | head -1 | cut -f1,2)
echo "best: $best"
