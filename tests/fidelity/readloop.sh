#!/usr/bin/env bash
# read loops over files, as data scripts do.
printf 'alice,30,paris\nbob,25,berlin\ncarol,35,rome\n' > people.csv
total=0
while IFS=, read -r name age city; do
    echo "$name lives in $city"
    total=$((total + age))
done < people.csv
echo "total age $total"
count=0
while read -r line; do
    count=$((count + 1))
done < <(grep -v bob people.csv)
echo "$count without bob"
{
    read -r first
    read -r second
} < people.csv
echo "first=$first second=$second"
sort -t, -k2 -n people.csv | head -1
exec 3< people.csv
read -r -u 3 one
echo "fd 3 gave $one"
read -r -u 3 two
echo "then $two"
exec 3<&-
