#!/usr/bin/env bash
# Process substitution.
printf 'b\na\nc\n' > one.txt
printf 'a\nb\nd\n' > two.txt
diff <(sort one.txt) <(sort two.txt)
echo "diff status $?"
comm -12 <(sort one.txt) <(sort two.txt)
while read -r w; do echo "word $w"; done < <(sort -r one.txt)
tee >(wc -l > count.txt) < one.txt > /dev/null
wait $!
cat count.txt
paste -d: <(echo x) <(echo y)
