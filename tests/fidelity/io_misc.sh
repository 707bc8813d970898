#!/usr/bin/env bash
# Redirections of every kind.
echo "to stderr" >&2
ls /nonexistent-dir 2>/dev/null || echo "ls failed quietly"
{ echo out; echo err >&2; } &> both.txt
sort both.txt
{ echo a; echo b >&2; } |& tr a-z A-Z
cat < both.txt | wc -l
exec 6<> rw.txt
echo "read-write" >&6
exec 6>&-
cat rw.txt
printf '%s\n' "tee'd" | tee copy.txt > /dev/null
cat copy.txt
: > emptied.txt
wc -c < emptied.txt
