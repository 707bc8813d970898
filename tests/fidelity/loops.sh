#!/usr/bin/env bash
# Loop control across lines.
for i in 1 2 3; do
    for j in a b c; do
        [[ $j == b ]] && continue
        [[ $i == 3 ]] && break 2
        echo "$i$j"
    done
done
n=0
until (( n >= 3 )); do
    echo "until $n"
    n=$((n + 1))
done
mkdir -p g && touch g/one.txt g/two.txt g/three.log
for f in g/*.txt; do
    echo "glob: $f"
done
for ((
    k = 0;
    k < 2;
    k++
)); do
    echo "k=$k"
done
while read -r word; do
    echo "word: $word"
done <<'WORDS'
alpha
beta
WORDS
select choice in x y; do echo never; done < /dev/null
echo "select ended: $?"
